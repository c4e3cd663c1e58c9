"""Step 5, commit: advance the state for confirmed records only (snapshot, bindings, watermark, quarantine, G5, G7).

The load already committed the records it confirmed as it went, and says how far in ``apply.json``
(:mod:`sage_sync.engine.commit_stream`): this step stores the rest (what the load could not), the records the
plan did not write (deferred, skipped, quarantined), the pending SSM records, the conflicts and the run's counts.
In a dry run nothing is recorded: the counts are those of the plan. The SSM watermark of a two-way entity moves
to the newest ``dateUpdated`` read, unless its load was stopped by a table failure (its changes were not looked
at); records the run could not finish are on the pending list, so moving past them loses nothing. When every
write of a two-way entity was confirmed, the ids its creates got are remembered so that the next reads skip them
(:mod:`sage_sync.engine.own_creates`). Stages ``commit.json``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sage_sync.engine.apply import ApplyResult
from sage_sync.engine.bad_keys import MISSING_KEY
from sage_sync.engine.collector import paused_collector
from sage_sync.engine.commit import CommitProgress, EntityCounts, commit_plan, count_plan
from sage_sync.engine.own_creates import confirmed_range, with_range
from sage_sync.engine.pipeline.context import StepContext
from sage_sync.engine.pipeline.lease_step import hold
from sage_sync.engine.pipeline.plan_step import staged_plan
from sage_sync.engine.state import StateStore


@dataclass(frozen=True)
class CommitSummary:
    """The entity's G7 counts for the run (the task's XCom)."""

    entity: str
    counts: EntityCounts
    dry_run: bool

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: the entity, the counts, and whether it was a dry run."""
        return {"entity": self.entity, "dry_run": self.dry_run, **self.counts.to_dict()}


def commit(ctx: StepContext, state: StateStore) -> CommitSummary:
    """Record what the load confirmed; return the G7 counts."""
    with paused_collector():  # the plan, the outcomes and the state rows are trees of millions of objects
        return _commit(ctx, state)


def seen_dates(extracted: dict[str, Any]) -> dict[int, str]:
    """The ``dateUpdated`` of each SSM record the extract read (``extract.json``), by SSM id."""
    return {int(sid): str(date) for sid, date in (extracted.get("seen") or {}).items()}


def _commit(ctx: StepContext, state: StateStore) -> CommitSummary:
    extracted = ctx.staging.read_json(ctx.name, "extract.json")
    # Its ops and commits are read as they are stored (a dry run counts its ops).
    current = staged_plan(ctx, ops=ctx.flags.dry_run, commits=False)
    quality = ctx.staging.read_json(ctx.name, "quality.json")
    raw = ctx.staging.read_json(ctx.name, "apply.json")
    applied = ApplyResult.from_dict(raw)
    duration = time.time() - float(extracted.get("started") or time.time())
    api_calls = int(extracted.get("api_calls") or 0) + applied.api_calls
    if ctx.flags.dry_run:
        counts = count_plan(current, None)
        counts.api_calls = api_calls
        ctx.staging.write_json(
            ctx.name, "commit.json", {"counts": counts.to_dict(), "dry_run": True, "log": []}
        )
        return CommitSummary(ctx.name, counts, True)
    hold(ctx.run_id, state, ctx.flags)
    seen = seen_dates(extracted)
    done = CommitProgress.from_dict(raw.get("committed"))  # what the load committed as it went
    result = commit_plan(
        current,
        applied,
        state,
        ctx.run_name,
        seen,
        ctx.staging.staged_commits(ctx.name, start=done.commits),
        ops=ctx.staging.staged_plan_ops(ctx.name, start=done.ops),
        done=done,
    )
    for sid, reason in (quality.get("held_ssm_ids") or {}).items():
        state.set_pending(ctx.name, int(sid), "G3", reason)
    # A row without key that is gone (given its key, or deleted) leaves the open quarantine.
    bad_keys = extracted.get("bad_keys") or {}
    state.release_quarantine(
        ctx.name, [k for k in state.quarantined(ctx.name) if k.startswith(MISSING_KEY) and k not in bad_keys]
    )
    if ctx.entity.two_way and seen and not quality["stop_load"]:
        state.set_watermark(ctx.name, max(seen.values()))
    made = confirmed_range(applied.outcomes, ctx.name) if ctx.entity.two_way else None
    if made is not None:
        state.set_own_creates(ctx.name, with_range(state.own_creates(ctx.name), *made))
    counts = result.counts
    counts.api_calls = api_calls
    state.record_entity(ctx.run_name, ctx.name, counts.to_dict(), api_calls, duration)
    ctx.staging.write_json(
        ctx.name,
        "commit.json",
        {"counts": counts.to_dict(), "dry_run": False, "duration_s": duration, "log": result.log},
    )
    return CommitSummary(ctx.name, counts, False)
