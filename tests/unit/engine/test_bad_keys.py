"""G3/C1/I1: rows whose Sage key is missing or shared are quarantined one by one; the rest of the entity goes on."""

from __future__ import annotations

import pandas as pd

from sage_sync.engine.bad_keys import set_aside
from sage_sync.engine.snapshot import KEY, assemble
from sage_sync.mapping.registry import registry
from tests.support.memory import SyncWorld, account_row, contact_row, put_invoice, put_invoice_line


def test_a_piece_saved_twice_is_set_aside_with_both_rows_described() -> None:
    headers = pd.DataFrame(
        {
            "domain": [0, 0, 0],
            "doc_type": [6, 7, 6],
            "piece": ["FA1", "FA1", "FA2"],
            "customer_code": ["C1", "C1", "C2"],
        }
    )
    frame = assemble("invoices", {"headers": headers, "lines": pd.DataFrame({"piece": [], "line_id": []})})
    kept, bad = set_aside(registry()["invoices"], frame)
    assert kept[KEY].tolist() == ["FA2"]
    assert bad.shared == {"FA1"}
    assert bad.reasons["FA1"] == (
        "2 rows of F_DOCENTETE share DO_Piece FA1 (DO_Type 6 / 7): none is synced until one remains"
    )


def test_g3_an_account_without_code_is_quarantined_and_its_neighbours_sync() -> None:
    """One F_COMPTET row with a NULL CT_Num: only it is set aside, named by its content; accounts and contacts go on."""
    w = SyncWorld()
    w.sage.put("accounts", account_row("C001", "Alpha"))
    w.sage.put("accounts", {**account_row("X", "Sans Code", city="Lyon"), "code": None})
    w.sage.put("contacts", contact_row("C001", 1, "Durand"))
    result = w.run()
    assert [n.reason for n in result.plans["accounts"].quarantined] == [
        "F_COMPTET row without CT_Num (CT_Intitule='Sans Code', CT_Ville='Lyon'): it cannot be matched with SSM; "
        "give it its CT_Num in Sage"
    ]
    quarantined = w.state.quarantined("accounts")
    assert list(quarantined) == ["no CT_Num: CT_Intitule='Sans Code', CT_Ville='Lyon'"]
    assert [r["extId"] for r in w.ssm.live("accounts")] == ["C001"]
    assert [r["extId"] for r in w.ssm.live("contacts")] == ["C001/1"]
    assert w.run().plans["accounts"].quarantined  # still there next run: retried every run (G3)
    # Fixed in Sage: the row syncs and its quarantine entry is no longer open.
    w.sage.delete("accounts", (None,))
    w.sage.put("accounts", account_row("C002", "Sans Code", city="Lyon"))
    w.run()
    assert sorted(r["extId"] for r in w.ssm.live("accounts")) == ["C001", "C002"]
    assert w.state.quarantined("accounts") == {}


def test_i6_invoices_of_a_set_aside_account_wait_and_the_other_invoices_sync() -> None:
    w = SyncWorld()
    w.sage.put("accounts", account_row("C001", "Alpha"))
    put_invoice(w.sage, "FA1", "C001")
    put_invoice_line(w.sage, "FA1", 1)
    w.sage.put("accounts", {**account_row("C002", "Beta"), "code": None})
    put_invoice(w.sage, "FA2", "C002")
    put_invoice_line(w.sage, "FA2", 2)
    w.run()
    assert [r["extId"] for r in w.ssm.live("salesorders")] == ["FA1"]
