"""Step 3, plan: diff, three-way merge and the entity's rules turn the validated input into a plan (no I/O).

A two-way entity's writes to Sage are checked with its ``to_sage`` suite first (G3): a record Sage cannot store
loses its ops and commits (and those depending on it), is noted as quarantined, and its SSM record is kept
pending so the next run looks at it again. Stages ``plan.jsonl`` and its digest.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd

from sage_sync.engine.codec import key_fields
from sage_sync.engine.collector import paused_collector
from sage_sync.engine.config import SyncConfig
from sage_sync.engine.inputs import PlanInput
from sage_sync.engine.pipeline.context import StepContext
from sage_sync.engine.plan import Note, Op, Plan, PlanSpool, digest
from sage_sync.engine.reconcile import reconciled_unchanged
from sage_sync.engine.rules import RULES
from sage_sync.engine.staging import PLAN_INPUT
from sage_sync.mapping.registry import registry
from sage_sync.quality import REASONS_COLUMN, validate_entity


@dataclass(frozen=True)
class PlanSummary:
    """The plan in counts (the task's XCom)."""

    entity: str
    ops: int
    by_kind: dict[str, int] = field(default_factory=dict)
    deferred: int = 0
    quarantined: int = 0
    conflicts: int = 0
    guard: str | None = None
    withheld_set: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


def plan_entity(inp: PlanInput, config: SyncConfig, spool: PlanSpool | None = None) -> Plan:
    """The plan of one entity from its plan input (no I/O but the ``spool``'s, for an entity whose planner settles)."""
    rules = RULES[inp.entity]
    plan = (
        rules.spooled(inp, config, spool) if spool is not None and rules.spooled else rules.plan(inp, config)
    )
    if registry()[inp.entity].two_way:
        plan.unchanged += reconciled_unchanged(inp, plan)
    return plan


def check_writes_to_sage(plan: Plan, ctx: StepContext) -> dict[str, str]:
    """Validate the rows ``plan`` writes to Sage with the entity's ``to_sage`` suite; drop blocked records (G3).

    Inserts are checked as full rows; updates in groups with the same changed fields (a rule on a field an update
    does not touch is not evaluated). Warnings are added to the plan (the row is written). Returns the blocked keys
    with their reasons.
    """
    suite = ctx.entity.to_sage_suite
    if suite is None:
        return {}
    entity = plan.entity
    groups: dict[tuple[str, frozenset[str]], list[tuple[Op, dict[str, Any]]]] = {}
    for op in plan.ops:
        if op.entity == entity and op.kind in ("sage_insert", "sage_update"):
            row = {**op.fields, **key_fields(entity, op.key)} if op.kind == "sage_update" else dict(op.fields)
            groups.setdefault((op.kind, frozenset(row)), []).append((op, row))
    blocked: dict[str, str] = {}
    for rows in groups.values():
        frame = pd.DataFrame([row for _, row in rows])
        report = validate_entity(suite, frame, data_docs=ctx.data_docs, run_id=ctx.run_id)
        for position, reason in zip(
            report.quarantined_rows.index.tolist(), report.quarantined_rows[REASONS_COLUMN], strict=True
        ):
            blocked[rows[int(position)][0].key] = str(reason)
        by_key = {op.key: op for op, _ in rows}
        for issue in report.warnings:
            warned = by_key.get(issue.key)
            plan.warnings.append(
                Note(
                    entity,
                    issue.key,
                    "G3",
                    f"to Sage: {issue.expectation}: {issue.reason}",
                    warned.ssm_id if warned else None,
                )
            )
    if blocked:
        _drop(plan, blocked)
    return blocked


def _drop(plan: Plan, blocked: dict[str, str]) -> None:
    """Take the blocked records (and what depends on them) out of ``plan``; keep their SSM records pending."""
    entity = plan.entity
    gone = {(entity, key) for key in blocked}
    for commit in plan.commits:
        if (commit.entity, commit.key) in gone or any((d[0], d[1]) in gone for d in commit.depends):
            for sid in commit.ssm_ids:
                plan.pending[int(sid)] = f"G3: quarantined before the Sage write ({commit.key})"
    for op in plan.ops:
        if (op.entity, op.key) in gone and op.ssm_id is not None:
            plan.pending[int(op.ssm_id)] = f"G3: quarantined before the Sage write ({op.key})"
    plan.ops = [op for op in plan.ops if (op.entity, op.key) not in gone]
    plan.commits = [
        c
        for c in plan.commits
        if (c.entity, c.key) not in gone and not any((d[0], d[1]) in gone for d in c.depends)
    ]
    plan.quarantined.extend(
        Note(entity, key, "G3", f"to Sage: {reason}") for key, reason in sorted(blocked.items())
    )


def plan(ctx: StepContext) -> PlanSummary:
    """Plan the entity (or stop on a table failure) and stage it; return the op counts."""
    with paused_collector():  # the plan input and the plan are trees of millions of objects at `large`
        return _plan(ctx)


def _plan(ctx: StepContext) -> PlanSummary:
    inp = ctx.staging.read_input(ctx.name, PLAN_INPUT)
    inp.approved_deletions = ctx.flags.approve_deletions.get(ctx.name)
    quality = ctx.staging.read_json(ctx.name, "quality.json")
    with ctx.staging.plan_spool() as spool:  # a planner that settles writes its plan as it makes it
        if quality["stop_load"]:
            reasons = "; ".join(f["reason"] for f in quality["table_failures"])
            result = Plan(ctx.name, unchanged=inp.unchanged, guard=f"load stopped by data quality: {reasons}")
        else:
            result = plan_entity(inp, ctx.config, spool)
            check_writes_to_sage(result, ctx)
        result.quarantined.extend(Note(ctx.name, k, "G3", r) for k, r in sorted(quality["blocking"].items()))
        result.warnings.extend(Note(ctx.name, k, "G3", r) for k, r in sorted(quality["warnings"].items()))
        ctx.staging.write_plan(ctx.name, result)
        # What the report and the approvals read of the plan.
        ctx.staging.write_json(ctx.name, "plan_digest.json", digest(result))
    return PlanSummary(
        entity=ctx.name,
        ops=result.op_count,
        by_kind=dict(result.kinds()),
        deferred=len(result.deferred),
        quarantined=len(result.quarantined),
        conflicts=len(result.conflicts),
        guard=result.guard,
        withheld_set=result.withheld_set,
    )


def staged_plan(ctx: StepContext, *, ops: bool = True, commits: bool = True) -> Plan:
    """The plan the plan step staged for this entity in this run (without its ops or commits when those are False)."""
    return ctx.staging.read_plan(ctx.name, ops=ops, commits=commits)
