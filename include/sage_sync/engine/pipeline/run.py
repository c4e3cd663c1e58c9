"""One whole run in one process: every entity's steps in dependency order, then the report.

This is exactly what the DAG runs, one task per step: the same step functions, the same staged files between
them. The tests, the stateful test and the command line use it; the DAG's operators call the steps one by one.
"""

from __future__ import annotations

import tempfile
import time
import uuid
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sage_sync.engine.commit import EntityCounts
from sage_sync.engine.config import SyncConfig
from sage_sync.engine.pipeline.commit_step import commit
from sage_sync.engine.pipeline.context import RunFlags, StepContext
from sage_sync.engine.pipeline.extract_step import extract
from sage_sync.engine.pipeline.lease_step import begin, end
from sage_sync.engine.pipeline.load_step import load
from sage_sync.engine.pipeline.plan_step import plan, staged_plan
from sage_sync.engine.pipeline.report_step import report
from sage_sync.engine.pipeline.validate_step import validate
from sage_sync.engine.plan import Plan
from sage_sync.engine.sides import SageSide, SsmSide
from sage_sync.engine.staging import Staging, run_name
from sage_sync.engine.state import StateStore, now_iso
from sage_sync.location import Location
from sage_sync.mapping.registry import entity_names, registry

if TYPE_CHECKING:
    from sage_sync.quality.data_docs import DataDocsSite


@dataclass
class RunResult:
    """What one run did: counts per entity, API calls, duration, the plans and the report (G7, G8)."""

    run_id: str
    dry_run: bool
    counts: dict[str, EntityCounts] = field(default_factory=dict)
    plans: dict[str, Plan] = field(default_factory=dict)
    api_calls: int = 0
    duration_s: float = 0.0
    guards: dict[str, str] = field(default_factory=dict)
    report: dict[str, Any] = field(default_factory=dict)

    @property
    def planned_ops(self) -> int:
        """How many writes the run planned over all entities."""
        return sum(len(p.ops) for p in self.plans.values())

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (without the plans and the report)."""
        return {
            "run_id": self.run_id,
            "dry_run": self.dry_run,
            "counts": {k: asdict(v) for k, v in self.counts.items()},
            "api_calls": self.api_calls,
            "duration_s": self.duration_s,
            "guards": self.guards,
        }

    def render(self) -> str:
        """Every plan as a table (the dry-run report)."""
        return "\n\n".join(p.render() for p in self.plans.values())


def run_once(
    sage: SageSide,
    ssm: SsmSide,
    state: StateStore,
    config: SyncConfig | None = None,
    *,
    dry_run: bool = False,
    full_reconcile: bool = False,
    resume: bool = False,
    approve_deletions: dict[str, int | str] | None = None,
    entities: tuple[str, ...] | None = None,
    run_id: str | None = None,
    staging_root: Location | None = None,
    reports_dir: Location | None = None,
    data_docs: DataDocsSite | None = None,
) -> RunResult:
    """Run every step of ``entities`` (default: all, in dependency order), then the report.

    ``resume`` makes it the first run back of a dossier that was switched off (M3: Sage is master). ``run_id``
    names the run (default: a new one), e.g. to find files a step outside the pipeline staged for it (the match
    step's held records, O1).
    ``staging_root`` holds the run's step files (default: a temporary folder removed afterwards);
    ``reports_dir`` receives the report files and ``data_docs`` says where the Great Expectations Data Docs are
    built and served (default: neither is written); each may be a local folder or a place in an object store.
    ``approve_deletions`` approves deletions the G4 guard withholds (A1), per entity, by their count or set
    fingerprint.
    """
    config = config or SyncConfig()
    flags = RunFlags.from_params(
        {"dry_run": dry_run, "full_reconcile": full_reconcile, "approve_deletions": approve_deletions}
    ).resumed(resume)
    run_id = run_id or f"run_{uuid.uuid4().hex[:16]}"
    wanted = set(entities or entity_names())
    started, started_at = time.monotonic(), now_iso()
    calls_before = ssm.api_calls()
    result = RunResult(run_id, dry_run)
    with ExitStack() as stack:
        root = (
            staging_root
            if staging_root is not None
            else Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="sage-sync-")))
        )
        staging = Staging(root / run_name(run_id))
        begin(run_id, staging, state, flags)
        # As the DAG's report task does whatever happened upstream, a run that stops half-way gives the lease back.
        stack.callback(end, run_id, state)
        for spec in registry():
            if spec.name not in wanted:
                continue
            ctx = StepContext(run_id, spec, staging, config, flags, data_docs)
            extract(ctx, sage, ssm, state)
            validate(ctx, state)
            plan(ctx)
            load(ctx, sage, ssm, state)
            committed = commit(ctx, state)
            result.counts[spec.name] = committed.counts
            result.plans[spec.name] = staged_plan(ctx)
            if result.plans[spec.name].guard:
                result.guards[spec.name] = str(result.plans[spec.name].guard)
        result.report = report(
            run_id, staging, state, flags=flags, reports_dir=reports_dir, started_at=started_at
        ).report
    result.api_calls = ssm.api_calls() - calls_before
    result.duration_s = time.monotonic() - started
    return result
