"""The steps that build millions of objects run without the cycle collector (ADR 0018, decision 26).

Observed with ``gc.callbacks``: no collection starts while a step file is parsed, nor during the plan and commit
steps of a run through the steps as the DAG's tasks run them; the collector is back on (or still off, when it
was) afterwards, and the run's outcome on both systems is the same.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson

from sage_sync.engine.collector import paused_collector
from sage_sync.engine.pipeline import RunFlags, StepContext, commit, extract, load, plan, report, validate
from sage_sync.engine.staging import Staging
from tests.support.memory import SyncWorld, account_row, put_article, put_invoice, put_invoice_line


@contextmanager
def collections() -> Iterator[list[int]]:
    """The generations of the collections that start inside the block (counted from an empty young generation)."""
    started: list[int] = []
    gc.collect()  # else the few allocations before a pause may complete a young generation begun earlier

    def seen(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            started.append(int(info["generation"]))

    gc.callbacks.append(seen)
    try:
        yield started
    finally:
        gc.callbacks.remove(seen)


def test_a_step_file_is_parsed_without_collections_and_the_collector_is_restored(tmp_path: Path) -> None:
    staging = Staging(tmp_path)
    ops = [{"key": f"F{n}", "fields": {"n": n}} for n in range(50_000)]
    target = staging.write_json("invoices", "plan.json", {"ops": ops})
    assert gc.isenabled()
    with collections() as started:
        parsed = staging.read_json("invoices", "plan.json")
    assert parsed == {"ops": ops}
    # One young pass once the collector resumes, over what was built; none while 100,000 dicts were made.
    assert len(started) <= 1, started
    assert gc.isenabled()
    # The same parse with the collector on runs a collection every few hundred dicts.
    with collections() as started:
        orjson.loads(target.read_bytes())
    assert len(started) > 10, started


def test_a_pause_inside_a_pause_keeps_the_collector_off_until_the_outer_one_ends() -> None:
    with paused_collector():
        with paused_collector():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    try:
        with paused_collector():
            pass
        assert not gc.isenabled()  # a caller that had it off keeps it off
    finally:
        gc.enable()


def _timed(steps: dict[str, list[int]], name: str, call: Callable[[], Any]) -> None:
    with collections() as started:
        call()
    steps.setdefault(name, []).extend(started)


def test_i1_the_plan_and_commit_steps_run_without_a_collection_and_still_sync(tmp_path: Path) -> None:
    w = SyncWorld()
    w.sage.put("accounts", account_row("C001", "Cave Dupont", city="Lyon"))
    put_article(w.sage, "A1")
    for n in range(1, 41):
        piece = f"F{n:05d}"
        put_invoice(w.sage, piece)
        for line in range(1, 6):
            put_invoice_line(w.sage, piece, n * 10 + line, article_ref="A1")
    steps: dict[str, list[int]] = {}
    w.ssm.advance(900)
    for entity in ("accounts", "products", "invoices"):
        ctx = StepContext.of("run1", entity, Staging(tmp_path / "run1"), config=w.config)
        extract(ctx, w.sage, w.ssm, w.state)
        validate(ctx, w.state)
        _timed(steps, "plan", lambda ctx=ctx: plan(ctx))
        load(ctx, w.sage, w.ssm, w.state)
        _timed(steps, "commit", lambda ctx=ctx: commit(ctx, w.state))
    report("run1", Staging(tmp_path / "run1"), w.state, flags=RunFlags())
    # At most the young passes once the collector resumes (with it on: one every few hundred objects built).
    assert all(len(started) <= 2 for started in steps.values()), steps
    assert gc.isenabled()
    # I1: every invoice and line reached SSM and is bound in the state.
    assert len(w.ssm.live("salesorders")) == 40 and len(w.ssm.live("salesordersLines")) == 200
    assert len(w.state.live_ssm_ids("invoices")) == 40
