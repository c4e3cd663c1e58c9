"""Airflow plugin: the sync page and the run reports in the Airflow UI.

It mounts :mod:`sage_sync.reports_app` at ``/sage-sync`` in the API server (the sync page, the reports and the
Data Docs of ``$SAGE_SYNC_HOME``, each route checked by Airflow's auth manager), shows the sync page inside the UI
(a "Sage sync" navigation entry and a "Sync" tab on the DAG), and registers the report task's "Sync report"
button so the UI can show it.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from sage_sync.operators.links import REPORTS_URL, SYNC_PAGE_URL, SyncReportLink
from sage_sync.reports_app import create_app


class SageSyncReportsPlugin(AirflowPlugin):
    """Serve the run reports and link them from the UI."""

    name = "sage_sync_reports"
    fastapi_apps = [{"app": create_app(), "url_prefix": "/sage-sync", "name": "Sage sync"}]
    external_views = [
        # Shown inside the UI (an iframe under url_route); the UI's session cookie authenticates the page.
        {"name": "Sage sync", "href": SYNC_PAGE_URL, "url_route": "sage-sync", "destination": "nav"},
        {"name": "Sync", "href": SYNC_PAGE_URL, "url_route": "sage-sync-dag", "destination": "dag"},
        {"name": "Sync reports", "href": REPORTS_URL, "destination": "nav"},
    ]
    operator_extra_links = [SyncReportLink()]
