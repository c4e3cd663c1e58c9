"""The run lease: one run at a time writes to a dossier and its tenant (G1, G5).

``max_active_runs=1`` covers one scheduler's runs of one DAG, not a manual ``airflow dags test``, a second
deployment, or a zombie task whose retry overlaps the next run. The lease lives in the state store, so every
runner that shares the state shares it: the first step of a run takes it (one atomic upsert, ADR 0014), every
step that writes renews it and checks it still holds it, and the report gives it back. A second run finds it held
and does nothing, saying who holds it; a lease whose run died expires after :data:`LEASE_SECONDS`.

A dry run writes nothing and takes no lease.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from sage_sync.engine.pipeline.context import RunFlags
from sage_sync.engine.staging import Staging
from sage_sync.engine.state import Lease, StateStore
from sage_sync.errors import FatalSyncError

#: The lease every writing run of one state store takes.
RUN_LEASE = "sync"
#: How long a lease holds without renewal: longer than the longest task (30-minute timeout), so a live run never
#: loses it, and short enough that a run whose worker died frees the dossier within the hour.
LEASE_SECONDS = 45 * 60


class RunInProgress(FatalSyncError):
    """Another run holds the lease: this run must not write."""

    def __init__(self, lease: Lease) -> None:
        """Say who holds the lease and until when."""
        super().__init__(
            f"another run ({lease.holder}) holds the sync since {lease.acquired_at} (until {lease.expires_at} "
            "unless it finishes first); this run does nothing"
        )
        self.lease = lease


@dataclass(frozen=True)
class BeginSummary:
    """The start of a run (the task's XCom): whether it holds the lease, and who does."""

    run_id: str
    holder: str | None
    skipped: bool

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return asdict(self)


def begin(run_id: str, staging: Staging, state: StateStore, flags: RunFlags) -> BeginSummary:
    """Take the run lease (not for a dry run) and note the outcome in the run's staging area.

    Raises:
        RunInProgress: another run holds the lease (its outcome is staged first, for the report).
    """
    lease = None if flags.dry_run else state.acquire_lease(RUN_LEASE, run_id, LEASE_SECONDS)
    summary = BeginSummary(
        run_id, lease.holder if lease else None, lease is not None and not lease.held_by(run_id)
    )
    staging.write_json(None, "run.json", summary.to_dict())
    if lease is not None and summary.skipped:
        raise RunInProgress(lease)
    return summary


def hold(run_id: str, state: StateStore, flags: RunFlags) -> None:
    """Renew this run's lease before a write; fail when another run took it (this run's lease had expired).

    Raises:
        RunInProgress: the lease is another run's.
    """
    if flags.dry_run:
        return
    lease = state.acquire_lease(RUN_LEASE, run_id, LEASE_SECONDS)
    if not lease.held_by(run_id):
        raise RunInProgress(lease)


def end(run_id: str, state: StateStore) -> bool:
    """Give the lease back (a run that did not hold it gives nothing); True when this run held it."""
    return state.release_lease(RUN_LEASE, run_id)


def skipped(staging: Staging) -> dict[str, object] | None:
    """The run's start when it did nothing because another run held the lease, else None."""
    started = staging.read_json_or_none(None, "run.json")
    return started if started and started.get("skipped") else None
