"""Invoice rules I1-I6 (one way, read-only in SSM), checked on both sides."""

from __future__ import annotations

from sage_sync.engine.config import SyncConfig
from tests.support.memory import Fault, SyncWorld, account_row, put_article, put_invoice, put_invoice_line

FACTURE, AVOIR = 11, 12


def header(w: SyncWorld, piece: str, customer: str = "C001", **values: object) -> None:
    put_invoice(w.sage, piece, customer, **values)


def line(w: SyncWorld, piece: str, line_id: int, **values: object) -> None:
    defaults = {
        "article_ref": "A1",
        "designation": "Vin",
        "quantity": 2.5,
        "unit_price": 40.0,
        "amount_ht": 100.0,
    }
    put_invoice_line(w.sage, piece, line_id, **{**defaults, **values})


def world() -> SyncWorld:
    w = SyncWorld(config=SyncConfig())
    w.sage.put("accounts", account_row("C001", "Alpha"))
    put_article(w.sage, "A1")  # the article the lines name (a line of an article Sage lacks is quarantined)
    return w


def only(w: SyncWorld, piece: str) -> dict:
    (rec,) = w.ssm_by_ext("salesorders", piece)
    return rec


def test_i1_invoice_with_lines_is_created_and_posting_is_an_update() -> None:
    w = world()
    header(w, "FA0001")
    line(w, "FA0001", 1)
    line(w, "FA0001", 2, designation="Port", quantity=1.0, unit_price=0.0, amount_ht=0.0, article_ref=None)
    w.run()
    rec = only(w, "FA0001")
    assert rec["accountId"] == w.ssm_by_ext("accounts", "C001")[0]["id"]
    lines = sorted(w.ssm.live("salesordersLines"), key=lambda r: r["order"])
    assert [(r["salesOrderId"], r["quantity"], r["Z_Quantity"]) for r in lines] == [
        (rec["id"], 3, 2.5),
        (rec["id"], 1, 1.0),
    ]
    assert w.run().planned_ops == 0
    # Posting: DO_Type 6 -> 7 with the same piece, and a payment: one update, no delete, no create.
    w.sage.edit("invoices", (0, "FA0001"), doc_type=7, amount_paid=50.0)
    plan = w.run().plans["invoices"]
    assert [(o.kind, o.rule) for o in plan.ops] == [("ssm_update", "I1")]
    assert only(w, "FA0001")["id"] == rec["id"] and len(w.ssm.live("salesorders")) == 1


def test_i1_only_changed_lines_are_sent() -> None:
    w = world()
    header(w, "FA0001")
    line(w, "FA0001", 1)
    line(w, "FA0001", 2)
    w.run()
    w.sage.edit("invoices", (2,), source="lines", quantity=4.0)
    w.sage.delete("invoices", (1,), source="lines")
    plan = w.run().plans["invoices"]
    # The lines changed and so did the invoice's totals: the two lines and the header, nothing else.
    assert sorted((o.entity, o.kind, o.key) for o in plan.ops) == [
        ("invoice_lines", "ssm_delete", "1"),
        ("invoice_lines", "ssm_update", "2"),
        ("invoices", "ssm_update", "FA0001"),
    ]
    (remaining,) = w.ssm.live("salesordersLines")
    assert (remaining["extId"], remaining["quantity"]) == ("2", 4)


def test_i2_invoice_deleted_in_sage_is_deleted_in_ssm() -> None:
    w = world()
    header(w, "FA0001")
    header(w, "FA0002")
    w.run()
    sid = only(w, "FA0001")["id"]
    w.sage.delete("invoices", (0, "FA0001"))
    plan = w.run().plans["invoices"]
    assert [(o.kind, o.rule) for o in plan.ops] == [("ssm_delete", "I2")]
    assert w.ssm.data["salesorders"][sid]["deleted"] is True


def test_i2_lines_of_a_deleted_invoice_are_deleted_too_and_a_failed_one_is_retried() -> None:
    """I2: the sales order and its lines are soft-deleted; a line delete that fails is retried next run (G5)."""
    w = world()
    header(w, "FA0001")
    line(w, "FA0001", 1)
    line(w, "FA0001", 2)
    header(w, "FA0002")
    line(w, "FA0002", 3)
    w.run()
    w.sage.delete("invoices", (0, "FA0001"))
    for line_id in (1, 2):
        w.sage.delete("invoices", (line_id,), source="lines")
    w.ssm.faults.armed.append(Fault("refuse", "delete", "salesordersLines", item=1))
    plan = w.run().plans["invoices"]
    assert sorted((o.kind, o.rule, o.entity, o.key) for o in plan.ops) == [
        ("ssm_delete", "I2", "invoice_lines", "1"),
        ("ssm_delete", "I2", "invoice_lines", "2"),
        ("ssm_delete", "I2", "invoices", "FA0001"),
    ]
    assert sorted(r["extId"] for r in w.ssm.live("salesordersLines")) == ["2", "3"]  # line 2's delete failed
    retry = w.run().plans["invoices"]
    assert sorted((o.entity, o.key) for o in retry.ops) == [("invoice_lines", "2"), ("invoices", "FA0001")]
    assert sorted(r["extId"] for r in w.ssm.live("salesordersLines")) == ["3"]
    assert [r["extId"] for r in w.ssm.live("salesorders")] == ["FA0002"]
    assert w.run().planned_ops == 0


def test_i3_synced_invoices_are_marked_with_the_time() -> None:
    w = world()
    header(w, "FA0001")
    result = w.run()
    rec = only(w, "FA0001")
    assert (
        rec["Z_Synced"] is True and rec["Z_SyncedAt"] == result.plans["invoices"].ops[0].fields["Z_SyncedAt"]
    )
    assert rec["Z_SyncedAt"].endswith("Z")


def test_i4_sage_invoice_number_is_visible_in_ssm() -> None:
    w = world()
    header(w, "FA0042")
    w.run()
    rec = only(w, "FA0042")
    assert rec["Z_Sage50InvoiceId"] == rec["extId"] == rec["reference"] == "FA0042"


def test_i5_invoices_read_only_and_credit_notes_marked_avoir() -> None:
    w = world()
    header(w, "FA0001")
    header(w, "AV0001", provenance=2)
    line(w, "AV0001", 9, quantity=-1.0, unit_price=50.0, amount_ht=-50.0)
    w.run()
    assert only(w, "FA0001")["readOnly"] is True
    assert (only(w, "FA0001")["statusId"], only(w, "FA0001")["Z_DocType"]) == (FACTURE, "Facture")
    assert (only(w, "AV0001")["statusId"], only(w, "AV0001")["Z_DocType"]) == (AVOIR, "Avoir")


def test_i6_invoice_of_a_customer_not_in_ssm_waits_and_is_never_dropped() -> None:
    w = world()
    w.sage.put("accounts", account_row("C002", "Beta"))
    header(w, "FA0001", customer="C002")
    w.ssm.faults.armed.append(Fault("refuse", "create", "accounts", item=1))  # C002's create is refused
    result = w.run()
    assert [(n.rule, n.key) for n in result.plans["invoices"].deferred] == [("I6", "FA0001")]
    assert w.ssm.live("salesorders") == []
    w.run()
    assert only(w, "FA0001")["accountId"] == w.ssm_by_ext("accounts", "C002")[0]["id"]


def test_i1_new_invoice_after_a_line_only_change_gets_its_lines_in_the_same_run() -> None:
    """Header ops run before line ops, whatever the plan order, so new lines find their new sales order."""
    w = world()
    header(w, "FA0001")
    line(w, "FA0001", 1)
    w.run()
    w.sage.edit("invoices", (1,), source="lines", designation="Vin rouge")
    header(w, "FA0002")
    line(w, "FA0002", 2)
    w.run()
    assert {r["extId"]: r["salesOrderId"] for r in w.ssm.live("salesordersLines")} == {
        "1": only(w, "FA0001")["id"],
        "2": only(w, "FA0002")["id"],
    }
    assert w.run().planned_ops == 0


def test_i1_lost_response_and_refused_line_converge_without_duplicates() -> None:
    w = world()
    header(w, "FA0001")
    line(w, "FA0001", 1)
    line(w, "FA0001", 2)
    w.run(entities=("accounts",))
    w.ssm.faults.armed.append(Fault("lost", "create", "salesorders"))
    w.run()
    w.ssm.faults.armed.append(Fault("refuse", "create", "salesordersLines", item=1))
    w.run()
    w.sage.edit("invoices", (2,), source="lines", quantity=5.0)
    w.ssm.faults.armed.append(Fault("lost", "create", "salesordersLines"))
    w.run()
    w.run()
    assert [r["extId"] for r in w.ssm.live("salesorders")] == ["FA0001"]
    assert sorted(r["extId"] for r in w.ssm.live("salesordersLines")) == ["1", "2"]
    assert {k: b.ssm_id is not None for k, b in w.state.bindings("invoice_lines").items()} == {
        "1": True,
        "2": True,
    }
    assert w.run().planned_ops == 0


def test_i1_a_line_removed_in_sage_is_deleted_in_ssm_and_only_that_line() -> None:
    w = world()
    header(w, "FA0001")
    line(w, "FA0001", 1)
    line(w, "FA0001", 2, designation="Port")
    header(w, "FA0002")
    line(w, "FA0002", 3)
    w.run()
    by_ext = {r["extId"]: r["id"] for r in w.ssm.live("salesordersLines")}
    w.sage.delete("invoices", (2,), source="lines")  # Sage lowers the invoice's totals with it
    plan = w.run().plans["invoices"]
    deletes = [(o.kind, o.key, o.ssm_id) for o in plan.ops if o.kind == "ssm_delete"]
    assert deletes == [("ssm_delete", "2", by_ext["2"])]
    assert sorted(r["extId"] for r in w.ssm.live("salesordersLines")) == ["1", "3"]
    assert w.run().planned_ops == 0


def test_i1_i3_posting_alone_updates_the_same_sales_order_and_its_sync_time() -> None:
    """Posting (DO_Type 6 -> 7) changes no SSM field of its own, yet it is an update: Z_SyncedAt moves (I3)."""
    w = world()
    header(w, "FA0001")
    line(w, "FA0001", 1)
    w.run()
    before = only(w, "FA0001")
    w.sage.edit("invoices", (0, "FA0001"), doc_type=7)
    plan = w.run().plans["invoices"]
    assert [(o.kind, o.rule, o.ssm_id) for o in plan.ops] == [("ssm_update", "I1", before["id"])]
    assert set(plan.ops[0].fields) == {"Z_Synced", "Z_SyncedAt"}
    after = only(w, "FA0001")
    assert after["id"] == before["id"] and after["Z_SyncedAt"] == plan.ops[0].fields["Z_SyncedAt"]
    assert len(w.ssm.live("salesorders")) == 1
    assert w.run().planned_ops == 0


def test_i1_g5_line_written_before_its_product_existed_gets_the_product_once_it_is_in_ssm() -> None:
    """G5/I1: a refused product create leaves the invoice line without productId; a later run links it.

    The invoice does not change again in Sage, so the line must be repaired although its invoice is out of scope.
    """
    w = world()
    w.sage.put("products", {"tax_code": "T20", "tax_rate": 20.0}, source="taxes")
    w.sage.put("products", {"ref": "A1", "designation": "Vin", "sales_price": 12.0, "stock_managed": 0})
    header(w, "FA0001")
    line(w, "FA0001", 1, article_ref="A1")
    line(w, "FA0001", 2, article_ref=None, designation="Port")
    w.ssm.faults.armed.append(Fault("refuse", "create", "products"))
    w.run()
    assert w.ssm.live("products") == []
    assert {r["extId"]: r["productId"] for r in w.ssm.live("salesordersLines")} == {"1": None, "2": None}
    plan = w.run().plans["invoices"]
    (product,) = w.ssm_by_ext("products", "A1")
    assert [(o.entity, o.kind, o.rule, o.key, o.fields) for o in plan.ops] == [
        ("invoice_lines", "ssm_update", "I1", "1", {"productId": product["id"]})
    ]
    assert {r["extId"]: r["productId"] for r in w.ssm.live("salesordersLines")} == {
        "1": product["id"],
        "2": None,
    }
    assert w.run().planned_ops == 0
