"""Contacts rules K1-K4 (and G2/G4 on contacts), checked on both sides."""

from __future__ import annotations

from sage_sync.engine.config import SyncConfig
from tests.support.memory import Fault, SyncWorld, account_row, contact_row

CLIENT, PROSPECT = 1, 2


def world() -> SyncWorld:
    w = SyncWorld(config=SyncConfig())
    w.sage.put("accounts", account_row("C001", "Alpha"))
    return w


def account_id(w: SyncWorld, code: str) -> int:
    return w.ssm_by_ext("accounts", code)[0]["id"]


def test_k1_sage_contact_is_created_in_ssm_on_its_account() -> None:
    w = world()
    w.sage.put("contacts", contact_row("C001", 1, "Durand", first_name="Anne", civility=1, job_title="CEO"))
    result = w.run()
    assert [(o.kind, o.rule) for o in result.plans["contacts"].ops] == [("ssm_create", "K1")]
    (rec,) = w.ssm.live("contacts")
    assert rec["extId"] == "C001/1" and rec["accountId"] == account_id(w, "C001")
    assert (rec["lastName"], rec["firstName"], rec["gender"], rec["Z_JobTitle"]) == (
        "Durand",
        "Anne",
        1,
        "CEO",
    )
    assert w.run().planned_ops == 0


def test_k1_ssm_contact_is_created_in_sage_with_a_reserved_number() -> None:
    w = world()
    w.sage.put("contacts", contact_row("C001", 1, "Durand"))
    w.run()
    sid = w.ssm.user_create(
        "contacts", {"accountId": account_id(w, "C001"), "lastName": "Roux", "firstName": "Léa"}
    )
    result = w.run()
    assert [(o.kind, o.rule) for o in result.plans["contacts"].ops] == [
        ("sage_insert", "K1"),
        ("ssm_update", "K1"),
    ]
    row = w.sage.rows("contacts")[("C001", 2)]
    assert (row["last_name"], row["first_name"]) == ("Roux", "Léa")
    assert w.ssm.data["contacts"][sid]["extId"] == "C001/2"
    assert w.run().planned_ops == 0


def test_k1_lost_response_on_the_ssm_create_adopts_instead_of_duplicating() -> None:
    w = world()
    w.run()
    w.sage.put("contacts", contact_row("C001", 1, "Durand"))
    w.ssm.faults.armed.append(Fault("lost", "create", "contacts"))
    assert w.run().counts["contacts"].failed == 1
    w.run()
    assert [r["extId"] for r in w.ssm.live("contacts")] == ["C001/1"]
    assert w.state.bindings("contacts")["C001/1"].ssm_id == w.ssm.live("contacts")[0]["id"]


def test_k2_edits_flow_both_ways_field_by_field() -> None:
    w = world()
    w.sage.put("contacts", contact_row("C001", 1, "Durand", first_name="Anne"))
    w.run()
    (rec,) = w.ssm.live("contacts")
    w.ssm.user_update("contacts", rec["id"], {"email": "anne@example.fr"})
    w.sage.edit("contacts", ("C001", 1), phone="0102030405")
    result = w.run()
    assert {(o.kind, o.rule) for o in result.plans["contacts"].ops} == {
        ("sage_update", "K2"),
        ("ssm_update", "K2"),
    }
    assert w.sage.rows("contacts")[("C001", 1)]["email"] == "anne@example.fr"
    assert w.ssm.data["contacts"][rec["id"]]["phone1"] == "0102030405"
    assert w.run().planned_ops == 0


def test_k2_conflict_on_a_contact_sage_wins_and_is_recorded() -> None:
    w = world()
    w.sage.put("contacts", contact_row("C001", 1, "Durand", first_name="Anne"))
    w.run()
    (rec,) = w.ssm.live("contacts")
    w.ssm.user_update("contacts", rec["id"], {"firstName": "Annie"})
    w.sage.edit("contacts", ("C001", 1), first_name="Anna")
    result = w.run()
    assert [(c.field, c.sage_value, c.ssm_value) for c in result.plans["contacts"].conflicts] == [
        ("first_name", "Anna", "Annie")
    ]
    assert w.ssm.data["contacts"][rec["id"]]["firstName"] == "Anna"


def test_k3_contact_deleted_in_sage_is_deleted_in_ssm_not_the_other_way() -> None:
    w = world()
    w.sage.put("contacts", contact_row("C001", 1, "Durand"))
    w.sage.put("contacts", contact_row("C001", 2, "Petit"))
    w.sage.put("contacts", contact_row("C001", 3, "Moreau"))
    w.run()
    by_ext = {r["extId"]: r["id"] for r in w.ssm.live("contacts")}
    w.sage.delete("contacts", ("C001", 1))
    assert w.ssm.user_delete("contacts", by_ext["C001/2"])
    result = w.run()
    assert [(o.kind, o.rule, o.key) for o in result.plans["contacts"].ops] == [("ssm_delete", "K3", "C001/1")]
    assert [n.rule for n in result.plans["contacts"].skipped] == ["K3"]
    assert w.ssm.data["contacts"][by_ext["C001/1"]]["deleted"] is True
    assert ("C001", 2) in w.sage.rows("contacts")
    assert w.run().planned_ops == 0


def test_k4_ssm_contact_on_an_account_unknown_to_sage_waits() -> None:
    w = world()
    w.run()
    lead = w.ssm.user_create("accounts", {"name": "Lead Co", "statusId": 3})
    sid = w.ssm.user_create("contacts", {"accountId": lead, "lastName": "Roux"})
    result = w.run()
    assert [(n.rule, n.ssm_id) for n in result.plans["contacts"].deferred] == [("K4", sid)]
    assert w.sage.rows("contacts") == {}
    assert sid in w.state.pending("contacts")
    # The account becomes a Client in SSM: it is created in Sage, then the waiting contact follows.
    w.ssm.user_update("accounts", lead, {"statusId": CLIENT})
    w.run()
    code = w.ssm.data["accounts"][lead]["extId"]
    assert [k for k in w.sage.rows("contacts")] == [(code, 1)]
    assert w.ssm.data["contacts"][sid]["extId"] == f"{code}/1"


def test_k4_only_sage_people_are_contacts() -> None:
    """Delivery addresses are not a source of the contacts mapping: only F_CONTACTT rows become contacts."""
    from sage_sync.engine.codec import mapping

    assert [s.table for s in mapping("contacts").sources.values()] == ["F_CONTACTT"]


def test_g4_guard_protects_contacts_too() -> None:
    w = world()
    w.sage.put("contacts", contact_row("C001", 1, "Durand"))
    w.run()
    w.sage.delete("contacts", ("C001", 1))
    plan = w.run().plans["contacts"]
    assert plan.is_empty and plan.guard
    assert len(w.ssm.live("contacts")) == 1


def test_k2_a_contact_moved_to_another_account_in_ssm_is_put_back() -> None:
    w = world()
    w.sage.put("accounts", account_row("C002", "Beta"))
    w.sage.put("contacts", contact_row("C001", 1, "Durand"))
    w.run()
    (rec,) = w.ssm.live("contacts")
    w.ssm.user_update("contacts", rec["id"], {"accountId": account_id(w, "C002"), "firstName": "Anne"})
    result = w.run()
    assert [n.rule for n in result.plans["contacts"].skipped] == ["K2"]
    assert w.ssm.data["contacts"][rec["id"]]["accountId"] == account_id(w, "C001")
    assert w.sage.rows("contacts")[("C001", 1)]["first_name"] == "Anne"
    assert w.run().planned_ops == 0


def test_k1_contacts_follow_their_customer_when_its_ssm_account_is_recreated() -> None:
    w = world()
    w.sage.put("contacts", contact_row("C001", 1, "Durand"))
    w.run()
    old = account_id(w, "C001")
    w.ssm.soft_delete("accounts", [old])  # only the integration key can delete a read-only account
    result = w.run()
    assert [n.rule for n in result.plans["accounts"].skipped] == ["C3"]
    new = account_id(w, "C001")
    assert new != old
    (rec,) = w.ssm.live("contacts")
    assert rec["accountId"] == new
    assert w.run().planned_ops == 0


class CountingLookups(SyncWorld):
    """A world whose SSM side notes every extId lookup (endpoint, keys)."""

    def __init__(self) -> None:
        super().__init__(config=SyncConfig())
        self.lookups: list[tuple[str, list[str]]] = []
        original = self.ssm.find_by_ext_ids

        def find(endpoint: str, ext_ids: list[str]) -> list[dict[str, object]]:
            self.lookups.append((endpoint, list(ext_ids)))
            return original(endpoint, ext_ids)

        self.ssm.find_by_ext_ids = find  # type: ignore[method-assign]


def test_p5_contacts_waiting_for_their_prospect_are_not_looked_up_but_follow_its_conversion() -> None:
    """A prospect's contacts wait (P5) and cost no extId lookup on any run; converted, they are created once."""
    w = CountingLookups()
    w.sage.put("accounts", account_row("P001", "Beta", prospect=True))
    w.sage.put("contacts", contact_row("P001", 1, "Durand"))
    first = w.run()
    assert [n.rule for n in first.plans["contacts"].deferred] == ["P5"]
    w.lookups.clear()
    assert w.run().plans["contacts"].deferred  # still waiting
    assert not [keys for endpoint, keys in w.lookups if endpoint == "contacts"]
    w.sage.edit("accounts", ("P001",), is_prospect=0)  # P2: converted in Sage
    w.run()
    assert [keys for endpoint, keys in w.lookups if endpoint == "contacts"] == [
        ["P001/1"]
    ]  # C1 adoption check
    assert [r["extId"] for r in w.ssm.live("contacts")] == ["P001/1"]
