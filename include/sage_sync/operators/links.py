"""The "Sync report" button on the report task: opens the run's HTML report served by the project's plugin."""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseOperatorLink

#: Where the plugin (plugins/sage_sync_reports.py) serves the reports in the Airflow API server. The URLs are
#: relative: the UI resolves them against its base URL (``<base href>``), so they work behind a reverse proxy that
#: serves Airflow under a path.
REPORTS_URL = "sage-sync/reports"
#: The operator's sync page (last runs, quarantine, conflicts, withheld deletions).
SYNC_PAGE_URL = "sage-sync/sync"


class SyncReportLink(BaseOperatorLink):
    """Link to ``sage-sync/reports/<run>.html`` (under the UI's base URL) for the task instance's run."""

    name = "Sync report"

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        """The run's report page (the run id made file-safe the way the report task names the file)."""
        from sage_sync.engine.staging import run_name

        return f"{REPORTS_URL}/{run_name(str(ti_key.run_id))}.html"
