"""The two tasks that open every run: ``preflight`` (O2, M3) and ``match`` (O1).

``preflight`` runs the checks of ``sage-sync doctor`` for the run's dossier and fails fast, with the table in its
log, on a blocking problem: a bad dossiers-file entry, a missing connection or ODBC driver, a missing table or
column, an undeclared ``Z_`` field, an unreadable media folder. It also says whether the run resumes a dossier that
was switched off (M3) and stages the SSM value lists the extracts then reuse.

``match`` proposes first-sync matches, applies a person's decisions, binds what is sure and stages what the
run's extracts must hold (see :mod:`sage_sync.onboarding.step`). Both call the API, so both take a slot of the
``ssm_api`` pool.
"""

from __future__ import annotations

import logging
from typing import Any

from airflow.sdk import Context

from sage_sync.errors import ConfigurationError
from sage_sync.operators.base import RESUME_FILE, SageSyncBaseOperator

log = logging.getLogger(__name__)


class SageSyncPreflightOperator(SageSyncBaseOperator):
    """Check both connections, the ODBC driver, the tables and columns, the SSM lists and fields (O2)."""

    ui_color = "#fadbd8"

    def run(self, context: Context) -> dict[str, Any]:
        """Run the checks, decide the run mode (M3), stage both; fail on a blocking problem."""
        from sage_sync.engine.pipeline import RunFlags
        from sage_sync.engine.resume import resume_reason
        from sage_sync.onboarding.doctor import Check, blocking, render, run_checks

        target = self.dossier or self.config_path or "settings"
        try:
            settings = self.settings()
        except ConfigurationError as exc:
            table = render(
                [Check("dossiers file" if self.dossier else "settings", target, "blocking", str(exc))]
            )
            log.error("%s", table)
            raise ConfigurationError(f"preflight of {target}: nothing is synced\n{table}") from None
        run_id = str(context["run_id"])
        checks, side = run_checks(settings, self.sage50_conn_id, self.ssm_conn_id)
        asked = RunFlags.from_params(dict(context.get("params") or {})).sage_master
        found = (
            resume_reason(self.open_state(settings), settings.resume_after_hours)
            if not blocking(checks)
            else None
        )
        reason = "asked for (resume param): Sage is master on this run (M3)" if asked else found
        checks.append(
            Check(
                "run mode",
                settings.dossier.name if settings.dossier else "dossier",
                "ok",
                reason or "incremental sync",
            )
        )
        staging = settings.staging(run_id)
        staging.write_json(None, "preflight.json", {"checks": [c.to_dict() for c in checks]})
        staging.write_json(None, RESUME_FILE, {"resume": bool(reason), "reason": reason})
        if side is not None:
            staging.write_json(None, "value_lists.json", side.value_lists().to_dict())
        table = render(checks, title=f"Preflight of {target}")
        stop = blocking(checks)
        if stop:
            log.error("%s", table)
            raise ConfigurationError(f"{len(stop)} blocking problem(s), nothing is synced:\n{table}")
        log.info("%s", table)
        return {
            "checks": len(checks),
            "warnings": sum(c.status == "warning" for c in checks),
            "resume": bool(reason),
        }


class SageSyncMatchOperator(SageSyncBaseOperator):
    """First-sync matching onto a tenant in use (O1): propose, apply decisions, bind, hold."""

    ui_color = "#d1f2eb"

    def run(self, context: Context) -> dict[str, Any]:
        """Run the match step; log its sentence, the pairs that wait for a person, and any bad decision row."""
        from sage_sync.engine.holds import MATCH_FILE
        from sage_sync.engine.pipeline.context import param_flag
        from sage_sync.engine.pipeline.lease_step import hold
        from sage_sync.onboarding.step import match
        from sage_sync.operators.sides import sage_side, ssm_side

        settings = self.settings()
        run_id = str(context["run_id"])
        staging = settings.staging(run_id)
        flags = self.flags(context, settings)
        state = self.open_state(settings)
        hold(run_id, state, flags)  # binding writes to SSM: only the run holding the lease may (G5)
        summary = match(
            run_id,
            staging,
            sage_side(self.sage50_conn_id, settings),
            ssm_side(self.ssm_conn_id, settings),
            state,
            folder=settings.matching_dir,
            threshold=settings.match_auto_confidence,
            dry_run=flags.dry_run,
            requested=param_flag((context.get("params") or {}).get("match")),
        )
        log.info("%s", summary.sentence())
        rows = (staging.read_json_or_none(None, MATCH_FILE) or {}).get("rows") or []
        waiting = [r for r in rows if r["status"] in ("open", "ambiguous")]
        if waiting:
            shown = "\n".join(
                f"  {r['entity']:<9} {r['sage_key']:<18} SSM {r['ssm_id']:<8} {r['status']:<10} "
                f"{float(r['confidence']):.2f}  {r['evidence']}"
                for r in waiting[:50]
            )
            log.info(
                "%d pair(s) wait for a decision in %s (bind, reject or ssm_only):\n%s",
                len(waiting),
                settings.matching_dir / "decisions.csv",
                shown,
            )
        for problem in summary.problems:
            log.warning("%s", problem)
        return summary.to_dict()
