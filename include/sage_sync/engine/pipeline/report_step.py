"""Step 6, report: the run report from the staged step files, and the run's ledger entry closed (G7, G8).

The report covers every entity, whatever happened to it: an entity whose steps did not all run is "incomplete"
or "failed", so a run that went wrong still explains itself. Nothing is recorded in the ledger for a dry run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sage_sync.engine.pipeline.context import RunFlags
from sage_sync.engine.pipeline.lease_step import end, skipped
from sage_sync.engine.staging import Staging, run_name
from sage_sync.engine.state import StateStore, now_iso
from sage_sync.location import Location
from sage_sync.report import build_report, write_report


@dataclass(frozen=True)
class ReportResult:
    """The report, where it was written, and the entities that did not complete."""

    report: dict[str, Any]
    paths: dict[str, Location] = field(default_factory=dict)

    @property
    def broken(self) -> list[str]:
        """Entities whose steps did not all complete (the run must then show as failed).

        A run that did nothing because another run held the lease is not broken: it said why and stopped.
        """
        if self.report.get("skipped"):
            return []
        entities = self.report["entities"]
        return [e for e, s in entities.items() if s["status"] in ("failed", "incomplete", "not run")]


def _seconds_since(started_at: str | None) -> float:
    if not started_at:
        return 0.0
    started = datetime.fromisoformat(started_at.replace("Z", "+00:00"))
    return max(0.0, (datetime.fromisoformat(now_iso().replace("Z", "+00:00")) - started).total_seconds())


def report(
    run_id: str,
    staging: Staging,
    state: StateStore,
    *,
    flags: RunFlags,
    reports_dir: Location | None = None,
    started_at: str | None = None,
    task_states: dict[str, dict[str, str]] | None = None,
    settings: dict[str, Any] | None = None,
    deadline_alert: dict[str, Any] | None = None,
) -> ReportResult:
    """Build the run's report, write it under ``reports_dir`` (when given); close the ledger entry and the lease."""
    built = build_report(
        run_id,
        staging,
        dry_run=flags.dry_run,
        full_reconcile=flags.full_reconcile,
        started_at=started_at,
        task_states=task_states,
        settings=settings,
        deadline_alert=deadline_alert,
        skipped=skipped(staging),
    )
    name = run_name(run_id)
    paths = write_report(built, reports_dir, name) if reports_dir is not None else {}
    if not flags.dry_run and not built.get("skipped"):
        state.start_run(name, False, started_at)
        status = "success" if built["status"] == "ok" else "attention"
        state.finish_run(name, status, int(built["totals"]["api_calls"]), _seconds_since(started_at))
    end(run_id, state)
    return ReportResult(built, paths)
