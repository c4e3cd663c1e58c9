"""Approval of withheld deletions by a person (G4, A1): the ``approve`` and ``apply_approved`` tasks of an entity.

``approve`` (a human-in-the-loop :class:`~airflow.providers.standard.operators.hitl.ApprovalOperator`) runs after
the entity's commit. When the G4 guard withheld the entity's deletions in this run, it asks in the Airflow UI
("Required actions") with the count and a sample of the records, and waits at most ``approval_timeout_minutes``
(settings; under the 15-minute schedule, so with ``max_active_runs=1`` waiting runs never pile up). Otherwise it
skips (nothing withheld, a dry run, asking turned off, or this very set was rejected before: see
:mod:`sage_sync.approvals`).

- *Approve*: ``apply_approved`` runs the entity's pipeline again (extract -> validate -> plan -> load -> commit,
  its files in ``<run>__approved``) with the approval of exactly the approved set: Sage is read again, and if the
  deletions are no longer that set nothing is deleted.
- *Reject*: ``apply_approved`` is skipped; the set stays withheld and is not asked about again.
- No answer in time: the default answer "Reject" is taken, recorded as a timeout (not a decision): withheld, asked
  again by the next run.

Who decided and when is written beside the run's step files, and the run report shows it.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from airflow.providers.standard.operators.hitl import ApprovalOperator
from airflow.sdk import Context
from airflow.sdk.exceptions import AirflowSkipException

from sage_sync.operators.base import EntityOperator, SageSyncBaseOperator

log = logging.getLogger(__name__)


class SageSyncDeletionApprovalOperator(ApprovalOperator):
    """Ask a person to approve the deletions G4 withheld for ``entity`` in this run (skips when none)."""

    ui_color = "#fcf3cf"

    def __init__(
        self,
        *,
        entity: str,
        config_path: str | None = None,
        dossier: str | None = None,
        sage50_conn_id: str = "sage50_default",
        ssm_conn_id: str = "ssm_default",
        **kwargs: Any,
    ) -> None:
        super().__init__(
            subject=f"Approve withheld deletions of {entity}",
            defaults=ApprovalOperator.REJECT,
            response_timeout=timedelta(minutes=10),
            **kwargs,
        )
        self.entity = entity
        self.config_path = config_path
        self.dossier = dossier
        self.sage50_conn_id, self.ssm_conn_id = sage50_conn_id, ssm_conn_id

    def _settings(self) -> Any:
        """The dossier's settings, read as every sync task reads them (its dossiers-file entry, or settings.yaml)."""
        return SageSyncBaseOperator(
            task_id="settings", config_path=self.config_path, dossier=self.dossier
        ).settings()

    def execute(self, context: Context) -> Any:
        """Skip, or write the question (count, sample) and wait for the answer."""
        from sage_sync.approvals import question, rejected_before, withheld

        settings = self._settings()
        flags = SageSyncBaseOperator.flags(context, settings)
        found = withheld(settings.staging(str(context["run_id"])), self.entity)
        if found is None:
            raise AirflowSkipException(f"G4 withheld no deletion of {self.entity} in this run")
        if flags.dry_run:
            raise AirflowSkipException("dry run: nothing would be applied, no approval asked")
        if self.entity in flags.approve_deletions:
            raise AirflowSkipException(f"the run's conf approves {self.entity}: {flags.approve_deletions}")
        if settings.approval_timeout_minutes <= 0:
            raise AirflowSkipException("approval_timeout_minutes is 0: approvals only by the run's conf (A1)")
        earlier = rejected_before(settings.shared, self.entity, found["set"])
        if earlier:
            raise AirflowSkipException(
                f"set {found['set']} ({found['count']} deletion(s)) was rejected by {earlier.get('by')} at "
                f"{earlier.get('at')}: not asked again until the set changes"
            )
        self.subject, self.body = question(self.entity, found)
        self.response_timeout = timedelta(minutes=settings.approval_timeout_minutes)
        log.info("asking to approve %s deletion(s) of %s (set %s)", found["count"], self.entity, found["set"])
        return super().execute(context)

    def execute_complete(self, context: Context, event: dict[str, Any]) -> Any:
        """Record who decided what and when (a timeout is recorded as such), then approve or skip downstream."""
        from sage_sync.approvals import APPROVE, REJECT, TIMEOUT, record, withheld

        settings = self._settings()
        staging = settings.staging(str(context["run_id"]))
        found = withheld(staging, self.entity) or {}
        chosen = list(event.get("chosen_options") or [])
        user = event.get("responded_by_user") or None
        if isinstance(user, dict):
            by = user.get("name") or user.get("id")
        else:
            by = (getattr(user, "name", None) or getattr(user, "id", None)) if user is not None else None
        at: Any = event.get("responded_at")
        at_text = at.isoformat() if hasattr(at, "isoformat") else str(at or "")
        if "error" in event or by is None:
            decision = TIMEOUT
        else:
            decision = APPROVE if chosen == [ApprovalOperator.APPROVE] else REJECT
        entry = record(settings.shared, staging, self.entity, found, decision, by, at_text)
        log.info("deletions of %s: %s", self.entity, entry)
        if "error" in event:
            # A timeout without a default answer: the set stays withheld, the run goes on.
            self.skip(ti=context["ti"], tasks=list(context["task"].get_direct_relatives(upstream=False)))
            return entry
        return super().execute_complete(context, event)


class SageSyncApplyApprovedOperator(EntityOperator):
    """Apply exactly the approved set of deletions: the entity's pipeline again, with that approval (A1)."""

    ui_color = "#f5b7b1"

    def run(self, context: Context) -> dict[str, Any]:
        """Re-read both sides, plan with the approval of the recorded set, load and commit; amend the decision."""
        from dataclasses import replace

        from sage_sync.approvals import DECISION_FILE, amend
        from sage_sync.engine.pipeline import commit, extract, load, plan, validate
        from sage_sync.engine.plan import staged_digest
        from sage_sync.operators.sides import sage_side, ssm_side

        settings = self.settings()
        run_id = str(context["run_id"])
        staging = settings.staging(run_id)
        decision = staging.read_json(self.entity, DECISION_FILE)
        ctx = self.step_context(context, settings)
        approved = {**ctx.flags.approve_deletions, self.entity: str(decision["set"])}
        ctx = replace(
            ctx,
            staging=settings.approved_staging(run_id),
            flags=replace(ctx.flags, approve_deletions=approved),
        )
        state = self.open_state(settings)
        sage, ssm = sage_side(self.sage50_conn_id, settings), ssm_side(self.ssm_conn_id)
        extract(ctx, sage, ssm, state)
        validate(ctx, state)
        planned = plan(ctx)
        load(ctx, sage, ssm, state)
        committed = commit(ctx, state)
        still = staged_digest(ctx.staging, self.entity) or {}
        applied = still.get("approval") == str(decision["set"])
        counts = committed.to_dict()
        entry = amend(
            staging,
            self.entity,
            applied=applied,
            deleted=int(counts.get("deleted", 0) or 0) if applied else 0,
            applied_counts=counts,
            note=None
            if applied
            else f"the deletions are no longer set {decision['set']} (now {still.get('withheld_set')}): none applied",
        )
        log.info("approved deletions of %s: %s (plan %s)", self.entity, entry, planned.to_dict())
        return entry
