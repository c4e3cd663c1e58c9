"""Airflow plugin: the sync page and the run reports in the Airflow UI.

It mounts :mod:`sage_sync.reports_app` at ``/sage-sync`` in the API server (each sync DAG's page, reports and
Data Docs, read from the shared location ``SAGE_SYNC_SHARED_URL`` the workers write to, each route checked by
Airflow's auth manager for the DAG it shows), shows the pages inside the UI (a
"Sage sync" navigation entry and a "Sync" tab on every sync DAG), and registers the report task's "Sync report"
button so the UI can show it.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from sage_sync.operators.links import DAG_SYNC_PAGE_URL, SYNC_PAGE_URL, SyncReportLink
from sage_sync.reports_app import create_app


class SageSyncReportsPlugin(AirflowPlugin):
    """Serve the run reports and link them from the UI."""

    name = "sage_sync_reports"
    fastapi_apps = [{"app": create_app(), "url_prefix": "/sage-sync", "name": "Sage sync"}]
    external_views = [
        # Shown inside the UI (an iframe under url_route); the UI's session cookie authenticates the page.
        {"name": "Sage sync", "href": SYNC_PAGE_URL, "url_route": "sage-sync", "destination": "nav"},
        {"name": "Sync", "href": DAG_SYNC_PAGE_URL, "url_route": "sage-sync-dag", "destination": "dag"},
    ]
    operator_extra_links = [SyncReportLink()]
