"""G1/G5: one run at a time writes; the run lease is one atomic statement in the state store."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest

from sage_sync.engine.pipeline.lease_step import RUN_LEASE, RunInProgress
from sage_sync.engine.state import StateStore
from tests.support.memory import SyncWorld, account_row


def _store(tmp_path: Path) -> StateStore:
    state = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    state.migrate()
    return state


def test_a_held_lease_is_refused_to_another_holder_until_it_expires(tmp_path: Path) -> None:
    state = _store(tmp_path)
    first = state.acquire_lease(RUN_LEASE, "run-a", ttl_seconds=60)
    assert first.held_by("run-a")
    assert not state.acquire_lease(RUN_LEASE, "run-b", ttl_seconds=60).held_by("run-b")
    # The holder renews it and keeps its start time.
    again = state.acquire_lease(RUN_LEASE, "run-a", ttl_seconds=120)
    assert (
        again.held_by("run-a")
        and again.acquired_at == first.acquired_at
        and again.expires_at > first.expires_at
    )
    # Only the holder gives it back.
    assert not state.release_lease(RUN_LEASE, "run-b")
    assert state.release_lease(RUN_LEASE, "run-a")
    assert state.acquire_lease(RUN_LEASE, "run-b", ttl_seconds=60).held_by("run-b")


def test_an_expired_lease_goes_to_the_next_run(tmp_path: Path) -> None:
    state = _store(tmp_path)
    state.acquire_lease(RUN_LEASE, "dead-run", ttl_seconds=-1)  # its worker died long ago
    assert state.acquire_lease(RUN_LEASE, "next-run", ttl_seconds=60).held_by("next-run")


def _race(
    url: str, holder: str, start: multiprocessing.synchronize.Event, out: multiprocessing.Queue
) -> None:
    state = StateStore(url)
    start.wait()
    out.put(state.acquire_lease(RUN_LEASE, holder, ttl_seconds=60).holder)


def test_two_processes_starting_at_the_same_instant_get_one_lease(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    _store(tmp_path)
    context = multiprocessing.get_context("spawn")
    start, out = context.Event(), context.Queue()
    racers = [context.Process(target=_race, args=(url, f"run-{i}", start, out)) for i in range(4)]
    for p in racers:
        p.start()
    start.set()
    holders = {out.get(timeout=60) for _ in racers}
    for p in racers:
        p.join(timeout=60)
    assert len(holders) == 1, holders


def test_a_second_run_while_one_holds_the_lease_does_nothing_and_says_who_holds_it() -> None:
    w = SyncWorld()
    w.sage.put("accounts", account_row("C001", "Alpha"))
    w.state.acquire_lease(RUN_LEASE, "manual__other", ttl_seconds=600)
    with pytest.raises(RunInProgress, match=r"another run \(manual__other\) holds the sync"):
        w.run()
    assert w.ssm.writes == 0 and w.state.snapshot("accounts") == {}
    w.state.release_lease(RUN_LEASE, "manual__other")
    assert w.run().counts["accounts"].created == 1
    # A finished run gave the lease back; so did one that stopped half-way (G5: the next run can start).
    assert w.state.lease(RUN_LEASE) is None


def test_a_dry_run_takes_no_lease() -> None:
    w = SyncWorld()
    w.sage.put("accounts", account_row("C001", "Alpha"))
    w.state.acquire_lease(RUN_LEASE, "manual__other", ttl_seconds=600)
    assert w.run(dry_run=True).counts["accounts"].created == 1  # G8: the plan, nothing written
    lease = w.state.lease(RUN_LEASE)
    assert lease is not None and lease.held_by("manual__other")
