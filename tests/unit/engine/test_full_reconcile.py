"""Full reconcile (drift repair) on the in-memory sides: both LIVE sides are compared, not the last snapshot.

Drift is made the way an administrator would make it in SSM: an edit or a soft delete of a read-only record with
a key holding the integration right (``admin_update`` / ``admin_delete``). Rules: D1 (products are read-only, Sage
is the master), I1/I5 (invoices and their lines mirror Sage, read-only in SSM), G4 (no mass deletion on a broken
read), G6 (a run without drift writes nothing), G8 (a dry run writes nothing), P1/K2 (two-way merge).
"""

from __future__ import annotations

from typing import Any

from sage_sync.engine.config import SyncConfig
from sage_sync.engine.pipeline import RunResult
from tests.support.memory import (
    Fault,
    SyncWorld,
    account_row,
    put_article,
    put_invoice,
    put_invoice_line,
)

PRODUCTS = ("products",)
SALES = ("accounts", "invoices")


# --- builders ---------------------------------------------------------------------------------------------------


def article(w: SyncWorld, ref: str, **values: object) -> None:
    put_article(w.sage, ref, **values)


def product_world() -> SyncWorld:
    w = SyncWorld(config=SyncConfig())
    w.sage.put("products", {"tax_code": "T20", "tax_rate": 20.0}, source="taxes")
    w.sage.put("products", {"family_code": "VIN", "family_name": "Vins"}, source="families")
    w.sage.put("products", {"family_code": "BIE", "family_name": "Bières"}, source="families")
    for ref in ("A1", "A2", "A3"):
        article(w, ref)
    w.run(entities=PRODUCTS)
    return w


def header(w: SyncWorld, piece: str, **values: object) -> None:
    put_invoice(w.sage, piece, **values)


def line(w: SyncWorld, piece: str, line_id: int, **values: object) -> None:
    put_invoice_line(w.sage, piece, line_id, **values)


def invoice_world() -> SyncWorld:
    """Customer C001 with three invoices of two lines each (FA1: 11, 12; FA2: 21, 22; FA3: 31, 32)."""
    w = SyncWorld(config=SyncConfig())
    w.sage.put("accounts", account_row("C001", "Alpha"))
    for n in (1, 2, 3):
        header(w, f"FA{n}")
        line(w, f"FA{n}", n * 10 + 1)
        line(w, f"FA{n}", n * 10 + 2)
    w.run(entities=SALES)
    return w


def one(w: SyncWorld, endpoint: str, ext_id: str) -> dict[str, Any]:
    (rec,) = w.ssm_by_ext(endpoint, ext_id)
    return rec


def ops(result: RunResult, entity: str) -> list[tuple[str, str, str]]:
    """(kind, entity, key) of every planned op of one entity's plan."""
    return sorted((o.kind, o.entity, o.key) for o in result.plans[entity].ops)


def reasons(result: RunResult, entity: str) -> dict[str, str]:
    return {o.key: o.reason for o in result.plans[entity].ops}


# --- products ---------------------------------------------------------------------------------------------------


def test_d1_full_reconcile_repairs_only_the_drifted_product_fields() -> None:
    """D1 + G6: an admin's edits of read-only products are invisible to an incremental run; a full reconcile
    sends exactly the drifted fields of the drifted products (not every field of every product), then is quiet."""
    w = product_world()
    a1, a2 = one(w, "products", "A1"), one(w, "products", "A2")
    w.ssm.admin_update("products", a1["id"], {"price": 10.5})
    w.ssm.admin_update("products", a2["id"], {"model": "Renamed in SSM", "stock": 7})

    assert w.run(entities=PRODUCTS).planned_ops == 0, "an incremental run compares with the last snapshot"
    assert one(w, "products", "A1")["price"] == 10.5

    writes = w.ssm.writes
    result = w.run(entities=PRODUCTS, full_reconcile=True)
    plan = result.plans["products"]
    assert {o.key: o.fields for o in plan.ops} == {
        "A1": {"price": 12.0},
        "A2": {"model": "Article A2", "stock": None},
    }
    assert all(o.rule == "D1" for o in plan.ops)
    why = reasons(result, "products")
    assert "drift in SSM: price 10.5 -> 12.0" in why["A1"]
    assert "drift in SSM: model 'Renamed in SSM' -> 'Article A2', stock 7 -> None" in why["A2"]
    assert w.ssm.writes - writes == 2, "G6: one write per drifted product, none for A3"
    counts = result.counts["products"]
    assert (counts.updated, counts.unchanged) == (2, 1), "G7: A3 was compared and found unchanged"
    assert one(w, "products", "A1")["price"] == 12.0
    assert one(w, "products", "A2")["model"] == "Article A2" and one(w, "products", "A2")["stock"] is None

    again = w.run(entities=PRODUCTS, full_reconcile=True)
    assert again.planned_ops == 0, "G6: a full reconcile without drift writes nothing"


def test_d1_full_reconcile_tells_drift_from_a_sage_change_and_resolves_the_family() -> None:
    """D1: a Sage change and an SSM drift on the same product are both repaired, and the reason says which is
    which; the family is compared by name (familyId resolved through the value list); the picture is not re-sent."""
    w = product_world()
    a1 = one(w, "products", "A1")
    w.ssm.lists.product_families["Bières"] = 555
    w.ssm.admin_update("products", a1["id"], {"familyId": 555})
    w.sage.edit("products", ("A1",), designation="Nouveau nom")

    result = w.run(entities=PRODUCTS, full_reconcile=True)
    (op,) = result.plans["products"].ops
    assert op.fields == {"model": "Nouveau nom"}
    assert op.refs == {"familyId": ["productFamilies", "Vins"]}
    assert op.picture is None
    assert "drift in SSM: family 'Bières' -> 'Vins'" in op.reason
    assert "changed in Sage (D1): update model" in op.reason
    rec = one(w, "products", "A1")
    assert rec["familyId"] == w.ssm.lists.product_families["Vins"] and rec["model"] == "Nouveau nom"
    assert w.run(entities=PRODUCTS, full_reconcile=True).planned_ops == 0


def test_d1_product_deleted_or_gone_in_ssm_is_re_created_by_a_full_reconcile() -> None:
    """D1 + ADR 0010: the API cannot restore a soft-deleted record, so a product Sage still has is re-created
    (once: the next full reconcile is quiet, and no extId is shared by two live products)."""
    w = product_world()
    a1, a2 = one(w, "products", "A1"), one(w, "products", "A2")
    w.ssm.admin_delete("products", a1["id"])
    del w.ssm.data["products"][a2["id"]]  # purged from the tenant

    assert w.run(entities=PRODUCTS).planned_ops == 0, "an incremental run does not see it"
    result = w.run(entities=PRODUCTS, full_reconcile=True)
    assert ops(result, "products") == [("ssm_create", "products", "A1"), ("ssm_create", "products", "A2")]
    why = reasons(result, "products")
    assert f"drift in SSM: product {a1['id']} was deleted in SSM" in why["A1"]
    assert f"drift in SSM: product {a2['id']} no longer exists in SSM" in why["A2"]
    new_a1 = one(w, "products", "A1")
    assert new_a1["id"] != a1["id"] and new_a1["readOnly"] is True and new_a1["price"] == 12.0
    assert w.state.bindings("products")["A1"].ssm_id == new_a1["id"]
    assert w.run(entities=PRODUCTS, full_reconcile=True).planned_ops == 0
    assert w.run(entities=PRODUCTS).planned_ops == 0


def test_d1_deleted_product_with_a_live_twin_is_adopted_not_duplicated() -> None:
    """D1, G5: when another live SSM product already carries the extId of a product deleted in SSM, the full
    reconcile adopts it (no second live product with the same extId)."""
    w = product_world()
    a1 = one(w, "products", "A1")
    w.ssm.admin_delete("products", a1["id"])
    twin = w.ssm.user_create("products", {"model": "Copy", "extId": "A1", "price": 1.0})
    result = w.run(entities=PRODUCTS, full_reconcile=True)
    (op,) = result.plans["products"].ops
    assert (op.kind, op.ssm_id) == ("ssm_update", twin)
    assert "adopt it" in op.reason and "was deleted in SSM" in op.reason
    assert [r["id"] for r in w.ssm_by_ext("products", "A1")] == [twin]
    assert one(w, "products", "A1")["price"] == 12.0


def test_g8_full_reconcile_dry_run_shows_the_drift_and_writes_nothing() -> None:
    """G8: the dry-run plan of a full reconcile names the drift; nothing is written."""
    w = product_world()
    w.ssm.admin_update("products", one(w, "products", "A3")["id"], {"cost": 9.0})
    writes = w.ssm.writes
    result = w.run(entities=PRODUCTS, full_reconcile=True, dry_run=True)
    assert "drift in SSM: cost 9.0 -> 4.0" in result.render()
    assert w.ssm.writes == writes and one(w, "products", "A3")["cost"] == 9.0


# --- invoices ---------------------------------------------------------------------------------------------------


def test_i5_full_reconcile_repairs_sales_orders_and_lines_against_the_live_records() -> None:
    """I1 + I5 + G6: header and line drift, a line soft-deleted in SSM, an extra line carrying the extId of a line
    Sage no longer has, and a line without extId: an incremental run sees none of it; a full reconcile repairs
    exactly those records (re-creating the deleted line, deleting the extra one, reporting the foreign one)."""
    w = invoice_world()
    fa1, fa2 = one(w, "salesorders", "FA1"), one(w, "salesorders", "FA2")
    l11, l12, l21 = (one(w, "salesordersLines", str(n)) for n in (11, 12, 21))
    w.ssm.admin_update("salesorders", fa1["id"], {"total": 99.0})
    w.ssm.admin_update("salesordersLines", l11["id"], {"quantity": 5})
    w.ssm.admin_delete("salesordersLines", l12["id"])
    extra = w.ssm.user_create("salesordersLines", {"salesOrderId": fa2["id"], "extId": "999", "quantity": 1})
    foreign = w.ssm.user_create("salesordersLines", {"salesOrderId": fa2["id"], "quantity": 1})
    w.ssm.admin_update("salesordersLines", l21["id"], {"price": 1.0})

    assert w.run(entities=SALES).planned_ops == 0, "an incremental run compares with the last snapshot"

    writes = w.ssm.writes
    result = w.run(entities=SALES, full_reconcile=True)
    plan = result.plans["invoices"]
    assert ops(result, "invoices") == [
        ("ssm_create", "invoice_lines", "12"),
        ("ssm_delete", "invoice_lines", f"ssm:{extra}"),
        ("ssm_update", "invoice_lines", "11"),
        ("ssm_update", "invoice_lines", "21"),
        ("ssm_update", "invoices", "FA1"),
    ]
    by_key = {o.key: o for o in plan.ops}
    assert by_key["FA1"].fields.keys() == {"total", "Z_Synced", "Z_SyncedAt"}
    assert by_key["FA1"].rule == "I5" and "drift in SSM: total 99.0 -> 120.0" in by_key["FA1"].reason
    assert by_key["11"].fields == {"quantity": 2} and "drift in SSM: quantity 5 -> 2" in by_key["11"].reason
    assert f"line {l12['id']} was deleted in SSM" in by_key["12"].reason
    assert "line 999 is not on invoice FA2 in Sage" in by_key[f"ssm:{extra}"].reason
    (skipped,) = plan.skipped
    assert skipped.ssm_id == foreign and "no extId" in skipped.reason
    assert w.ssm.writes - writes == 5, "G6: FA3 and the undrifted lines got no write"
    assert result.counts["invoices"].unchanged == 1, "G7: FA3 was compared and found unchanged"

    assert one(w, "salesorders", "FA1")["total"] == 120.0
    assert one(w, "salesordersLines", "11")["quantity"] == 2
    new12 = one(w, "salesordersLines", "12")
    assert new12["id"] != l12["id"] and new12["salesOrderId"] == fa1["id"]
    assert w.ssm.data["salesordersLines"][extra]["deleted"] is True
    assert w.ssm.data["salesordersLines"][foreign]["deleted"] is False
    assert w.state.bindings("invoice_lines")["12"].ssm_id == new12["id"]

    again = w.run(entities=SALES, full_reconcile=True)
    assert again.planned_ops == 0, "G6: nothing left to repair"
    assert w.run(entities=SALES).planned_ops == 0


def test_i5_sales_order_deleted_in_ssm_is_re_created_with_its_lines() -> None:
    """I1 + I5 + ADR 0010: a sales order soft-deleted in SSM while Sage has the invoice is re-created with every
    line; its old live lines are deleted (they must not hang off a deleted order), and the next run is quiet."""
    w = invoice_world()
    fa2 = one(w, "salesorders", "FA2")
    old_lines = {r["id"] for r in w.ssm.live("salesordersLines") if r["salesOrderId"] == fa2["id"]}
    w.ssm.admin_delete("salesorders", fa2["id"])

    result = w.run(entities=SALES, full_reconcile=True)
    assert ops(result, "invoices") == sorted(
        [
            ("ssm_create", "invoices", "FA2"),
            ("ssm_create", "invoice_lines", "21"),
            ("ssm_create", "invoice_lines", "22"),
            *[("ssm_delete", "invoice_lines", f"ssm:{i}") for i in old_lines],
        ]
    )
    why = reasons(result, "invoices")
    assert f"drift in SSM: sales order {fa2['id']} was deleted in SSM" in why["FA2"]
    new = one(w, "salesorders", "FA2")
    assert new["id"] != fa2["id"] and new["readOnly"] is True and new["Z_Synced"] is True
    live = [r for r in w.ssm.live("salesordersLines") if r["extId"] in ("21", "22")]
    assert sorted(r["extId"] for r in live) == ["21", "22"]
    assert {r["salesOrderId"] for r in live} == {new["id"]}
    assert w.run(entities=SALES, full_reconcile=True).planned_ops == 0


def test_i2_lines_of_an_invoice_sage_no_longer_has_are_deleted_by_a_full_reconcile() -> None:
    """I2 + I1: the lines of a sales order whose invoice was deleted in Sage do not outlive it in SSM."""
    w = invoice_world()
    fa3 = one(w, "salesorders", "FA3")
    w.sage.delete("invoices", (0, "FA3"))
    for n in (31, 32):
        w.sage.delete("invoices", (n,), source="lines")
    w.run(entities=SALES)
    assert w.ssm.data["salesorders"][fa3["id"]]["deleted"] is True
    # A normal run deletes the lines with their sales order (I2)...
    assert not [r for r in w.ssm.live("salesordersLines") if r["salesOrderId"] == fa3["id"]]
    # ...but lines left live under it (restored by an administrator, or left by an older version) are drift.
    for rec in list(w.ssm.data["salesordersLines"].values()):
        if rec["salesOrderId"] == fa3["id"]:
            w.ssm.admin_update("salesordersLines", rec["id"], {"deleted": False})
    lines = [r for r in w.ssm.live("salesordersLines") if r["salesOrderId"] == fa3["id"]]
    assert lines and w.run(entities=SALES).planned_ops == 0, "an incremental run does not see them"

    result = w.run(entities=SALES, full_reconcile=True)
    assert ops(result, "invoices") == sorted(("ssm_delete", "invoice_lines", f"ssm:{r['id']}") for r in lines)
    assert all("its invoice FA3 is no longer in Sage" in o.reason for o in result.plans["invoices"].ops)
    assert not [r for r in w.ssm.live("salesordersLines") if r["salesOrderId"] == fa3["id"]]
    assert w.run(entities=SALES, full_reconcile=True).planned_ops == 0


def test_g4_broken_sage_read_withholds_the_full_reconcile_deletions() -> None:
    """G4: a Sage read that returns no rows never makes a full reconcile delete SSM lines or sales orders."""
    w = invoice_world()
    live_before = len(w.ssm.live("salesordersLines"))
    w.sage.faults.armed.append(Fault("empty", method="read", endpoint="invoices"))
    result = w.run(entities=("invoices",), full_reconcile=True)
    assert result.plans["invoices"].guard
    assert result.plans["invoices"].ops == []
    assert len(w.ssm.live("salesordersLines")) == live_before


# --- two-way entities keep their behaviour ---------------------------------------------------------------------


def test_p1_full_reconcile_merges_every_live_two_way_record() -> None:
    """P1 + G2: a prospect's SSM edit the incremental read missed (the watermark is past it) is read and
    three-way merged by a full reconcile, so it reaches Sage; untouched accounts get no write."""
    w = SyncWorld(config=SyncConfig())
    w.sage.put("accounts", account_row("P001", "Prospect one", prospect=True))
    w.sage.put("accounts", account_row("C001", "Customer one"))
    w.run(entities=("accounts",))
    rec = one(w, "accounts", "P001")
    assert w.ssm.user_update("accounts", rec["id"], {"city": "Lyon"})
    w.state.set_watermark("accounts", "2999-01-01T00:00:00.000Z")  # the edit falls before the watermark

    assert w.run(entities=("accounts",)).planned_ops == 0
    sage_writes, ssm_writes = w.sage.writes, w.ssm.writes
    result = w.run(entities=("accounts",), full_reconcile=True)
    assert [(o.kind, o.key) for o in result.plans["accounts"].ops] == [("sage_update", "P001")]
    assert result.counts["accounts"].unchanged == 1, "G7: C001 was compared, found in agreement: unchanged"
    assert w.sage.rows("accounts")[("P001",)]["city"] == "Lyon"
    assert (w.sage.writes - sage_writes, w.ssm.writes - ssm_writes) == (1, 0)
