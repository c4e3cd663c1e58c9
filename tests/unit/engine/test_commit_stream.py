"""The commit as the load goes (G5, G7): a record is committed beside the writes once all its writes are confirmed.

Through the DAG's step functions, on a state database in a file (the stream's own connection, in a thread) and in
memory (in the load's thread): the state holds an invoice only once its sales order and every line are in SSM,
while the load still writes; a refused line keeps its invoice out; a load that dies keeps what was confirmed and
the next run converges without a duplicate; a product whose picture upload fails is not committed; the commit step
stores the rest, and the record log holds each write once.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from sage_sync.engine import commit_stream
from sage_sync.engine.pipeline import RunFlags, StepContext, commit, extract, load, plan, report, validate
from sage_sync.engine.staging import Staging
from sage_sync.engine.state import StateStore
from tests.support.memory import (
    Fault,
    InMemorySsm,
    SimulatedCrash,
    SyncWorld,
    account_row,
    put_article,
    put_invoice,
    put_invoice_line,
)

INVOICES, LINES = 120, 5  # 600 lines: three calls of 200


def _world(tmp_path: Path, *, in_file: bool = True) -> SyncWorld:
    w = SyncWorld(f"sqlite:///{tmp_path / 'state.db'}" if in_file else "sqlite://")
    w.sage.put("accounts", account_row("C001", "Cave Dupont", city="Lyon"))
    put_article(w.sage, "A1")
    for n in range(1, INVOICES + 1):
        piece = f"F{n:05d}"
        put_invoice(w.sage, piece)
        for line in range(1, LINES + 1):
            put_invoice_line(w.sage, piece, n * 10 + line, article_ref="A1")
    return w


def _steps(w: SyncWorld, folder: Path, run: str, entity: str, *, commit_too: bool = True) -> StepContext:
    ctx = StepContext.of(run, entity, Staging(folder / run), config=w.config)
    extract(ctx, w.sage, w.ssm, w.state)
    validate(ctx, w.state)
    plan(ctx)
    load(ctx, w.sage, w.ssm, w.state)
    if commit_too:
        commit(ctx, w.state)
    return ctx


def _prepare(w: SyncWorld, folder: Path) -> None:
    w.ssm.advance(900)
    for entity in ("accounts", "products"):
        _steps(w, folder, "run1", entity)


def _end(folder: Path, run: str, w: SyncWorld) -> None:
    report(run, Staging(folder / run), w.state, flags=RunFlags())


def _consistent(w: SyncWorld, state: StateStore) -> int:
    """Assert every invoice the state holds is whole in SSM (its order and every line); return how many it holds."""
    orders = {r["extId"]: r["id"] for r in w.ssm.live("salesorders")}
    lines = Counter(r["salesOrderId"] for r in w.ssm.live("salesordersLines"))
    bound = state.live_ssm_ids("invoices")
    for piece, sid in bound.items():
        assert orders.get(piece) == sid, piece
        assert lines[sid] == LINES, (piece, lines[sid])
    for key, sid in state.live_ssm_ids("invoice_lines").items():
        assert sid in {r["id"] for r in w.ssm.live("salesordersLines")}, key
    return len(bound)


class _Watching(InMemorySsm):
    """The in-memory SSM, looking at the state before each call of lines: what it holds must be whole."""

    def __init__(self, state_url: str) -> None:
        super().__init__()
        self.state_url = state_url
        self.held: list[int] = []  # invoices in the state before each call of lines

    def bulk_create(self, endpoint: str, items: list[dict[str, Any]]) -> list[Any]:
        if endpoint == "salesordersLines" and self.data.get(endpoint):
            self.held.append(self.wait_for_commits())
        return super().bulk_create(endpoint, items)

    def wait_for_commits(self) -> int:
        """Until the stream stored the invoices whole in SSM so far (bounded): how many the state holds."""
        whole = sum(
            1
            for n in Counter(r["salesOrderId"] for r in self.live("salesordersLines")).values()
            if n == LINES
        )
        state = StateStore(self.state_url)
        deadline = time.monotonic() + 10
        held = _consistent(self.world, state)
        while held < whole and time.monotonic() < deadline:
            time.sleep(0.02)
            held = _consistent(self.world, state)
        state.engine.dispose()
        return held

    world: SyncWorld


def test_g5_the_load_commits_each_invoice_once_its_order_and_lines_are_confirmed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(commit_stream, "STREAM_CHUNK", 7)
    w = _world(tmp_path)
    w.ssm = _Watching(str(w.state.url))
    w.ssm.world = w
    _prepare(w, tmp_path)
    # The 7th line of the second call is refused: invoice F00042 (its 2nd line) stays out, the others go in.
    w.ssm.faults.armed.append(Fault("refuse", "create", "salesordersLines", calls_left=1, item=6))
    ctx = _steps(w, tmp_path, "run1", "invoices", commit_too=False)
    # While the load wrote, the state held the invoices of the calls before, each whole in SSM (G5).
    assert w.ssm.held == [40, 80 - 1]
    # Once the load ends, everything it confirmed is committed; the refused invoice is not.
    applied = ctx.staging.read_json("invoices", "apply.json")
    assert applied["committed"]["commits"] == INVOICES * (LINES + 1)
    assert _consistent(w, w.state) == INVOICES - 1
    assert "F00042" not in w.state.live_ssm_ids("invoices")
    counts = commit(ctx, w.state).counts
    assert (counts.created, counts.failed) == (INVOICES * (LINES + 1) - 1, 1)
    # G7: each write is logged once, the refused one as failed with its reason.
    _end(tmp_path, "run1", w)
    log = [e for e in w.state.record_log("run1") if e["entity"].startswith("invoice")]
    assert len(log) == INVOICES * (LINES + 1)
    assert len({(e["entity"], e["key"]) for e in log}) == len(log)
    failed = [e for e in log if e["outcome"] == "failed"]
    assert [(e["entity"], e["key"]) for e in failed] == [("invoice_lines", "422")]
    assert "simulated refusal" in failed[0]["reason"]
    # The next run writes the refused invoice's line and converges without a duplicate.
    w.ssm.advance(900)
    _steps(w, tmp_path, "run2", "invoices")
    assert _consistent(w, w.state) == INVOICES
    assert len(w.ssm.live("salesorders")) == INVOICES
    assert len(w.ssm.live("salesordersLines")) == INVOICES * LINES


@pytest.mark.parametrize("in_file", [True, False], ids=["state in a file", "state in memory"])
def test_g5_a_load_that_dies_keeps_what_it_confirmed_and_the_next_run_converges(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, in_file: bool
) -> None:
    monkeypatch.setattr(commit_stream, "STREAM_CHUNK", 7)
    w = _world(tmp_path, in_file=in_file)
    _prepare(w, tmp_path)
    w.ssm.faults.armed.append(Fault("crash", "create", "salesordersLines", calls_left=2))
    with pytest.raises(SimulatedCrash):
        _steps(w, tmp_path, "run1", "invoices")
    # What the two calls before the crash confirmed was committed as the load went, every invoice of it whole.
    assert _consistent(w, w.state) == 80
    # The plan is stale now: it is never sent again (the run plans again on current data).
    ctx = StepContext.of("run1", "invoices", Staging(tmp_path / "run1"), config=w.config)
    with pytest.raises(Exception, match="another run committed since this plan was made"):
        load(ctx, w.sage, w.ssm, w.state)
    _end(tmp_path, "run1", w)
    w.ssm.advance(900)
    _steps(w, tmp_path, "run2", "invoices")
    assert _consistent(w, w.state) == INVOICES
    assert len(w.ssm.live("salesorders")) == INVOICES
    assert len(w.ssm.live("salesordersLines")) == INVOICES * LINES


def test_g5_a_product_whose_picture_upload_fails_is_not_committed_by_the_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(commit_stream, "STREAM_CHUNK", 1)
    w = SyncWorld("sqlite://")  # the stream stores in the load's thread: as soon as the creates are confirmed
    for n in range(1, 6):
        w.sage.pictures[f"media/a{n}.jpg"] = f"picture {n}".encode()
        put_article(w.sage, f"A{n}", picture=f"media/a{n}.jpg")
    w.ssm.faults.armed.append(Fault("raise", "upload", "products", calls_left=2))
    w.ssm.advance(900)
    ctx = _steps(w, tmp_path, "run1", "products", commit_too=False)
    # The five products were created; the third one's picture failed: it is not bound, the others are.
    assert len(w.ssm.live("products")) == 5
    assert sorted(w.state.live_ssm_ids("products")) == ["A1", "A2", "A4", "A5"]
    assert commit(ctx, w.state).counts.failed == 1
    _end(tmp_path, "run1", w)
    w.ssm.advance(900)
    _steps(w, tmp_path, "run2", "products")
    assert sorted(w.state.live_ssm_ids("products")) == ["A1", "A2", "A3", "A4", "A5"]
    assert len(w.ssm.live("products")) == 5
    assert all(len(docs) == 1 for docs in w.ssm.documents.values())


def test_g5_a_commit_waits_for_the_writes_of_the_records_it_depends_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sage_sync.engine.apply import OpOutcome
    from sage_sync.engine.plan import Commit, Op, Plan

    monkeypatch.setattr(commit_stream, "STREAM_CHUNK", 1)
    state = StateStore("sqlite://")
    state.migrate()
    plan = Plan("invoices")
    plan.ops += [
        Op("ssm_create", "invoices", "F1", "I1", "new invoice F1"),
        Op("ssm_create", "invoice_lines", "11", "I1", "line 11 of invoice F1"),
    ]
    # The invoice's commit comes first in this plan, and depends on its line written after it.
    plan.commits += [
        Commit("invoices", "F1", binding="ok", depends=[["invoice_lines", "11"]]),
        Commit("invoice_lines", "11", binding="ok"),
    ]
    staging = Staging(tmp_path)
    staging.write_plan("invoices", plan)
    outcomes = {0: OpOutcome("ssm_create", "invoices", "F1", True, 5, "2026-12-01T00:00:00.000Z")}
    with commit_stream.CommitStream(staging, "invoices", state, "r1", {}) as stream:
        stream.watch(outcomes, 1)
        assert state.live_ssm_ids("invoices") == {}  # its line is not written yet
        outcomes[1] = OpOutcome("ssm_create", "invoice_lines", "11", True, 6, "2026-12-01T00:00:00.000Z")
        stream.watch(outcomes, 2)
        assert state.live_ssm_ids("invoices") == {"F1": 5}
        assert state.live_ssm_ids("invoice_lines") == {"11": 6}
    assert (stream.progress.commits, stream.progress.ops) == (2, 2)
    assert [e["key"] for e in state.record_log("r1")] == ["F1", "11"]
