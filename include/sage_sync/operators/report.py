"""The final task: write the run report, print its summary table, close the run's ledger entry (G7, G8)."""

from __future__ import annotations

import logging
from typing import Any

from airflow.sdk import Context

from sage_sync.mapping.registry import registry
from sage_sync.operators.base import SageSyncBaseOperator
from sage_sync.operators.links import SyncReportLink

log = logging.getLogger(__name__)


def _task_states(context: Context) -> dict[str, dict[str, str]]:
    """The state of every task of this run, by entity (best effort: the report is written regardless)."""
    ti = context.get("ti")
    if ti is None:
        return {}
    try:
        found = ti.get_task_states(dag_id=ti.dag_id, run_ids=[context["run_id"]])
    except Exception as exc:  # noqa: BLE001 - the report must not fail because the API server cannot answer
        log.info("task states unavailable (%s); the report relies on the staging files", exc)
        return {}
    states = found.get(context["run_id"], found) if isinstance(found, dict) else {}
    out: dict[str, dict[str, str]] = {}
    for task_id, state in (states or {}).items():
        group, _, step = str(task_id).partition(".")
        if group in registry() and step:
            out.setdefault(group, {})[step] = str(state)
    return out


class SageSyncReportOperator(SageSyncBaseOperator):
    """Write ``<shared>/reports/<run>.json`` (+ ``.md``, ``.html``, ``latest.json``) and log the summary.

    It runs whatever happened upstream (trigger rule ``all_done``) so a failed entity still gets its report; it
    then fails itself when an entity did not complete, so the DAG run shows the failure.
    """

    ui_color = "#fcf3cf"
    operator_extra_links = (SyncReportLink(),)

    def run(self, context: Context) -> dict[str, Any]:
        """Build and write the report; return its paths and totals."""
        from sage_sync.engine.pipeline import report
        from sage_sync.operators.deadline import read_alert
        from sage_sync.report import summary_table

        settings = self.settings()
        flags = self.flags(context, settings)
        run_id = str(context["run_id"])
        dag_run = context.get("dag_run")
        started = getattr(dag_run, "start_date", None) or getattr(dag_run, "queued_at", None)
        result = report(
            run_id,
            settings.staging(run_id),
            self.open_state(settings),
            flags=flags,
            reports_dir=settings.reports_dir,
            started_at=started.isoformat().replace("+00:00", "Z") if started is not None else None,
            task_states=_task_states(context),
            settings=settings.to_public_dict(),
            # G1: the deadline alert fires while the run is still going, so it is usually known by now; one that
            # fires after this task amends the written report itself.
            deadline_alert=read_alert(run_id, settings.shared),
        )
        built, paths = result.report, result.paths
        log.info("Sync report %s\n%s", run_id, summary_table(built))
        log.info("Report: %s (Markdown %s, HTML %s)", paths["json"], paths["markdown"], paths["html"])
        if built["deadline_missed"]:
            log.warning("Deadline missed: %s", built["deadline"]["message"])
        docs = sorted({s["data_docs"] for s in built["entities"].values() if s.get("data_docs")})
        if docs:
            log.info("Data Docs: %s", ", ".join(docs))
        if result.broken:
            from sage_sync.errors import FatalSyncError

            raise FatalSyncError(
                f"entities that did not complete: {', '.join(result.broken)}; their report is in {paths['json']}"
            )
        return {
            "report": str(paths["json"]),
            "totals": built["totals"],
            "status": built["status"],
            "deadline_missed": built["deadline_missed"],
        }
