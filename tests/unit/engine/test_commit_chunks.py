"""The commit step stores a plan's commits a chunk at a time, with the same outcome as all at once (G5, G7)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa

from sage_sync.engine.apply import ApplyResult, OpOutcome
from sage_sync.engine.commit import commit_plan
from sage_sync.engine.plan import Commit, Note, Op, Plan
from sage_sync.engine.state import StateStore


def _plan() -> tuple[Plan, ApplyResult]:
    ops = [
        Op("ssm_create", "accounts", "C1", "C1", "new customer"),
        Op("ssm_create", "accounts", "C2", "C1", "new customer"),
        Op("ssm_update", "accounts", "C3", "C2", "name changed", ssm_id=33),
        Op("ssm_delete", "accounts", "C4", "D1", "gone from Sage", ssm_id=44),
    ]
    outcomes = [
        OpOutcome("ssm_create", "accounts", "C1", True, id=11, date_updated="2026-12-04T10:00:00Z"),
        OpOutcome("ssm_create", "accounts", "C2", False, error="422 name too long"),
        OpOutcome("ssm_update", "accounts", "C3", True, id=33, date_updated="2026-12-04T10:00:01Z"),
        OpOutcome("ssm_delete", "accounts", "C4", True, id=44),
    ]
    commits = [
        Commit("accounts", "C1", row={"code": "C1", "name": "Alpha"}, synced={"name": "Alpha"}, binding="ok",
               ssm_ids=[77]),
        # C2's create failed: nothing of it advances, and SSM record 77 that C1 settled is pending again (the
        # later failure wins, whichever chunk each is in).
        Commit("accounts", "C2", row={"code": "C2", "name": "B" * 90}, binding="ok", ssm_ids=[77]),
        Commit("accounts", "C3", row={"code": "C3", "name": "Gam"}, synced={"name": "Gam"}, binding="ok"),
        Commit("accounts", "C4", delete_row=True, binding="deleted", ssm_ids=[88]),
        # Depends on the failed C2, in another chunk when chunks are small.
        Commit("accounts", "C5", row={"code": "C5", "name": "Epsilon"}, binding="ok", depends=[["accounts", "C2"]]),
        # A record committed twice: the last one wins, as in one pass.
        Commit("accounts", "C3", row={"code": "C3", "name": "Gamma"}, synced={"name": "Gamma"}, binding="ok"),
    ]  # fmt: skip
    plan = Plan(
        "accounts",
        ops=ops,
        commits=commits,
        quarantined=[Note("accounts", "C9", "G3", "name_length: too long")],
        pending={99: "K1: waits for its account"},
    )
    return plan, ApplyResult("accounts", outcomes, api_calls=4)


def _tables(url: str) -> dict[str, list[tuple[Any, ...]]]:
    engine = sa.create_engine(url)
    out = {}
    with engine.connect() as conn:
        for table in ("bindings", "snapshot_rows", "pending", "quarantine", "record_log"):
            columns = [c["name"] for c in sa.inspect(engine).get_columns(table)]
            kept = [
                c for c in columns if c not in ("id", "updated_at", "first_seen", "last_seen", "released_at")
            ]
            rows = conn.execute(sa.text(f"SELECT {', '.join(kept)} FROM {table}")).all()
            out[table] = sorted(tuple(r) for r in rows)
    return out


def test_g5_commits_stored_a_chunk_at_a_time_record_what_one_pass_records(tmp_path: Path) -> None:
    stores = {}
    for chunk in (1, 2, 20_000):
        url = f"sqlite:///{tmp_path / f'state{chunk}.db'}"
        state = StateStore(url)
        state.migrate()
        state.set_pending("accounts", 88, "defer", "looked at again")
        plan, applied = _plan()
        result = commit_plan(plan, applied, state, "run1", {}, iter(plan.commits), chunk=chunk)
        assert result.counts.created == 1 and result.counts.failed == 1 and result.counts.deleted == 1
        stores[chunk] = (state, _tables(url), result.log)
    state, tables, log = stores[1]
    assert tables == stores[2][1] == stores[20_000][1] and log == stores[20_000][2]

    # G5: only confirmed records advance; C2 failed and C5, which depends on it, waits with it.
    assert set(state.snapshot("accounts")) == {"C1", "C3"}
    live = state.live_ssm_ids("accounts")
    assert live["C1"] == 11 and live["C3"] == 33 and "C2" not in live and "C5" not in live
    bound = state.bindings("accounts")
    assert (
        bound["C2"].status == "failed" and bound["C5"].status == "failed" and bound["C4"].status == "deleted"
    )
    assert bound["C1"].ssm_date_updated == "2026-12-04T10:00:00Z" and bound["C3"].synced == {"name": "Gamma"}
    pending = state.pending("accounts")
    assert "write failed: 422 name too long" in pending[77]
    assert state.snapshot("accounts")["C3"][1]["name"] == "Gamma"
    assert 88 not in pending and pending[99] == "K1: waits for its account"
    # G7: every op and note is in the record log.
    logged = {(e["key"], e["action"], e["outcome"]) for e in state.record_log("run1")}
    assert ("C2", "ssm_create", "failed") in logged and ("C9", "quarantined", "quarantined") in logged
    assert len(log) == 5


def test_g5_g7_a_commit_reading_the_staged_plan_as_it_goes_records_what_the_plan_in_memory_records(
    tmp_path: Path,
) -> None:
    """The commit step reads the staged plan's head, then its commits and ops a line at a time (ADR 0018, decision
    37): the state it leaves, counts and record log included, is the one the whole plan in memory leaves."""
    from sage_sync.engine.staging import Staging

    plan, applied = _plan()
    staging = Staging(tmp_path / "run")
    staging.write_plan("accounts", plan)
    head = staging.read_plan("accounts", ops=False, commits=False)
    assert head.ops == [] and head.commits == [] and head.pending == plan.pending
    tables, results = [], []
    for name, (used, commits, ops) in {
        "memory": (plan, None, None),
        "staged": (head, staging.staged_commits("accounts"), staging.staged_plan_ops("accounts")),
    }.items():
        url = f"sqlite:///{tmp_path / f'{name}.db'}"
        state = StateStore(url)
        state.migrate()
        results.append(commit_plan(used, applied, state, "run1", {}, commits, chunk=2, ops=ops))
        tables.append(_tables(url))
    assert tables[0] == tables[1] and tables[0]["record_log"] and tables[0]["bindings"]
    assert results[0].counts == results[1].counts and results[0].log == results[1].log
    assert results[1].counts.created == 1 and results[1].counts.failed == 1 and len(results[1].log) == 5
