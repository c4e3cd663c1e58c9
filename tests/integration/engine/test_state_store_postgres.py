"""The state store on a real PostgreSQL 15 server: schema, G5 commit, G3 quarantine, C4 reservations, G7 ledger.

The state database is created as UTF8 (the fixture's ``create_database`` makes WIN1252 databases for the Sage
stand-in; the state store holds SSM text, which is not cp1252-bound, so it gets its own UTF8 database here).
"""

from __future__ import annotations

import sqlalchemy as sa

from sage_sync.engine.config import SyncConfig
from sage_sync.engine.pipeline import run_once
from sage_sync.engine.state import SCHEMA_VERSION, StateStore
from tests.support.binding_scope import check_binding_scope
from tests.support.memory import Fault, InMemorySage, InMemorySsm, account_row, contact_row
from tests.support.postgres import PostgresServer, postgres_server  # noqa: F401


def utf8_state(server: PostgresServer, name: str) -> StateStore:
    """A fresh UTF8 database on ``server`` and a state store on it (not yet migrated)."""
    conn = server.connect()
    conn.autocommit = True  # CREATE DATABASE cannot run inside a transaction
    try:
        with conn.cursor() as cur:
            cur.execute(
                f"CREATE DATABASE {name} ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0"
            )
    finally:
        conn.close()
    return StateStore(server.url(name))


def test_state_store_on_postgres_round_trips_every_table(postgres_server: PostgresServer) -> None:  # noqa: F811
    """Migrate twice, then bindings, G5 snapshot commit, pending, C4 codes, G3 quarantine, G2 conflicts, G7 ledger,
    and the selection of candidate bindings."""
    s = utf8_state(postgres_server, "state_tables")
    assert s.version() is None
    assert s.migrate() == SCHEMA_VERSION
    assert s.migrate() == SCHEMA_VERSION  # idempotent: one version row, no error on existing tables
    with s.engine.connect() as conn:
        assert conn.execute(sa.text("select count(*) from schema_version")).scalar() == 1
        assert conn.execute(sa.text("show server_encoding")).scalar() == "UTF8"

    s.bind("accounts", "C001", 42, {"name": "Société Ω", "city": None}, "2026-01-01T00:00:00.001Z")
    s.bind("accounts", "C001", 43, {"name": "Société Ω 2"})  # upsert moves the binding
    b = s.bindings("accounts")["C001"]
    assert (b.ssm_id, b.synced, b.status, b.attempts) == (43, {"name": "Société Ω 2"}, "ok", 0)
    s.mark_failed("accounts", "C001", "503")
    s.mark_failed("accounts", "C002", "refused")
    binds = s.bindings("accounts")
    assert (binds["C001"].status, binds["C001"].attempts, binds["C001"].synced) == (
        "failed",
        1,
        {"name": "Société Ω 2"},
    )
    assert (binds["C002"].ssm_id, binds["C002"].attempts) == (None, 1)
    assert s.binding_states("accounts") == {"C001": (43, True), "C002": (None, False)}

    # G5: only confirmed rows advance; a rolled-back batch leaves nothing behind.
    s.commit_rows("accounts", {"C001": ("h1", {"code": "C001"}), "C002": ("h2", {"code": "C002"})})
    s.commit_rows("accounts", {"C001": None, "C002": ("h3", {"code": "C002", "city": "Zürich"})})
    assert s.snapshot("accounts") == {"C002": ("h3", {"code": "C002", "city": "Zürich"})}
    s.commit_rows("accounts", {"C004": ("h5", {"code": "C004", "is_prospect": 1})})
    assert s.snapshot_field("accounts", "is_prospect") == {"C002": None, "C004": 1}
    assert s.snapshot_field("accounts", "city") == {"C002": "Zürich", "C004": None}
    s.commit_rows("accounts", {"C004": None})
    try:
        with s.batch():
            s.commit_rows("accounts", {"C003": ("h4", {"code": "C003"})})
            s.bind("accounts", "C003", 9, {"name": "Gamma"})
            raise RuntimeError("process died during the commit")
    except RuntimeError:
        pass
    assert "C003" not in s.snapshot("accounts") and "C003" not in s.bindings("accounts")

    s.set_watermark("accounts", "2026-01-02T00:00:00.000Z")
    s.set_watermark("accounts", "2026-01-01T00:00:00.000Z")
    assert s.watermark("accounts") == "2026-01-02T00:00:00.000Z"
    s.set_pending("contacts", 5, "K4", "account unknown")
    s.set_pending("contacts", 5, "K4", "account unknown")
    assert s.pending("contacts") == {5: "account unknown"}
    s.clear_pending("contacts", [5])
    assert s.pending("contacts") == {}

    # C4: a retry gets the code already held; sequences count up per name.
    assert s.reserve("accounts", 1001, "SSM00001") == "SSM00001"
    assert s.reserve("accounts", 1001, "SSM00002") == "SSM00001"
    assert s.reserved("accounts") == {1001: "SSM00001"}
    assert [s.next_sequence("accounts:x"), s.next_sequence("accounts:x"), s.next_sequence("other")] == [
        1,
        2,
        1,
    ]

    # G3: quarantine is refreshed, not duplicated, and released once the row passes.
    s.quarantine_rows("accounts", "error", {"P001": "name too long"})
    s.quarantine_rows("accounts", "error", {"P001": "name too long"})
    assert s.quarantined("accounts") == {"P001": "error: name too long"}
    s.release_quarantine("accounts", ["P001"])
    assert s.quarantined("accounts") == {}

    # G2 conflicts and the G7 ledger.
    s.start_run("r1", dry_run=False)
    s.record_entity("r1", "accounts", {"created": 2, "failed": 1}, api_calls=3, duration_s=0.5)
    s.record_conflicts(
        "r1",
        [
            {
                "entity": "accounts",
                "key": "P1",
                "field": "city",
                "sage_value": "Lille",
                "ssm_value": "Nice",
                "winner": "sage",
            }
        ],
    )
    entry = {
        "entity": "accounts",
        "key": "P1",
        "action": "ssm_update",
        "rule": "P1",
        "outcome": "ok",
        "reason": "edited",
    }
    s.log_records("r1", [entry])
    s.finish_run("r1", "success", api_calls=3, duration_s=0.6)
    (run,) = s.runs()
    assert run["status"] == "success" and run["entities"] == {"accounts": {"created": 2, "failed": 1}}
    (conflict,) = s.conflicts("accounts")
    assert (conflict["sage_value"], conflict["ssm_value"], conflict["winner"]) == (
        "Lille",
        "Nice",
        "sage",
    )
    assert s.record_log("r1")[0]["rule"] == "P1"

    # ADR 0018: the candidate line bindings are selected by the server too (JSONB fields, live product ids).
    check_binding_scope(s)


def test_g5_run_once_with_a_postgres_state_store_converges(postgres_server: PostgresServer) -> None:  # noqa: F811
    """G5/G6/G7: a refused create is planned again next run; a third run plans nothing; the ledger has 3 runs."""
    state = utf8_state(postgres_server, "state_cycle")
    state.migrate()
    sage, ssm = InMemorySage(), InMemorySsm()
    for i in range(3):
        sage.put("accounts", account_row(f"C00{i}", f"Société {i}", city="Lyon"))
        sage.put("contacts", contact_row(f"C00{i}", 1, "Durand"))
    ssm.faults.armed.append(Fault("refuse", "create", "accounts", item=1))
    config = SyncConfig()

    ssm.advance(900)
    first = run_once(sage, ssm, state, config)
    assert (first.counts["accounts"].created, first.counts["accounts"].failed) == (2, 1)
    assert set(state.snapshot("accounts")) == {"C000", "C002"}
    assert state.bindings("accounts")["C001"].status == "failed"

    ssm.advance(900)
    second = run_once(sage, ssm, state, config)
    assert [(o.kind, o.key) for o in second.plans["accounts"].ops] == [("ssm_create", "C001")]
    assert set(state.snapshot("accounts")) == {"C000", "C001", "C002"}
    assert sorted(r["extId"] for r in ssm.live("accounts")) == ["C000", "C001", "C002"]
    assert len(ssm.live("contacts")) == 3

    ssm.advance(900)
    assert run_once(sage, ssm, state, config).planned_ops == 0
    ledger = state.runs()
    assert len(ledger) == 3 and all(r["status"] for r in ledger)
    assert ledger[0]["entities"]["accounts"]["failed"] == 1
