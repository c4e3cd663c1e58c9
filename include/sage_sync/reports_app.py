"""The plugin's web app: the sync page, the run reports and the Data Docs of each sync DAG (read-only).

Mounted in the Airflow API server by the project's plugin at ``/sage-sync``:

- ``dags/<dag_id>/sync``, ``dags/<dag_id>/reports[/<file>]``, ``dags/<dag_id>/data-docs/<path>``: the pages of
  one sync DAG, read from that DAG's shared folder (the shared location of :mod:`sage_sync.settings`, or its
  ``dossiers/<name>`` for the DAG ``sage50_ssm_sync__<name>`` of a dossiers file), where the workers write the
  reports and publish the Data Docs. The DAG's "Sync" tab opens its ``sync`` page.
- ``sync``: the navigation entry. One DAG: its page. Several dossiers: the list of the dossiers whose DAG the
  user may read, each linked to its page.
- ``reports[/<file>]``, ``data-docs/<path>``: the files of the single DAG (a deployment without dossiers file).

Airflow does not authenticate plugin apps, so every route asks Airflow's own auth manager, the way the core API
does: the caller's JWT (the UI's session cookie or an ``Authorization: Bearer`` token) must name a user allowed to
read the DAG the route shows. No token: 401; a user the auth manager does not allow on that DAG: 403. Whatever
auth manager is configured (simple, FAB, Keycloak...) decides, DAG by DAG.

Files on a local disk (a plain folder or ``file://``) are streamed; files in an object store are read whole and
served with the media type their name implies.
"""

from __future__ import annotations

import html
import mimetypes
import re
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, Response

from sage_sync.dossiers import DossierSet, dossier_shared, load_dossiers, parse_dossiers
from sage_sync.location import Location, local_path, newest_first, read_bytes_or_none
from sage_sync.settings import DAG_ID, data_home, shared_location
from sage_sync.sync_page import DEFAULT_RUNS, load_reports, render_sync_page

_NAME = re.compile(r"^[A-Za-z0-9._-]+\.(html|json|md)$")
#: From a DAG's pages (``sage-sync/dags/<dag_id>/...``) up to the UI's base URL.
_DAG_PAGE_UI_ROOT = "../../../"
Runs = Annotated[int, Query(ge=1, le=200)]


def _file_response(target: Location, missing: str) -> Response:
    """The file ``target``: streamed from a local disk, read whole from an object store; 404 (``missing``) if none."""
    local = local_path(target)
    if local is not None:
        if not local.is_file():
            raise HTTPException(status_code=404, detail=missing)
        return FileResponse(local)
    data = read_bytes_or_none(target)
    if data is None:
        raise HTTPException(status_code=404, detail=missing)
    return Response(data, media_type=mimetypes.guess_type(target.name)[0] or "application/octet-stream")


def create_app(home: Path | None = None, shared: Location | None = None) -> FastAPI:
    """The app; ``home`` defaults to ``$SAGE_SYNC_HOME`` and ``shared`` to ``$SAGE_SYNC_SHARED_URL`` (else ``home``).

    Both are read at each request, so they follow the environment. The dossiers file is looked for as the sync
    tasks look for it (``$SAGE_SYNC_DOSSIERS``, else ``home``); the files shown come from the shared location.
    """
    # Airflow's API modules are imported here, not at module level: the DAG file and the unit tests of the page
    # import this package without an API server.
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import DagDetails
    from airflow.api_fastapi.core_api.security import get_user, requires_access_dag

    read_path_dag = Depends(requires_access_dag("GET"))  # the dag_id of the route's path
    read_single_dag = Depends(requires_access_dag("GET", param_dag_id=DAG_ID))
    # Dependencies as default values: the annotations of these nested functions could not name local imports.
    signed_in = Depends(get_user)
    app = FastAPI(title="Sage sync", docs_url=None, redoc_url=None, openapi_url=None)

    def root() -> Path:
        return home or data_home()

    def shared_root() -> Location:
        return shared if shared is not None else shared_location(root())

    def dossiers() -> DossierSet | None:
        if home is None:
            return load_dossiers()
        file = home / "dossiers.yaml"
        return parse_dossiers(file) if file.exists() else None

    def folder_of(dag_id: str) -> Location:
        """The shared folder of a sync DAG of this deployment (404 for any other DAG id)."""
        found = dossiers()
        if found is None and dag_id == DAG_ID:
            return shared_root()
        for dossier in found or ():
            if dossier.dag_id == dag_id:
                return dossier_shared(dossier.name, shared_root())
        raise HTTPException(status_code=404, detail=f"{dag_id} is not a sync DAG of this deployment")

    def single_folder() -> Location:
        if dossiers() is not None:
            raise HTTPException(
                status_code=404,
                detail="this deployment has several dossiers: each DAG's files are under dags/<dag_id>/",
            )
        return shared_root()

    def page(dag_id: str, folder: Location, runs: int, user: Any, ui_root: str) -> str:
        return render_sync_page(
            load_reports(folder / "reports", runs),
            dag_id=dag_id,
            home=folder,
            user=user.get_name(),
            ui_root=ui_root,
        )

    def reports_index(folder: Location) -> str:
        pages = newest_first(folder / "reports", "*.html")
        items = "".join(
            f"<li><a href='reports/{html.escape(p.name)}'>{html.escape(p.stem)}</a></li>" for p in pages[:200]
        )
        return (
            "<!doctype html><title>Sync reports</title><h1>Sync reports</h1>"
            f"<p><a href='sync'>Sync overview</a></p><ul>{items or 'none yet'}</ul>"
        )

    def report_file(folder: Location, name: str) -> Response:
        """Only plain file names of the reports folder are served."""
        if not _NAME.match(name):
            raise HTTPException(status_code=404, detail="no such report")
        return _file_response(folder / "reports" / name, "no such report")

    def data_docs_file(folder: Location, path: str) -> Response:
        """Only files under the Data Docs folder are served (no way out of it, on a disk or in a store)."""
        docs = folder / "data_docs"
        wanted = path or "index.html"
        local = local_path(docs)
        if local is not None:
            target = (local.resolve() / wanted).resolve()
            if not target.is_relative_to(local.resolve()):
                raise HTTPException(status_code=404, detail="no such page")
            return _file_response(target, "no such page")
        if wanted.startswith("/") or any(part in ("", ".", "..") for part in wanted.split("/")):
            raise HTTPException(status_code=404, detail="no such page")
        return _file_response(docs / wanted, "no such page")

    @app.get("/sync", response_class=HTMLResponse)
    def sync_page(request: Request, runs: Runs = DEFAULT_RUNS, user: Any = signed_in) -> str:
        """The navigation entry: the single DAG's page, or the dossiers the user may read."""
        found = dossiers()
        if found is None:
            requires_access_dag("GET", param_dag_id=DAG_ID)(request, user)
            return page(DAG_ID, shared_root(), runs, user, "../")
        manager = get_auth_manager()
        allowed = [
            d
            for d in found
            if manager.is_authorized_dag(method="GET", details=DagDetails(id=d.dag_id), user=user)
        ]
        if not allowed:
            raise HTTPException(status_code=403, detail="Forbidden")
        rows = []
        for dossier in allowed:
            last = load_reports(dossier_shared(dossier.name, shared_root()) / "reports", 1)
            status = f"{last[0].get('status')} at {last[0].get('finished_at')}" if last else "no run yet"
            state = "" if dossier.enabled else " (switched off)"
            rows.append(
                f"<tr><td><a href='dags/{quote(dossier.dag_id, safe='')}/sync'>{html.escape(dossier.name)}</a>"
                f"{state}</td><td><code>{html.escape(dossier.dag_id)}</code></td><td>{html.escape(status)}</td></tr>"
            )
        return (
            "<!doctype html><html><head><meta charset='utf-8'><title>Sage sync</title></head><body>"
            f"<h1>Sage 50 &harr; Sales Management sync</h1><p>Signed in as <strong>{html.escape(user.get_name())}"
            f"</strong>. Dossiers you may read: {len(allowed)} of {len(found.entries)}.</p>"
            "<table><tr><th>Dossier</th><th>DAG</th><th>Last run</th></tr>"
            + "".join(rows)
            + "</table></body></html>"
        )

    @app.get("/reports", response_class=HTMLResponse, dependencies=[read_single_dag])
    def index() -> str:
        """The single DAG's run reports, newest first."""
        return reports_index(single_folder())

    @app.get("/reports/{name}", dependencies=[read_single_dag])
    def report(name: str) -> Response:
        """One report file of the single DAG."""
        return report_file(single_folder(), name)

    @app.get("/data-docs/{path:path}", dependencies=[read_single_dag])
    def data_docs(path: str) -> Response:
        """The single DAG's Great Expectations Data Docs site."""
        return data_docs_file(single_folder(), path)

    @app.get("/dags/{dag_id}/sync", response_class=HTMLResponse, dependencies=[read_path_dag])
    def dag_sync_page(dag_id: str, runs: Runs = DEFAULT_RUNS, user: Any = signed_in) -> str:
        """One sync DAG's page: last runs, quarantine, conflicts, deferred records, withheld deletions."""
        return page(dag_id, folder_of(dag_id), runs, user, _DAG_PAGE_UI_ROOT)

    @app.get("/dags/{dag_id}/reports", response_class=HTMLResponse, dependencies=[read_path_dag])
    def dag_reports(dag_id: str) -> str:
        """One sync DAG's run reports, newest first."""
        return reports_index(folder_of(dag_id))

    @app.get("/dags/{dag_id}/reports/{name}", dependencies=[read_path_dag])
    def dag_report(dag_id: str, name: str) -> Response:
        """One report file of a sync DAG."""
        return report_file(folder_of(dag_id), name)

    @app.get("/dags/{dag_id}/data-docs/{path:path}", dependencies=[read_path_dag])
    def dag_data_docs(dag_id: str, path: str) -> Response:
        """A sync DAG's Great Expectations Data Docs site."""
        return data_docs_file(folder_of(dag_id), path)

    return app
