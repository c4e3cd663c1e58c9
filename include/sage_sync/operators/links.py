"""The "Sync report" button on the report task: opens the run's HTML report served by the project's plugin."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from airflow.sdk import BaseOperatorLink

#: Where the plugin (plugins/sage_sync_reports.py) serves its pages in the Airflow API server. The URLs are
#: relative: the UI resolves them against its base URL (``<base href>``), so they work behind a reverse proxy that
#: serves Airflow under a path.
#:
#: The operator's sync page (last runs, quarantine, conflicts, withheld deletions); with several dossiers, the list
#: of the dossiers' pages.
SYNC_PAGE_URL = "sage-sync/sync"
#: One DAG's sync page: the UI puts the DAG's id in place of ``{DAG_ID}`` (the DAG's "Sync" tab).
DAG_SYNC_PAGE_URL = "sage-sync/dags/{DAG_ID}/sync"


def dag_reports_url(dag_id: str) -> str:
    """Where the plugin serves one sync DAG's reports (relative to the UI's base URL)."""
    return f"sage-sync/dags/{quote(dag_id, safe='')}/reports"


class SyncReportLink(BaseOperatorLink):
    """Link to ``sage-sync/dags/<dag_id>/reports/<run>.html`` (under the UI's base URL): the task's run."""

    name = "Sync report"

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        """The run's report page (the run id made file-safe the way the report task names the file)."""
        from sage_sync.engine.staging import run_name

        return f"{dag_reports_url(str(ti_key.dag_id))}/{run_name(str(ti_key.run_id))}.html"
