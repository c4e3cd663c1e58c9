"""Step 4, load: apply the staged plan, Sage write-back first, then SSM bulk writes with per-item outcomes (G5, G6).

The records whose writes are confirmed are committed as the load goes (:mod:`sage_sync.engine.commit_stream`); the
commit step stores the rest. A dry run (G8) and an empty plan open no connection and make no call. A plan made
before another run committed the entity is stale and never applied (the state token taken at extract time no
longer matches): re-running an old interval re-plans on current data instead of writing older data over newer.
Stages ``apply.json``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from sage_sync.engine.apply import ApplyResult, apply_ops
from sage_sync.engine.commit_stream import CommitStream
from sage_sync.engine.pipeline.commit_step import seen_dates
from sage_sync.engine.pipeline.context import StepContext
from sage_sync.engine.pipeline.lease_step import hold
from sage_sync.engine.sides import SageSide, SsmSide
from sage_sync.engine.state import StateStore
from sage_sync.errors import FatalSyncError


@dataclass(frozen=True)
class LoadSummary:
    """What the load wrote (the task's XCom)."""

    entity: str
    ops: int
    applied: int
    failed: int
    api_calls: int
    skipped: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


def load(ctx: StepContext, sage: SageSide, ssm: SsmSide, state: StateStore) -> LoadSummary:
    """Apply the staged plan (unless a dry run or an empty plan); return the outcome counts.

    The plan's ops are read a group at a time as the writes reach them (:class:`~sage_sync.engine.staging.StagedOps`),
    and a reference to another entity's record reads that entity's bound SSM ids when first met.
    """
    with ctx.staging.staged_ops(ctx.name) as ops:
        if ctx.flags.dry_run or not len(ops):
            skipped = "dry run" if ctx.flags.dry_run else "no op"
            ctx.staging.write_json(
                ctx.name, "apply.json", {**ApplyResult(ctx.name).to_dict(), "skipped": skipped}
            )
            return LoadSummary(ctx.name, len(ops), 0, 0, 0, skipped)
        hold(ctx.run_id, state, ctx.flags)
        extracted = ctx.staging.read_json(ctx.name, "extract.json")
        token = extracted["token"]
        if state.token(ctx.name) != token:
            raise FatalSyncError(
                f"{ctx.name}: another run committed since this plan was made; clear the whole {ctx.name} task "
                "group to re-plan on current data (the staged plan is never re-sent)"
            )
        with CommitStream(ctx.staging, ctx.name, state, ctx.run_name, seen_dates(extracted)) as stream:
            applied = apply_ops(ctx.name, ops, sage, ssm, ids_of=state.live_ssm_ids, watch=stream.watch)
    ctx.staging.write_json(
        ctx.name, "apply.json", {**applied.to_dict(), "committed": stream.progress.to_dict()}
    )
    failed = sum(1 for o in applied.outcomes if not o.ok)
    return LoadSummary(ctx.name, len(ops), len(applied.outcomes) - failed, failed, applied.api_calls)


def failures(ctx: StepContext, limit: int = 20) -> list[str]:
    """The first failed writes of the staged load, as sentences (for the task log)."""
    raw = ctx.staging.read_json(ctx.name, "apply.json")
    bad = [o for o in raw.get("outcomes") or [] if not o.get("ok")]
    return [f"{o['entity']} {o['kind']} {o['key']} failed: {o.get('error')}" for o in bad[:limit]]
