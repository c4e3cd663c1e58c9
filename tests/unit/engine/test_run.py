"""The runner and its steps: G5 commit per confirmed row, G6 minimal calls, G7 ledger, G8 dry run, plan JSON."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from sage_sync.engine.config import SyncConfig
from sage_sync.engine.pipeline import StepContext, commit, extract, load, plan, plan_entity, report, validate
from sage_sync.engine.plan import Plan
from sage_sync.engine.snapshot import assemble, sage_changes
from sage_sync.engine.staging import Staging
from tests.support.memory import (
    Fault,
    SyncWorld,
    account_row,
    contact_row,
    put_article,
    put_invoice,
    put_invoice_line,
)


def seeded(tmp_path: Path | None = None) -> SyncWorld:
    w = SyncWorld(f"sqlite:///{tmp_path / 'state.db'}" if tmp_path else "sqlite://", SyncConfig())
    for i in range(3):
        w.sage.put("accounts", account_row(f"C00{i}", f"Company {i}", city="Lyon"))
        w.sage.put("contacts", contact_row(f"C00{i}", 1, "Durand"))
    return w


def test_g5_only_confirmed_rows_advance_and_failed_ones_are_planned_again() -> None:
    w = seeded()
    w.ssm.faults.armed.append(Fault("refuse", "create", "accounts", item=1))
    first = w.run()
    assert (first.counts["accounts"].created, first.counts["accounts"].failed) == (2, 1)
    assert set(w.state.snapshot("accounts")) == {"C000", "C002"}
    assert w.state.bindings("accounts")["C001"].status == "failed"
    assert [n.key for n in first.plans["contacts"].deferred] == ["C001/1"]  # its contact waits for it
    second = w.run()
    assert [(o.kind, o.key) for o in second.plans["accounts"].ops] == [("ssm_create", "C001")]
    assert [(o.kind, o.key) for o in second.plans["contacts"].ops] == [("ssm_create", "C001/1")]
    assert len(w.ssm.live("accounts")) == 3 and len(w.ssm.live("contacts")) == 3


def test_g5_exception_in_the_middle_of_a_batch_converges_without_duplicates() -> None:
    w = seeded()
    w.ssm.faults.armed.append(Fault("mid_batch", "create", "accounts", item=2))
    assert w.run().counts["accounts"].failed == 3
    w.run()
    assert sorted(r["extId"] for r in w.ssm.live("accounts")) == ["C000", "C001", "C002"]
    assert w.run().planned_ops == 0


def test_g6_a_run_without_change_writes_nothing_and_lists_only() -> None:
    w = seeded()
    w.run()
    writes, sage_writes = w.ssm.writes, w.sage.writes
    result = w.run()
    assert result.planned_ops == 0
    assert (w.ssm.writes, w.sage.writes) == (writes, sage_writes)
    assert all(c.created + c.updated + c.deleted == 0 for c in result.counts.values())


def test_g6_changes_go_in_bulk_calls() -> None:
    w = seeded()
    calls = w.run().counts["accounts"].api_calls
    # The run's value lists (read once, by the first entity), list changed, find by extId, one bulk create.
    assert calls == 4


def test_g7_each_run_records_counts_per_entity_and_what_happened_to_each_record(tmp_path: Path) -> None:
    w = seeded(tmp_path)
    result = w.run()
    (run,) = w.state.runs()
    assert run["status"] == "success" and run["api_calls"] == result.api_calls
    assert run["entities"]["accounts"]["created"] == 3 and run["entities"]["contacts"]["created"] == 3
    log = w.state.record_log(result.run_id)
    assert {(e["key"], e["rule"], e["outcome"]) for e in log if e["entity"] == "accounts"} == {
        ("C000", "C1", "ok"),
        ("C001", "C1", "ok"),
        ("C002", "C1", "ok"),
    }


def test_g8_dry_run_reports_every_change_and_writes_nothing(tmp_path: Path) -> None:
    w = seeded(tmp_path)
    result = w.run(dry_run=True)
    assert result.counts["accounts"].created == 3
    assert w.ssm.writes == 0 and w.sage.writes == 0
    assert w.state.snapshot("accounts") == {} and w.state.runs() == []
    table = result.render()
    assert "ssm_create  C000" in table and "rule" in table
    assert w.run().counts["accounts"].created == 3


def test_g8_a_first_dry_run_plans_the_dependants_of_records_it_would_create() -> None:
    """Contacts and invoices of accounts (and lines of articles) the run would create are planned, not deferred."""
    w = seeded()
    put_article(w.sage, "ART1")
    put_invoice(w.sage, "FA1", "C000")
    put_invoice_line(w.sage, "FA1", 1, article_ref="ART1", quantity=1.0, unit_price=12.0, amount_ht=12.0)
    result = w.run(dry_run=True)
    planned = {e: [(o.kind, o.key) for o in p.ops] for e, p in result.plans.items()}
    assert planned["contacts"] == [("ssm_create", f"C00{i}/1") for i in range(3)]
    assert ("ssm_create", "FA1") in planned["invoices"]
    assert not any(p.deferred for p in result.plans.values())
    assert w.ssm.writes == 0 and w.ssm.live("accounts") == []
    real = w.run()
    assert [(o.kind, o.key) for o in real.plans["contacts"].ops] == planned["contacts"]
    (line,) = w.ssm.live("salesordersLines")
    assert line["productId"] == w.ssm_by_ext("products", "ART1")[0]["id"]  # a real id, never a stand-in


def _context(tmp_path: Path, entity: str, w: SyncWorld, run_id: str = "manual__test") -> StepContext:
    """A step's context as an Airflow task builds it: a fresh object over the run's staging folder."""
    return StepContext.of(run_id, entity, Staging(tmp_path / "staging" / run_id), config=w.config)


def test_plan_round_trips_through_json(tmp_path: Path) -> None:
    w = seeded()
    w.ssm.user_create("accounts", {"name": "Lead", "statusId": 3})
    ctx = _context(tmp_path, "accounts", w)
    extract(ctx, w.sage, w.ssm, w.state)
    inp = ctx.staging.read_input("accounts", "extract_input.jsonl")
    assert type(inp).from_dict(inp.to_dict()) == inp
    plan = plan_entity(inp, w.config)
    again = Plan.from_json(plan.to_json())
    assert again == plan and again.ops and again.skipped


def test_sage_changes_classifies_against_the_committed_snapshot() -> None:
    w = seeded()
    w.run()
    w.sage.edit("accounts", ("C001",), city="Lille")
    w.sage.delete("accounts", ("C002",))
    w.sage.put("accounts", account_row("C009", "New"))
    frame = assemble("accounts", w.sage.read_snapshot("accounts"))
    changes = sage_changes("accounts", frame, w.state.snapshot("accounts"))
    assert (changes.created, changes.updated, sorted(changes.deleted), changes.unchanged) == (
        ["C009"],
        {"C001": ["city"]},
        ["C002"],
        1,
    )
    assert changes.records["C001"]["city"] == "Lille"


def test_g3_ssm_value_sage_cannot_hold_is_quarantined_not_mangled_then_released() -> None:
    w = SyncWorld(config=SyncConfig())
    w.sage.put("accounts", account_row("P001", "Beta", prospect=True))
    w.run()
    (rec,) = w.ssm.live("accounts")
    w.ssm.user_update("accounts", rec["id"], {"city": "Lille 🚲"})
    result = w.run()
    assert [(n.rule, n.key) for n in result.plans["accounts"].quarantined] == [("G3", "P001")]
    assert "cp1252" in w.state.quarantined("accounts")["P001"]
    assert w.sage.rows("accounts")[("P001",)].get("city") is None
    w.run()  # retried on every later run
    assert "P001" in w.state.quarantined("accounts")
    w.ssm.user_update("accounts", rec["id"], {"city": "Lille"})
    w.run()
    assert w.sage.rows("accounts")[("P001",)]["city"] == "Lille"
    assert "P001" not in w.state.quarantined("accounts")


def test_g3_unknown_country_is_a_warning_and_the_field_is_left_unset() -> None:
    w = SyncWorld(config=SyncConfig())
    w.sage.put("accounts", account_row("C001", "Alpha", country="Atlantis"))
    result = w.run()
    assert [n.rule for n in result.plans["accounts"].warnings] == ["G3"]
    (rec,) = w.ssm.live("accounts")
    assert "countryId" not in rec
    assert w.state.quarantined("accounts")["C001"].startswith("warning")


def test_g3_unknown_country_leaves_the_ssm_country_as_it_was_without_ping_pong() -> None:
    w = SyncWorld(config=SyncConfig())
    w.sage.put("accounts", account_row("P001", "Beta", prospect=True, country="France"))
    w.run()
    w.sage.edit("accounts", ("P001",), country="Atlantis", city="Lyon")
    result = w.run()
    assert [o.fields for o in result.plans["accounts"].ops] == [{"city": "Lyon"}]
    (rec,) = w.ssm.live("accounts")
    assert rec["countryId"] == 73
    assert w.sage.rows("accounts")[("P001",)]["country"] == "Atlantis"
    assert w.run().planned_ops == 0


def test_config_reads_policy_and_guard_from_the_entity_mappings(tmp_path: Path) -> None:
    from sage_sync.mapping.registry import registry

    for source in Path(mapping_dir()).glob("*.yaml"):
        text = source.read_text(encoding="utf-8")
        if source.stem == "contacts":
            text = text.replace("policy: {conflict: sage_wins}", "policy: {conflict: ssm_wins}").replace(
                "guard: {ratio: 0.5, minimum: 10}", "guard: {ratio: 0.2, minimum: 3}"
            )
        (tmp_path / source.name).write_text(text, encoding="utf-8")
    config = SyncConfig.from_mappings(registry(tmp_path))
    assert (config.winner("accounts"), config.winner("contacts")) == ("sage", "ssm")
    assert (config.guard("contacts").ratio, config.guard("contacts").minimum) == (0.2, 3)
    assert config.guard("accounts").minimum == 10


def test_config_rejects_a_code_template_without_ssm_id_or_seq() -> None:
    import pytest

    from sage_sync.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="code_template"):
        SyncConfig(code_template="C{name}")


def mapping_dir() -> str:
    from sage_sync.mapping.loader import DEFAULT_DIR

    return str(DEFAULT_DIR)


def test_g4_a_broken_read_returning_no_rows_deletes_nothing() -> None:
    w = seeded()
    w.run()
    w.sage.faults.armed.append(Fault("empty", "read", "accounts"))
    result = w.run()
    assert result.plans["accounts"].is_empty and "empty" in (result.plans["accounts"].guard or "")
    assert len(w.ssm.live("accounts")) == 3
    assert w.run().planned_ops == 0


def test_g5_a_failed_account_update_does_not_hold_back_its_contacts() -> None:
    w = seeded()
    w.run()
    w.sage.edit("accounts", ("C001",), city="Lille")
    w.sage.put("contacts", contact_row("C001", 2, "Petit"))
    w.ssm.faults.armed.append(Fault("refuse", "update", "accounts"))
    result = w.run()
    assert result.counts["accounts"].failed == 1
    assert [o.key for o in result.plans["contacts"].ops] == ["C001/2"]
    w.run()
    assert w.ssm_by_ext("accounts", "C001")[0]["city"] == "Lille"


def test_steps_run_one_by_one_through_the_staging_area_like_separate_tasks(tmp_path: Path) -> None:
    """The operators' path: each step a fresh context, reading only what the previous step staged."""
    w = seeded()
    for entity in ("accounts", "contacts"):
        extract(_context(tmp_path, entity, w), w.sage, w.ssm, w.state)
        validate(_context(tmp_path, entity, w), w.state)
        assert plan(_context(tmp_path, entity, w)).ops == 3
        loaded = load(_context(tmp_path, entity, w), w.sage, w.ssm, w.state)
        assert (loaded.applied, loaded.failed) == (3, 0)
        assert commit(_context(tmp_path, entity, w), w.state).counts.created == 3
    assert len(w.ssm.live("contacts")) == 3
    # The report closes the run and gives its lease back: the next run may start.
    ctx = _context(tmp_path, "accounts", w)
    assert report(ctx.run_id, ctx.staging, w.state, flags=ctx.flags).broken == ["products", "invoices"]
    assert w.run().planned_ops == 0


def test_g7_g8_an_invoice_plan_settled_as_it_is_made_stages_the_plan_made_whole(tmp_path: Path) -> None:
    """The invoices' planner hands each planned invoice to a spool (ADR 0018, decision 39): the staged plan, its
    digest and its counts are those of the same plan held whole (creates, updates, deletes, a quarantined invoice)."""
    from sage_sync.engine.plan import digest

    w = seeded(tmp_path)
    put_article(w.sage, "ART1")
    for n in range(6):
        put_invoice(w.sage, f"FA{n}", f"C00{n % 3}")
        for m in range(1, 4):
            put_invoice_line(w.sage, f"FA{n}", 10 * n + m, article_ref="ART1", quantity=float(m))
    w.run()
    put_invoice(w.sage, "FA9", "C404")  # its customer is not in Sage: quarantined by the validation (G3)
    put_invoice(w.sage, "FA7", "C001")
    put_invoice_line(w.sage, "FA7", 71, article_ref="ART1")
    w.sage.edit("invoices", (11,), source="lines", quantity=9.0)
    w.sage.delete("invoices", (0, "FA2"))
    ctx = _context(tmp_path, "invoices", w, "manual__second")
    extract(ctx, w.sage, w.ssm, w.state)
    validate(ctx, w.state)
    inp = ctx.staging.read_input("invoices", "input.jsonl")

    whole = plan_entity(inp, w.config)
    with ctx.staging.plan_spool() as spool:
        settled = plan_entity(inp, w.config, spool)
        assert settled.ops == [] and settled.op_count == len(whole.ops) and spool.kinds.total() > 0
        assert settled.kinds() == Counter(op.kind for op in whole.ops) and settled.count("ssm_create") >= 2
        assert digest(settled) == digest(whole) and not settled.is_empty
        ctx.staging.write_plan("invoices", settled)
    spooled_file = ctx.staging.path("invoices", "plan.jsonl").read_bytes()
    ctx.staging.write_plan("invoices", whole)
    assert spooled_file == ctx.staging.path("invoices", "plan.jsonl").read_bytes()
    assert {(op.kind, op.key) for op in whole.ops} >= {
        ("ssm_delete", "FA2"),
        ("ssm_create", "FA7"),
        ("ssm_update", "11"),
    }

    summary = plan(ctx)  # the step itself
    staged = ctx.staging.read_plan("invoices")
    assert staged.ops == whole.ops and staged.commits == whole.commits and summary.ops == len(whole.ops)
    assert summary.by_kind == dict(Counter(op.kind for op in whole.ops)) and [
        n.key for n in staged.quarantined
    ] == ["FA9"]
