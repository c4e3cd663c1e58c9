"""A run stages and reads only what changed (ADR 0018): narrowed plan input, committed values read on demand.

Products and invoices are one way: their planner reads the created, updated and deleted records (and the invoices
with a line to link to a new product), so their staged input holds nothing else. Accounts and contacts are two
way: theirs reads besides the keys the SSM records of the run pair with (bound, reserved, named by ``extId``) and
the contacts that follow a re-created account. The committed snapshot's values are read only for rows whose
stored row hash differs from the current one, and for deleted rows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sage_sync.engine.own_creates import just_after
from sage_sync.engine.pipeline import RunFlags, StepContext, commit, extract, load, plan, report, validate
from sage_sync.engine.snapshot import CommittedSnapshot, assemble, sage_changes
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

ENTITIES = ("accounts", "contacts", "products", "invoices")


def _world() -> SyncWorld:
    w = SyncWorld()
    w.sage.put("accounts", account_row("C001", "Cave Dupont", city="Lyon"))
    for ref in ("A1", "A2", "A3"):
        put_article(w.sage, ref)
    for n in range(1, 5):
        piece = f"F0000{n}"
        put_invoice(w.sage, piece)
        put_invoice_line(w.sage, piece, n * 10, article_ref="A1")
        put_invoice_line(w.sage, piece, n * 10 + 1)
    return w


def _run_steps(w: SyncWorld, tmp_path: Path, run_id: str) -> dict[str, dict[str, Any]]:
    """One run through the steps as the DAG's tasks run them; returns each entity's staged plan input."""
    staged: dict[str, dict[str, Any]] = {}
    w.ssm.advance(900)
    for entity in ENTITIES:

        def ctx(entity: str = entity) -> StepContext:
            return StepContext.of(run_id, entity, Staging(tmp_path / run_id), config=w.config)

        extract(ctx(), w.sage, w.ssm, w.state)
        validate(ctx(), w.state)
        plan(ctx())
        load(ctx(), w.sage, w.ssm, w.state)
        commit(ctx(), w.state)
        staged[entity] = ctx().staging.read_input(entity, "input.jsonl").to_dict()
    # The report closes the run: the next one may start.
    report(run_id, Staging(tmp_path / run_id), w.state, flags=RunFlags())
    return staged


def test_g6_a_run_without_change_stages_no_unchanged_product_or_invoice(tmp_path: Path) -> None:
    w = _world()
    first = _run_steps(w, tmp_path, "run1")
    assert len(first["invoices"]["sage"]) == 4 and len(first["products"]["sage"]) == 3
    assert len(w.ssm.live("salesordersLines")) == 8

    quiet = _run_steps(w, tmp_path, "run2")
    for entity in ("products", "invoices"):
        inp = quiet[entity]
        assert (inp["sage"], inp["bindings"], inp["line_bindings"]) == ({}, {}, {}), entity
    assert quiet["invoices"]["sage_size"] == 4 and quiet["products"]["sage_size"] == 3
    assert quiet["invoices"]["unchanged"] == 4
    # The SSM account run 1 created is not read back (nobody touched it since): nothing of accounts is staged.
    assert (quiet["accounts"]["sage"], quiet["accounts"]["bindings"], quiet["accounts"]["ssm"]) == (
        {},
        {},
        [],
    )
    assert quiet["accounts"]["sage_size"] == 1
    assert w.run(entities=ENTITIES).planned_ops == 0

    # I1: one line changes: only its invoice, and that invoice's line bindings, are staged; SSM gets the change.
    put_invoice_line(w.sage, "F00003", 31, quantity=5.0, amount_ht=125.0)
    changed = _run_steps(w, tmp_path, "run3")
    inp = changed["invoices"]
    assert list(inp["sage"]) == ["F00003"] and list(inp["bindings"]) == ["F00003"]
    assert sorted(inp["line_bindings"]) == ["30", "31"]
    line = next(r for r in w.ssm.live("salesordersLines") if r["extId"] == "31")
    assert line["quantity"] == 5
    assert w.run(entities=ENTITIES).planned_ops == 0


def test_i1_an_unchanged_invoice_gets_its_line_linked_to_a_product_created_later(tmp_path: Path) -> None:
    """G5: a line written while its article's product was refused is linked once the product exists."""
    w = _world()
    w.ssm.faults.armed.append(Fault("refuse", "create", "products", item=0))
    _run_steps(w, tmp_path, "run1")
    products = {r["extId"]: r["id"] for r in w.ssm.live("products")}
    assert "A1" not in products  # refused: the lines of A1 went without a product
    assert all(r.get("productId") is None for r in w.ssm.live("salesordersLines") if r["extId"].endswith("0"))

    second = _run_steps(w, tmp_path, "run2")
    a1 = next(r["id"] for r in w.ssm.live("products") if r["extId"] == "A1")
    # The invoices did not change; those with a line to link are the only ones staged.
    assert sorted(second["invoices"]["sage"]) == ["F00001", "F00002", "F00003", "F00004"]
    linked = {r["extId"]: r.get("productId") for r in w.ssm.live("salesordersLines")}
    assert {k: v for k, v in linked.items() if k.endswith("0")} == {"10": a1, "20": a1, "30": a1, "40": a1}
    quiet = _run_steps(w, tmp_path, "run3")
    assert quiet["invoices"]["sage"] == {}
    assert w.run(entities=ENTITIES).planned_ops == 0


def test_g4_a_narrowed_input_still_tells_a_deleted_invoice_from_an_empty_dossier(tmp_path: Path) -> None:
    w = _world()
    _run_steps(w, tmp_path, "run1")
    w.sage.delete("invoices", (0, "F00002"))
    staged = _run_steps(w, tmp_path, "run2")
    assert staged["invoices"]["sage"] == {} and staged["invoices"]["sage_size"] == 3
    assert sorted(r["extId"] for r in w.ssm.live("salesorders")) == ["F00001", "F00003", "F00004"]

    for piece in ("F00001", "F00003", "F00004"):
        w.sage.delete("invoices", (0, piece))
    emptied = w.run(entities=ENTITIES)
    assert "the Sage snapshot of invoices is empty" in emptied.guards["invoices"]
    assert sorted(r["extId"] for r in w.ssm.live("salesorders")) == ["F00001", "F00003", "F00004"]


def test_only_changed_and_deleted_rows_have_their_committed_values_read() -> None:
    w = _world()
    w.run(entities=ENTITIES)
    committed = w.state.committed("invoices")
    stored = committed.values(["F00001"])["F00001"]
    assert "lines" not in stored and stored["lines_digest"]  # each line has its own binding
    asked: list[str] = []

    def values(keys: list[str]) -> dict[str, dict[str, Any]]:
        asked.extend(keys)
        return committed.values(keys)

    put_invoice(w.sage, "F00001", customer_ref="PO-77")
    w.sage.delete("invoices", (0, "F00004"))
    frame = assemble("invoices", w.sage.read_snapshot("invoices"))
    changes = sage_changes("invoices", frame, CommittedSnapshot(committed.digests, values))
    assert (changes.created, list(changes.updated), list(changes.deleted)) == ([], ["F00001"], ["F00004"])
    assert changes.unchanged == 2 and sorted(asked) == ["F00001", "F00004"]
    assert changes.deleted["F00004"]["piece"] == "F00004"


def test_g4_a_read_of_quarantined_rows_only_is_not_an_empty_read() -> None:
    """The read returned a row (quarantined this run): deleting the other, gone article is not withheld."""
    w = SyncWorld()
    put_article(w.sage, "A1")
    put_article(w.sage, "A2")
    assert w.run(entities=("products",)).counts["products"].created == 2
    w.sage.delete("products", ("A1",))
    put_article(w.sage, "A2", sales_price=-5.0)  # G3: a negative price quarantines the row
    result = w.run(entities=("products",))
    assert not result.guards, result.guards
    assert [n.key for n in result.plans["products"].quarantined] == ["A2"]
    assert [r["extId"] for r in w.ssm.live("products")] == ["A2"]  # D4: A1 is deleted in SSM


def test_p1_k2_two_way_runs_stage_the_keys_their_ssm_changes_pair_with_and_nothing_else(
    tmp_path: Path,
) -> None:
    """P1/K2 both ways, C1 adoption and K1 numbering with a narrowed input: each outcome on both systems."""
    w = SyncWorld()
    w.sage.put("accounts", account_row("C001", "Cave Dupont", city="Lyon"))
    w.sage.put("accounts", account_row("P001", "Prospect Martin", prospect=True, city="Dijon"))
    w.sage.put("accounts", account_row("C002", "Bar Lefebvre", city="Nantes"))
    for n, name in ((1, "Durand"), (2, "Petit")):
        w.sage.put("contacts", contact_row("C001", n, name))
    _run_steps(w, tmp_path, "run1")
    prospect = w.ssm_by_ext("accounts", "P001")[0]["id"]
    petit = w.ssm_by_ext("contacts", "C001/2")[0]["id"]
    customer = w.ssm_by_ext("accounts", "C001")[0]["id"]

    # A user edits the prospect and a contact in SSM, and adds a contact without extId on customer C001.
    w.ssm.user_update("accounts", prospect, {"city": "Beaune"})
    w.ssm.user_update("contacts", petit, {"phone2": "06 11 22 33 44"})
    new = w.ssm.user_create("contacts", {"accountId": customer, "lastName": "Moreau"})
    staged = _run_steps(w, tmp_path, "run2")
    # Only the records users changed are read (not those run 1 created): their bindings come with them.
    assert set(staged["accounts"]["sage"]) == {"P001"} and "P001" in staged["accounts"]["bindings"]
    assert staged["accounts"]["sage_size"] == 3
    assert set(staged["contacts"]["sage"]) == {"C001/2"} and "C001/2" in staged["contacts"]["bindings"]
    assert staged["contacts"]["reserved"] == {str(new): "C001/3"}
    assert w.sage.rows("accounts")[("P001",)]["city"] == "Beaune"  # P1: SSM -> Sage
    assert w.sage.rows("contacts")[("C001", 2)]["mobile"] == "06 11 22 33 44"  # K2
    assert w.sage.rows("contacts")[("C001", 3)]["last_name"] == "Moreau"  # K1: inserted under its number
    assert w.ssm_by_ext("contacts", "C001/3")[0]["id"] == new

    # C1: a user makes a second SSM account carrying the key of unchanged customer C002: reported as its twin
    # (read with C002's binding), never chosen over the bound record, and not taken for a key unknown to Sage.
    bound = w.ssm_by_ext("accounts", "C002")[0]["id"]
    twin = w.ssm.user_create("accounts", {"name": "Bar Lefebvre bis", "extId": "C002"})
    staged = _run_steps(w, tmp_path, "run3")
    assert set(staged["accounts"]["sage"]) == {"C002"} and "C002" in staged["accounts"]["bindings"]
    skipped = Staging(tmp_path / "run3").read_plan("accounts").skipped
    assert [(n.key, n.ssm_id) for n in skipped] == [("C002", twin)]
    assert f"bound to SSM account {bound}" in skipped[0].reason
    assert {r["id"] for r in w.ssm.live("accounts") if r.get("extId") == "C002"} == {bound, twin}
    assert w.state.bindings("accounts")["C002"].ssm_id == bound


def test_g2_c1_the_records_a_run_created_are_read_again_only_once_someone_writes_to_them(
    tmp_path: Path,
) -> None:
    """G2: the next reads skip the records our confirmed creates made, and only while nobody writes to them.

    A user's edit is read (P1 reaches Sage), so is an edit made with the integration's own key (an administrator:
    K2 reaches Sage) and our own later write (with the real API a user edit made between our read and that write
    shows then); a run with a refused create remembers nothing of that entity's creates (C1: a twin of a failed
    create would be read).
    """
    w = SyncWorld()
    w.sage.put("accounts", account_row("C001", "Cave Dupont", city="Lyon"))
    w.sage.put("accounts", account_row("P001", "Prospect Martin", prospect=True, city="Dijon"))
    for n, name in ((1, "Durand"), (2, "Petit")):
        w.sage.put("contacts", contact_row("C001", n, name))
    _run_steps(w, tmp_path, "run1")
    accounts = {r["extId"]: r["id"] for r in w.ssm.live("accounts")}
    contacts = {r["extId"]: r["id"] for r in w.ssm.live("contacts")}
    assert [(r.lo, r.hi, r.until) for r in w.state.own_creates("accounts")] == [
        (min(accounts.values()), max(accounts.values()), None)
    ]

    def read(staged: dict[str, dict[str, Any]], entity: str) -> set[int]:
        return {int(r["id"]) for r in staged[entity]["ssm"]}

    w.ssm.user_update("accounts", accounts["P001"], {"city": "Beaune"})
    staged = _run_steps(w, tmp_path, "run2")
    assert read(staged, "accounts") == {accounts["P001"]} and read(staged, "contacts") == set()
    assert w.sage.rows("accounts")[("P001",)]["city"] == "Beaune"  # P1
    last = w.ssm.data["contacts"][max(contacts.values())]["dateCreated"]
    assert [r.until for r in w.state.own_creates("contacts")] == [just_after(last)]

    # An edit made with our own key between two runs, and our own later write, are read; C001 never is.
    w.ssm.bulk_update("contacts", [(contacts["C001/2"], {"phone2": "06 11 22 33 44"})])
    w.sage.edit("contacts", ("C001", 1), job_title="Gérante")
    staged = _run_steps(w, tmp_path, "run3")
    assert read(staged, "contacts") == {contacts["C001/2"]}
    assert w.sage.rows("contacts")[("C001", 2)]["mobile"] == "06 11 22 33 44"  # K2 SSM -> Sage
    assert w.ssm.data["contacts"][contacts["C001/1"]]["Z_JobTitle"] == "Gérante"  # K2 Sage -> SSM
    staged = _run_steps(w, tmp_path, "run4")
    assert contacts["C001/1"] in read(staged, "contacts")
    assert accounts["C001"] not in read(staged, "accounts")
    assert w.run(entities=ENTITIES).planned_ops == 0

    # A refused create: no range is remembered for that run; the retried create's run remembers its id.
    before = w.state.own_creates("contacts")
    w.sage.put("contacts", contact_row("C001", 3, "Moreau"))
    w.ssm.faults.armed.append(Fault("refuse", "create", "contacts", item=0))
    _run_steps(w, tmp_path, "run5")
    assert w.ssm_by_ext("contacts", "C001/3") == [] and w.state.own_creates("contacts") == before
    _run_steps(w, tmp_path, "run6")
    moreau = w.ssm_by_ext("contacts", "C001/3")[0]["id"]
    assert w.state.own_creates("contacts")[-1].lo == moreau


def test_g3_a_validation_that_holds_nothing_stages_the_extracted_input_as_it_is(tmp_path: Path) -> None:
    """Nothing quarantined: the plan reads the extract's input byte for byte; a quarantined row leaves it (G3)."""
    w = _world()
    staged = _run_steps(w, tmp_path, "run1")
    folder = Staging(tmp_path / "run1")
    for entity in ENTITIES:
        assert (
            folder.path(entity, "input.jsonl").read_bytes()
            == folder.path(entity, "extract_input.jsonl").read_bytes()
        )
    assert len(staged["invoices"]["sage"]) == 4

    w.sage.put("accounts", account_row("C002", ""))  # no name: the accounts suite quarantines the row
    w.sage.edit("accounts", ("C001",), city="Lille")
    _run_steps(w, tmp_path, "run2")
    folder = Staging(tmp_path / "run2")
    extracted = folder.read_input("accounts", "extract_input.jsonl")
    planned = folder.read_input("accounts", "input.jsonl")
    assert "C002" in extracted.sage and "C002" not in planned.sage and "C001" in planned.sage
    assert folder.read_json("accounts", "quality.json")["blocking"].keys() == {"C002"}
