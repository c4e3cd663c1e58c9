"""A tiny web app serving the run reports and the Data Docs from ``$SAGE_SYNC_HOME`` (read-only).

Mounted in the Airflow API server by the project's plugin at ``/sage-sync``; Airflow's own authentication does
not cover plugin apps, so it serves only the report files and Data Docs (no connection, no secret is in them).
"""

from __future__ import annotations

import html
import re
from pathlib import Path

from fastapi import FastAPI, HTTPException
from fastapi.responses import FileResponse, HTMLResponse

from sage_sync.settings import data_home

_NAME = re.compile(r"^[A-Za-z0-9._-]+\.(html|json|md)$")


def create_app(home: Path | None = None) -> FastAPI:
    """The app; ``home`` defaults to ``$SAGE_SYNC_HOME`` read at each request (so it follows the environment)."""
    app = FastAPI(title="Sage sync reports", docs_url=None, redoc_url=None, openapi_url=None)

    def folder() -> Path:
        return (home or data_home()) / "reports"

    @app.get("/reports", response_class=HTMLResponse)
    def index() -> str:
        """The list of run reports, newest first."""
        pages = sorted(folder().glob("*.html"), key=lambda p: p.stat().st_mtime, reverse=True)
        items = "".join(
            f"<li><a href='reports/{html.escape(p.name)}'>{html.escape(p.stem)}</a></li>" for p in pages[:200]
        )
        return (
            f"<!doctype html><title>Sync reports</title><h1>Sync reports</h1><ul>{items or 'none yet'}</ul>"
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
        root = ((home or data_home()) / "data_docs").resolve()
        target = (root / (path or "index.html")).resolve()
        if not target.is_relative_to(root) or not target.is_file():
            raise HTTPException(status_code=404, detail="no such page")
        return FileResponse(target)

    return app
