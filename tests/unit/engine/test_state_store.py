"""The state store: schema and migration, bindings, snapshot, watermarks, pending, reservations, ledger."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from sage_sync.engine.state import DRIVER_ROWS, SCHEMA_VERSION, BindRow, StateStore
from tests.support.binding_scope import check_binding_scope


def store(tmp_path: Path) -> StateStore:
    tmp_path.mkdir(parents=True, exist_ok=True)
    s = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    s.migrate()
    return s


def test_migrate_creates_the_schema_once_and_is_idempotent(tmp_path: Path) -> None:
    s = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    assert s.version() is None
    assert s.migrate() == SCHEMA_VERSION
    assert s.migrate() == SCHEMA_VERSION
    with s.engine.connect() as conn:
        assert conn.execute(sa.text("select count(*) from schema_version")).scalar() == 1
    tables = set(sa.inspect(s.engine).get_table_names())
    assert {
        "bindings",
        "snapshot_rows",
        "watermarks",
        "pending",
        "reserved_codes",
        "quarantine",
        "conflicts",
        "runs",
        "run_entities",
        "record_log",
        "sequences",
    } <= tables


def test_bindings_and_last_synced_values_round_trip(tmp_path: Path) -> None:
    s = store(tmp_path)
    s.bind("accounts", "C001", 42, {"name": "Alpha", "city": None}, "2026-01-01T00:00:00.001Z")
    s.bind("accounts", "C001", 43, {"name": "Alpha 2"})
    b = s.bindings("accounts")["C001"]
    assert (b.ssm_id, b.synced, b.status, b.attempts) == (43, {"name": "Alpha 2"}, "ok", 0)
    s.bind("accounts", "C002", 44, None, status="ssm_deleted")
    assert s.binding_states("accounts") == {"C001": (43, True), "C002": (44, False)}


def test_g5_failed_record_counts_attempts_and_keeps_its_values(tmp_path: Path) -> None:
    s = store(tmp_path)
    s.bind("contacts", "C001/1", 7, {"last_name": "Durand"})
    s.mark_failed("contacts", "C001/1", "503")
    s.mark_failed("contacts", "C001/1", "503")
    s.mark_failed("contacts", "C002/1", "refused")
    binds = s.bindings("contacts")
    assert (binds["C001/1"].status, binds["C001/1"].attempts, binds["C001/1"].synced) == (
        "failed",
        2,
        {"last_name": "Durand"},
    )
    assert (binds["C002/1"].ssm_id, binds["C002/1"].attempts) == (None, 1)


def test_committed_snapshot_advances_and_removes_rows(tmp_path: Path) -> None:
    s = store(tmp_path)
    s.commit_rows("accounts", {"C001": ("h1", {"code": "C001"}), "C002": ("h2", {"code": "C002"})})
    s.commit_rows("accounts", {"C001": None, "C002": ("h3", {"code": "C002", "city": "Lyon"})})
    assert s.snapshot("accounts") == {"C002": ("h3", {"code": "C002", "city": "Lyon"})}
    assert s.snapshot_size("accounts") == 1
    s.commit_rows("accounts", {"C003": ("h4", {"code": "C003", "is_prospect": 1, "city": None})})
    assert s.snapshot_field("accounts", "is_prospect") == {"C002": None, "C003": 1}
    assert s.snapshot_field("accounts", "city") == {"C002": "Lyon", "C003": None}


def test_watermark_never_goes_back(tmp_path: Path) -> None:
    s = store(tmp_path)
    s.set_watermark("accounts", "2026-01-02T00:00:00.000Z")
    s.set_watermark("accounts", "2026-01-01T00:00:00.000Z")
    assert s.watermark("accounts") == "2026-01-02T00:00:00.000Z"


def test_pending_records_are_remembered_until_cleared(tmp_path: Path) -> None:
    s = store(tmp_path)
    s.set_pending("contacts", 5, "K4", "account unknown")
    s.set_pending("contacts", 5, "K4", "account unknown")
    assert s.pending("contacts") == {5: "account unknown"}
    s.clear_pending("contacts", [5])
    assert s.pending("contacts") == {}


def test_c4_reservation_is_held_per_ssm_id_and_sequences_count_up(tmp_path: Path) -> None:
    s = store(tmp_path)
    assert s.reserve("accounts", 1001, "SSM00001") == "SSM00001"
    assert s.reserve("accounts", 1001, "SSM00002") == "SSM00001"  # a retry gets the same code
    assert s.reserved("accounts") == {1001: "SSM00001"}
    assert [s.next_sequence("accounts:x"), s.next_sequence("accounts:x")] == [1, 2]


def test_g3_quarantine_is_released_when_the_row_passes(tmp_path: Path) -> None:
    s = store(tmp_path)
    s.quarantine_rows("accounts", "error", {"P001": "name too long"})
    s.quarantine_rows("accounts", "error", {"P001": "name too long"})
    assert s.quarantined("accounts") == {"P001": "error: name too long"}
    s.release_quarantine("accounts", ["P001"])
    assert s.quarantined("accounts") == {}


def test_g3_a_first_sync_of_a_large_dossier_releases_its_few_quarantined_rows(tmp_path: Path) -> None:
    """Every confirmed row of a run is offered for release (300,000 here, beyond SQLite's variables per statement);
    only the live entries among them are released, the others stay."""
    s = store(tmp_path)
    s.quarantine_rows("invoices", "error", {f"F{i:06d}": "no customer" for i in range(0, 1500, 2)})
    s.quarantine_rows("invoices", "error", {"X1": "bad date"})
    s.release_quarantine("invoices", (f"F{i:06d}" for i in range(300_000)))
    assert s.quarantined("invoices") == {"X1": "error: bad date"}
    s.set_pending("invoices", 7, "defer", "customer not in SSM yet")
    s.clear_pending("invoices", range(100_000))
    assert s.pending("invoices") == {}


def test_g7_run_ledger_keeps_counts_conflicts_and_record_log(tmp_path: Path) -> None:
    s = store(tmp_path)
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
    s.log_records(
        "r1",
        [
            {
                "entity": "accounts",
                "key": "P1",
                "action": "ssm_update",
                "rule": "P1",
                "outcome": "ok",
                "reason": "edited",
            }
        ],
    )
    s.finish_run("r1", "success", api_calls=3, duration_s=0.6)
    (run,) = s.runs()
    assert run["status"] == "success" and run["entities"] == {"accounts": {"created": 2, "failed": 1}}
    assert s.conflicts("accounts")[0]["sage_value"] == "Lille"
    assert s.record_log("r1")[0]["rule"] == "P1"


def test_batch_commits_all_or_nothing(tmp_path: Path) -> None:
    s = store(tmp_path)
    try:
        with s.batch():
            s.bind("accounts", "C001", 1, {"name": "Alpha"})
            s.commit_rows("accounts", {"C001": ("h", {"code": "C001"})})
            raise RuntimeError("process died during the commit")
    except RuntimeError:
        pass
    assert s.bindings("accounts") == {} and s.snapshot("accounts") == {}
    with s.batch():
        s.bind("accounts", "C001", 1, {"name": "Alpha"})
    assert s.bindings("accounts")["C001"].ssm_id == 1


def test_i1_the_state_selects_the_candidate_line_bindings_in_sqlite(tmp_path: Path) -> None:
    """ADR 0018: only the line bindings a planner may read leave the database (see the scenario's docstring)."""
    check_binding_scope(store(tmp_path))


def test_g5_g7_many_rows_at_once_store_what_one_row_at_a_time_stores(tmp_path: Path) -> None:
    """G5/G7: bindings, snapshot rows and the record log written many at a time (the driver's executemany) hold
    what the same rows written one at a time hold; a second write of the same keys replaces the first."""
    n = DRIVER_ROWS + 50
    many, one = store(tmp_path / "many"), store(tmp_path / "one")
    for s, chunk in ((many, n), (one, 1)):
        for version in (1, 2):
            rows = [
                BindRow(
                    "invoice_lines", str(k), 1000 + k, {"piece": f"F{k}", "v": version}, f"2026-12-0{version}"
                )
                for k in range(n)
            ]
            for start in range(0, n, chunk):
                s.bind_many(rows[start : start + chunk])
            values = {f"K{k}": (f"h{version}", {"name": f"N{k}", "v": version}) for k in range(n)}
            for start in range(0, n, chunk):
                s.commit_rows("accounts", dict(list(values.items())[start : start + chunk]))
        entries = [
            {
                "entity": "accounts",
                "key": f"K{k}",
                "action": "ssm_create",
                "rule": "C1",
                "outcome": "ok",
                "reason": "r",
            }
            for k in range(n)
        ]
        for start in range(0, n, chunk):
            s.log_records("run-1", entries[start : start + chunk])
    got = many.bindings("invoice_lines")
    assert len(got) == n and got["7"].synced == {"piece": "F7", "v": 2} and got["7"].ssm_id == 1007
    assert {k: (b.ssm_id, b.synced, b.ssm_date_updated) for k, b in got.items()} == {
        k: (b.ssm_id, b.synced, b.ssm_date_updated) for k, b in one.bindings("invoice_lines").items()
    }
    assert many.snapshot("accounts") == one.snapshot("accounts")
    assert many.snapshot("accounts")["K3"] == ("h2", {"name": "N3", "v": 2})
    drop = ("id",)
    log = [{k: v for k, v in r.items() if k not in drop} for r in many.record_log("run-1")]
    assert log == [{k: v for k, v in r.items() if k not in drop} for r in one.record_log("run-1")]
    assert [r["key"] for r in log] == [f"K{k}" for k in range(n)]


def test_g1_a_step_reads_the_state_while_another_entity_commits(tmp_path: Path) -> None:
    """Tasks run side by side under an executor: a read of the state never waits for another entity's commit step.

    The commit holds one transaction that writes more than SQLite's page cache (as a large commit does); the read
    returns at once, with what was committed before, while that transaction is still open (ADR 0018, decision 41).
    """
    import threading

    url = f"sqlite:///{tmp_path / 'state.db'}"
    writer, reader = StateStore(url), StateStore(url)
    writer.migrate()
    writer.bind("accounts", "C001", 11, {"name": "Alpha"})
    wrote, read, committed = threading.Event(), threading.Event(), threading.Event()

    def commit_step() -> None:
        with writer.batch():
            writer.bind_many(
                BindRow("contacts", f"C{n:06d}", n, {"name": "x" * 200, "n": n}) for n in range(30_000)
            )
            wrote.set()
            read.wait(timeout=30)  # the transaction stays open until the read is done (or 30 s)
        committed.set()

    thread = threading.Thread(target=commit_step)
    thread.start()
    assert wrote.wait(timeout=60)
    seen = reader.live_ssm_ids("accounts"), len(reader.live_ssm_ids("contacts"))
    done_before_commit = not committed.is_set()
    read.set()
    thread.join(timeout=60)
    assert seen == ({"C001": 11}, 0) and done_before_commit
    assert len(reader.live_ssm_ids("contacts")) == 30_000
    with reader.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
