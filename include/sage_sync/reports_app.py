"""The plugin's web app: the sync page, the run reports and the Data Docs of ``$SAGE_SYNC_HOME`` (read-only).

Mounted in the Airflow API server by the project's plugin at ``/sage-sync``. Airflow does not authenticate plugin
apps, so every route here depends on Airflow's own auth manager, the way the core API does: the caller's JWT
(the UI's session cookie or an ``Authorization: Bearer`` token) must name a user allowed to read the sync DAG.
No token: 401; a user the auth manager does not allow on the DAG: 403. Whatever auth manager is configured
(simple, FAB, Keycloak...) decides.
"""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Query
from fastapi.responses import FileResponse, HTMLResponse

from sage_sync.settings import DAG_ID, data_home
from sage_sync.sync_page import DEFAULT_RUNS, load_reports, render_sync_page

_NAME = re.compile(r"^[A-Za-z0-9._-]+\.(html|json|md)$")


def create_app(home: Path | None = None) -> FastAPI:
    """The app; ``home`` defaults to ``$SAGE_SYNC_HOME`` read at each request (so it follows the environment)."""
    # Airflow's API modules are imported here, not at module level: the DAG file and the unit tests of the page
    # import this package without an API server.
    from airflow.api_fastapi.core_api.security import get_user, requires_access_dag

    can_read_dag = Depends(requires_access_dag("GET", param_dag_id=DAG_ID))
    app = FastAPI(
        title="Sage sync",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        dependencies=[can_read_dag],
    )

    def root() -> Path:
        return home or data_home()

    def folder() -> Path:
        return root() / "reports"

    @app.get("/sync", response_class=HTMLResponse)
    def sync_page(
        runs: Annotated[int, Query(ge=1, le=200)] = DEFAULT_RUNS,
        user: Any = Depends(get_user),  # noqa: B008
    ) -> str:
        """The operator's page: last runs, quarantine, conflicts, deferred records, withheld deletions."""
        return render_sync_page(
            load_reports(folder(), runs), dag_id=DAG_ID, home=root(), user=user.get_name()
        )

    @app.get("/reports", response_class=HTMLResponse)
    def index() -> str:
        """The list of run reports, newest first."""
        pages = sorted(folder().glob("*.html"), key=lambda p: p.stat().st_mtime, reverse=True)
        items = "".join(
            f"<li><a href='reports/{html.escape(p.name)}'>{html.escape(p.stem)}</a></li>" for p in pages[:200]
        )
        return (
            "<!doctype html><title>Sync reports</title><h1>Sync reports</h1>"
            f"<p><a href='sync'>Sync overview</a></p><ul>{items or 'none yet'}</ul>"
        )

    @app.get("/reports/{name}")
    def report(name: str) -> FileResponse:
        """One report file; only plain file names of the reports folder are served."""
        if not _NAME.match(name) or not (folder() / name).is_file():
            raise HTTPException(status_code=404, detail="no such report")
        return FileResponse(folder() / name)

    @app.get("/data-docs/{path:path}")
    def data_docs(path: str) -> FileResponse:
        """The Great Expectations Data Docs site."""
        docs = (root() / "data_docs").resolve()
        target = (docs / (path or "index.html")).resolve()
        if not target.is_relative_to(docs) or not target.is_file():
            raise HTTPException(status_code=404, detail="no such page")
        return FileResponse(target)

    return app
