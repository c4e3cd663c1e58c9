"""Airflow plugin: the run reports in the Airflow UI.

It mounts :mod:`sage_sync.reports_app` at ``/sage-sync`` in the API server (the reports and the Data Docs of
``$SAGE_SYNC_HOME``), adds a "Sync reports" entry to the navigation, and registers the report task's
"Sync report" button so the UI can show it.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from sage_sync.operators.links import REPORTS_URL, SyncReportLink
from sage_sync.reports_app import create_app


class SageSyncReportsPlugin(AirflowPlugin):
    """Serve the run reports and link them from the UI."""

    name = "sage_sync_reports"
    fastapi_apps = [{"app": create_app(), "url_prefix": "/sage-sync", "name": "Sage sync reports"}]
    external_views = [{"name": "Sync reports", "href": REPORTS_URL, "destination": "nav"}]
    operator_extra_links = [SyncReportLink()]
