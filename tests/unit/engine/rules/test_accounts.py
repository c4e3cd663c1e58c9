"""Accounts rules C1-C7, P1-P5 and G2/G4, each checked on both sides through the runner and the in-memory sides."""

from __future__ import annotations

import pytest

from sage_sync.engine.config import Guard, SyncConfig
from tests.support.memory import Fault, SimulatedCrash, SyncWorld, account_row, contact_row

CLIENT, PROSPECT, LEAD = 1, 2, 3


def world(**config: object) -> SyncWorld:
    return SyncWorld(config=SyncConfig(**config))  # type: ignore[arg-type]


def only(w: SyncWorld, code: str) -> dict:
    found = w.ssm_by_ext("accounts", code)
    assert len(found) == 1, f"expected one live SSM account with extId {code}, found {found}"
    return found[0]


def test_c1_sage_code_is_the_ssm_ext_id_and_never_duplicated() -> None:
    w = world()
    w.sage.put("accounts", account_row("C001", "Alpha", city="Lyon"))
    w.run()
    w.run()
    rec = only(w, "C001")
    assert rec["name"] == "Alpha" and rec["city"] == "Lyon"
    assert w.state.bindings("accounts")["C001"].ssm_id == rec["id"]


def test_c1_create_adopts_an_existing_ssm_account_with_the_same_ext_id() -> None:
    w = world()
    existing = w.ssm.user_create("accounts", {"name": "Alpha old", "statusId": CLIENT, "salesRepId1": 7})
    w.ssm.data["accounts"][existing]["extId"] = "C001"
    w.sage.put("accounts", account_row("C001", "Alpha"))
    result = w.run()
    op = result.plans["accounts"].ops[0]
    assert (op.kind, op.rule, op.ssm_id) == ("ssm_update", "C1", existing)
    rec = only(w, "C001")
    assert rec["id"] == existing and rec["name"] == "Alpha" and rec["readOnly"] is True
    assert rec["salesRepId1"] == 7  # C5: an existing owner is kept


def test_c2_customers_are_read_only_and_ssm_edits_never_reach_sage() -> None:
    w = world()
    w.sage.put("accounts", account_row("C001", "Alpha", city="Lyon"))
    w.run()
    rec = only(w, "C001")
    assert rec["readOnly"] is True
    assert w.ssm.user_update("accounts", rec["id"], {"city": "Nice"}) is False  # users cannot edit it
    # The integration key can: such an edit is skipped, never written to Sage ...
    w.ssm.bulk_update("accounts", [(rec["id"], {"city": "Nice"})])
    result = w.run()
    assert [n.rule for n in result.plans["accounts"].skipped] == ["C2"]
    assert result.plans["accounts"].is_empty
    assert w.sage.rows("accounts")[("C001",)]["city"] == "Lyon"
    # ... and the next Sage change overwrites the Sage-owned fields.
    w.sage.edit("accounts", ("C001",), phone="0102030405")
    w.run()
    assert only(w, "C001")["city"] == "Lyon" and only(w, "C001")["phone"] == "0102030405"


def test_c3_customer_deleted_in_sage_is_soft_deleted_in_ssm() -> None:
    w = world()
    w.sage.put("accounts", account_row("C001", "Alpha"))
    w.sage.put("accounts", account_row("C002", "Beta"))
    w.run()
    sid = only(w, "C001")["id"]
    w.sage.delete("accounts", ("C001",))
    result = w.run()
    assert [(o.kind, o.rule) for o in result.plans["accounts"].ops] == [("ssm_delete", "C3")]
    assert w.ssm.data["accounts"][sid]["deleted"] is True
    assert w.run().planned_ops == 0


def test_c3_deletion_in_ssm_is_not_propagated_to_sage() -> None:
    w = world()
    w.sage.put("accounts", account_row("P001", "Beta", prospect=True))
    w.run()
    sid = only(w, "P001")["id"]
    assert w.ssm.user_delete("accounts", sid)
    result = w.run()
    assert [n.rule for n in result.plans["accounts"].skipped] == ["P3"]
    assert ("P001",) in w.sage.rows("accounts")
    assert w.ssm_by_ext("accounts", "P001") == []  # not re-created either
    assert w.run().planned_ops == 0


def test_c4_company_created_in_ssm_as_client_becomes_a_sage_customer() -> None:
    w = world(code_template="C{ssm_id:06d}")
    sid = w.ssm.user_create(
        "accounts", {"name": "Gamma", "statusId": CLIENT, "city": "Brest", "salesRepId1": 7}
    )
    result = w.run()
    kinds = [(o.kind, o.rule) for o in result.plans["accounts"].ops]
    assert kinds == [("sage_insert", "C4"), ("ssm_update", "C4")]
    code = f"C{sid:06d}"
    row = w.sage.rows("accounts")[(code,)]
    assert row["is_prospect"] == 0 and row["name"] == "Gamma" and row["city"] == "Brest"
    rec = w.ssm.data["accounts"][sid]
    assert rec["extId"] == code and rec["readOnly"] is True
    assert w.run().planned_ops == 0


def test_c4_other_statuses_stay_in_ssm_only() -> None:
    w = world()
    w.ssm.user_create("accounts", {"name": "Lead Co", "statusId": LEAD})
    result = w.run()
    assert [n.rule for n in result.plans["accounts"].skipped] == ["C4"]
    assert w.sage.rows("accounts") == {}


def test_c4_crash_between_sage_insert_and_ssm_update_never_makes_a_second_customer() -> None:
    w = world(code_template="SSM{seq:05d}")
    sid = w.ssm.user_create("accounts", {"name": "Gamma", "statusId": CLIENT})
    w.ssm.faults.armed.append(Fault("crash", "update", "accounts"))
    with pytest.raises(SimulatedCrash):
        w.run()
    assert list(w.sage.rows("accounts")) == [("SSM00001",)]
    assert w.ssm.data["accounts"][sid]["extId"] is None
    result = w.run()
    assert [(o.kind, o.rule) for o in result.plans["accounts"].ops] == [("ssm_update", "C4")]
    assert list(w.sage.rows("accounts")) == [("SSM00001",)]
    assert w.ssm.data["accounts"][sid]["extId"] == "SSM00001"
    assert w.state.reserved("accounts") == {sid: "SSM00001"}
    assert w.run().planned_ops == 0


def test_c4_lost_response_of_the_sage_insert_is_not_inserted_twice() -> None:
    w = world(code_template="SSM{seq:05d}")
    sid = w.ssm.user_create("accounts", {"name": "Gamma", "statusId": CLIENT})
    w.sage.faults.armed.append(Fault("lost", "insert", "accounts"))
    w.run()
    assert w.ssm.data["accounts"][sid]["extId"] is None
    w.run()
    assert list(w.sage.rows("accounts")) == [("SSM00001",)]
    assert w.ssm.data["accounts"][sid]["extId"] == "SSM00001"


def test_c5_admin_becomes_owner_only_on_create_and_only_if_unset() -> None:
    w = world(admin_user_id=1)
    w.sage.put("accounts", account_row("P001", "Beta", prospect=True))
    w.run()
    rec = only(w, "P001")
    assert rec["salesRepId1"] == 1
    w.ssm.user_update("accounts", rec["id"], {"salesRepId1": 7, "city": "Nice"})
    w.sage.edit("accounts", ("P001",), phone="0102030405")
    w.run()
    rec = only(w, "P001")
    assert rec["salesRepId1"] == 7  # never re-assigned
    assert w.sage.rows("accounts")[("P001",)]["city"] == "Nice"


def test_c6_sales_rep_full_name_is_written_to_sage() -> None:
    w = world(code_template="C{ssm_id:06d}")
    sid = w.ssm.user_create("accounts", {"name": "Gamma", "statusId": CLIENT, "salesRepId1": 7})
    w.run()
    assert w.sage.rows("accounts")[(f"C{sid:06d}",)]["sales_rep"] == "Lucie Martin"


def test_c7_customers_are_modified_only_from_sage() -> None:
    w = world()
    w.sage.put("accounts", account_row("C001", "Alpha", city="Lyon"))
    w.run()
    w.sage.edit("accounts", ("C001",), city="Lille", country="belgique")
    result = w.run()
    op = result.plans["accounts"].ops[0]
    assert (op.kind, op.rule) == ("ssm_update", "C7")
    rec = only(w, "C001")
    assert rec["city"] == "Lille" and rec["countryId"] == 21
    assert w.run().planned_ops == 0


def test_p1_prospects_flow_both_ways() -> None:
    w = world(code_template="P{ssm_id:06d}")
    w.sage.put("accounts", account_row("P001", "Beta", prospect=True))
    sid = w.ssm.user_create("accounts", {"name": "Delta", "statusId": PROSPECT, "city": "Nantes"})
    w.run()
    rec = only(w, "P001")
    assert rec["statusId"] == PROSPECT and rec["readOnly"] is False
    row = w.sage.rows("accounts")[(f"P{sid:06d}",)]
    assert row["is_prospect"] == 1 and row["city"] == "Nantes"
    w.ssm.user_update("accounts", rec["id"], {"city": "Caen"})
    w.sage.edit("accounts", (f"P{sid:06d}",), phone="0607080910")
    w.run()
    assert w.sage.rows("accounts")[("P001",)]["city"] == "Caen"
    assert w.ssm.data["accounts"][sid]["phone"] == "0607080910"
    assert w.run().planned_ops == 0  # G2: no ping-pong


def test_p2_conversion_in_sage_keeps_ssm_only_data() -> None:
    w = world()
    w.sage.put("accounts", account_row("P001", "Beta", prospect=True))
    w.run()
    rec = only(w, "P001")
    w.ssm.user_update("accounts", rec["id"], {"salesRepId1": 7, "Z_Notes": "VIP"})
    w.sage.edit("accounts", ("P001",), is_prospect=0)
    result = w.run()
    assert {o.rule for o in result.plans["accounts"].ops} == {"P2"}
    rec = only(w, "P001")
    assert rec["statusId"] == CLIENT and rec["readOnly"] is True
    assert rec["salesRepId1"] == 7 and rec["Z_Notes"] == "VIP"


def test_p2_conversion_in_ssm_converts_the_sage_prospect() -> None:
    w = world()
    w.sage.put("accounts", account_row("P001", "Beta", prospect=True))
    w.run()
    w.ssm.user_update("accounts", only(w, "P001")["id"], {"statusId": CLIENT})
    result = w.run()
    assert [(o.kind, o.rule) for o in result.plans["accounts"].ops] == [
        ("sage_update", "P2"),
        ("ssm_update", "P2"),
    ]
    assert w.sage.rows("accounts")[("P001",)]["is_prospect"] == 0
    assert only(w, "P001")["readOnly"] is True
    assert w.run().planned_ops == 0


def test_p3_prospect_deleted_in_sage_is_deleted_in_ssm() -> None:
    w = world()
    w.sage.put("accounts", account_row("C001", "Alpha"))
    w.sage.put("accounts", account_row("P001", "Beta", prospect=True))
    w.run()
    sid = only(w, "P001")["id"]
    w.sage.delete("accounts", ("P001",))
    result = w.run()
    assert [(o.kind, o.rule) for o in result.plans["accounts"].ops] == [("ssm_delete", "P3")]
    assert w.ssm.data["accounts"][sid]["deleted"] is True


def test_p4_customers_and_prospects_share_the_ssm_accounts_table() -> None:
    w = world()
    w.sage.put("accounts", account_row("C001", "Alpha"))
    w.sage.put("accounts", account_row("P001", "Beta", prospect=True))
    w.run()
    statuses = {r["extId"]: r["statusId"] for r in w.ssm.live("accounts")}
    assert statuses == {"C001": CLIENT, "P001": PROSPECT}
    assert set(w.ssm.data) == {"accounts"}


def test_p5_contacts_of_a_prospect_wait_for_the_conversion() -> None:
    w = world()
    w.sage.put("accounts", account_row("P001", "Beta", prospect=True))
    w.sage.put("contacts", contact_row("P001", 1, "Petit"))
    result = w.run()
    assert [(n.rule, n.key) for n in result.plans["contacts"].deferred] == [("P5", "P001/1")]
    assert result.counts["contacts"].deferred == 1 and result.counts["contacts"].failed == 0
    assert w.ssm.live("contacts") == []
    w.sage.edit("accounts", ("P001",), is_prospect=0)
    w.run()
    (contact,) = w.ssm.live("contacts")
    assert contact["extId"] == "P001/1" and contact["accountId"] == only(w, "P001")["id"]


def test_g2_same_field_changed_on_both_sides_sage_wins_and_is_recorded() -> None:
    w = world()
    w.sage.put("accounts", account_row("P001", "Beta", prospect=True, city="Lyon"))
    w.run()
    rec = only(w, "P001")
    w.ssm.user_update("accounts", rec["id"], {"city": "Nice", "phone": "0607080910"})
    w.sage.edit("accounts", ("P001",), city="Lille")
    result = w.run()
    (conflict,) = result.plans["accounts"].conflicts
    assert (conflict.field, conflict.sage_value, conflict.ssm_value, conflict.winner) == (
        "city",
        "Lille",
        "Nice",
        "sage",
    )
    assert only(w, "P001")["city"] == "Lille"
    assert w.sage.rows("accounts")[("P001",)]["phone"] == "0607080910"  # merged field by field
    stored = w.state.conflicts("accounts")
    assert [(c["field"], c["winner"]) for c in stored] == [("city", "sage")]
    assert w.run().planned_ops == 0


def test_g2_policy_ssm_wins_is_configurable_per_entity() -> None:
    w = world(conflict={"accounts": "ssm"})
    w.sage.put("accounts", account_row("P001", "Beta", prospect=True, city="Lyon"))
    w.run()
    w.ssm.user_update("accounts", only(w, "P001")["id"], {"city": "Nice"})
    w.sage.edit("accounts", ("P001",), city="Lille")
    w.run()
    assert w.sage.rows("accounts")[("P001",)]["city"] == "Nice"
    assert only(w, "P001")["city"] == "Nice"
    assert w.run().planned_ops == 0


def test_g4_empty_sage_snapshot_withholds_every_deletion() -> None:
    w = world()
    for i in range(3):
        w.sage.put("accounts", account_row(f"C00{i}", "Alpha"))
    w.run()
    for i in range(3):
        w.sage.delete("accounts", (f"C00{i}",))
    result = w.run()
    plan = result.plans["accounts"]
    assert plan.is_empty and plan.guard and "empty" in plan.guard
    assert len(w.ssm.live("accounts")) == 3
    assert "accounts" in result.guards


def test_g4_shrinking_beyond_the_ratio_withholds_deletions() -> None:
    w = world(guards={"accounts": Guard(ratio=0.3, minimum=2)})
    for i in range(10):
        w.sage.put("accounts", account_row(f"C{i:03d}", "Alpha"))
    w.run()
    for i in range(4):
        w.sage.delete("accounts", (f"C{i:03d}",))
    plan = w.run().plans["accounts"]
    assert plan.is_empty and plan.guard and "4 of 10" in plan.guard
    assert len(w.ssm.live("accounts")) == 10
    w.config = SyncConfig(guards={"accounts": Guard(ratio=0.5, minimum=2)})
    assert w.run().plans["accounts"].count("ssm_delete") == 4
    assert len(w.ssm.live("accounts")) == 6


def test_g4_guard_withholds_only_deletions_and_a_run_approval_applies_exactly_that_set() -> None:
    """G4 + A1: creations and updates flow while deletions wait; an approval of the withheld count applies them."""
    w = world(guards={"accounts": Guard(ratio=0.3, minimum=2)})
    for i in range(10):
        w.sage.put("accounts", account_row(f"C{i:03d}", "Alpha"))
    w.run()
    for i in range(4):
        w.sage.delete("accounts", (f"C{i:03d}",))
    w.sage.edit("accounts", ("C009",), city="Nantes")
    w.sage.put("accounts", account_row("C100", "Nouveau"))
    first = w.run().plans["accounts"]
    assert sorted((o.kind, o.key) for o in first.ops) == [("ssm_create", "C100"), ("ssm_update", "C009")]
    assert sorted(n.key for n in first.deferred if n.rule == "G4") == ["C000", "C001", "C002", "C003"]
    assert first.withheld_set and "approve with approve_deletions {accounts: 4}" in (first.guard or "")
    assert w.ssm_by_ext("accounts", "C009")[0]["city"] == "Nantes" and w.ssm_by_ext("accounts", "C100")
    # An approval that does not match the withheld set (3, not 4) approves nothing.
    assert w.run(approve_deletions={"accounts": 3}).plans["accounts"].count("ssm_delete") == 0
    # The set grows before the approval lands: the approval of 4 no longer matches its fingerprint or size.
    w.sage.delete("accounts", ("C004",))
    assert (
        w.run(approve_deletions={"accounts": first.withheld_set or ""}).plans["accounts"].count("ssm_delete")
        == 0
    )
    w.sage.put("accounts", account_row("C004", "Alpha"))
    approved = w.run(approve_deletions={"accounts": 4}).plans["accounts"]
    assert approved.count("ssm_delete") == 4 and approved.approval == "4"
    assert sorted(r["extId"] for r in w.ssm.live("accounts"))[:2] == ["C004", "C005"]
    assert w.run().planned_ops == 0


def test_c4_company_deleted_in_ssm_before_its_ext_id_was_written_keeps_a_live_account() -> None:
    """C3 + C1: the Sage customer exists now; the SSM deletion is not propagated and SSM gets the customer back."""
    w = world(code_template="SSM{seq:05d}")
    sid = w.ssm.user_create("accounts", {"name": "Gamma", "statusId": CLIENT})
    w.ssm.faults.armed.append(Fault("refuse", "update", "accounts"))
    w.run()
    assert ("SSM00001",) in w.sage.rows("accounts") and w.ssm.data["accounts"][sid]["extId"] is None
    assert w.ssm.user_delete("accounts", sid)
    result = w.run()
    assert [n.rule for n in result.plans["accounts"].skipped] == ["C3"]
    rec = only(w, "SSM00001")
    assert rec["id"] != sid and rec["readOnly"] is True
    assert ("SSM00001",) in w.sage.rows("accounts")
    assert w.run().planned_ops == 0
