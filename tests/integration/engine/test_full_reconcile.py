"""Full reconcile on the REAL systems through the engine: a generated SQLite dossier read through the SQLite3 ODBC
driver and the SSM simulator over HTTP, with the adapters between them and :func:`run_once`.

Drift is made directly in SSM with the integration key (which may modify read-only records), as an administrator
would. The simulator's own statistics (``/__sim/stats``) prove which records were written.
"""

from __future__ import annotations

from typing import Any

from sage_sync.adapters.sage_odbc import SageOdbcSide
from sage_sync.adapters.ssm_api import SsmApiSide
from sage_sync.engine.pipeline import RunResult, run_once
from sage_sync.hooks.sage50 import Sage50Hook
from sage_sync.hooks.ssm import SalesManagementHook
from tests.integration.engine.test_real_systems import (
    RealWorld,
    assert_invoices,
    assert_nothing_failed,
    assert_products,
    ref_id,
    sqlite_world,  # noqa: F401
)
from tests.support.simulator import ssm_simulator  # noqa: F401


def full_reconcile(world: RealWorld) -> RunResult:
    """One cycle in full-reconcile mode, with fresh adapters as a triggered DAG run would have."""
    sage = SageOdbcSide(Sage50Hook(), media_folder=world.media)
    ssm = SsmApiSide(SalesManagementHook(**world.ssm_hook_options))
    return run_once(sage, ssm, world.state, world.config, full_reconcile=True)


def drift(world: RealWorld, entity: str, ident: int, data: dict[str, Any]) -> None:
    """An administrator's edit of a read-only record with the integration key."""
    response = world.api.update(entity, ident, data)
    assert response.status_code == 200, response.text


def test_d1_i1_i5_g6_full_reconcile_repairs_ssm_drift_and_writes_nothing_else(
    sqlite_world: RealWorld,  # noqa: F811 - the imported fixture
) -> None:
    """D1 (product price), I5/I1 (sales order total, line quantity, a line soft-deleted in SSM) and G6.

    After the initial load, drift is made in SSM on read-only records. An incremental run does not see it (it
    compares Sage with the last snapshot) and writes nothing. A full reconcile compares both live sides: it writes
    exactly the four drifted records (the deleted line is re-created: the API cannot restore it, ADR 0010) with
    reasons that say it is drift, and leaves every other record alone. The next full reconcile writes nothing.
    """
    world = sqlite_world
    assert_nothing_failed(world, world.run())

    products = world.api.by_ext("products")
    product = next(p for ref, p in sorted(products.items()) if p.get("price"))
    orders = sorted(world.api.by_ext("salesorders").items())
    lines_of: dict[int, list[dict[str, Any]]] = {}
    for line in world.api.live("salesordersLines"):
        lines_of.setdefault(int(ref_id(line["salesOrderId"]) or 0), []).append(line)
    with_lines = [(piece, o) for piece, o in orders if lines_of.get(int(o["id"]))]
    (total_piece, total_order), (qty_piece, qty_order), (gone_piece, gone_order) = with_lines[:3]
    qty_line = min(lines_of[int(qty_order["id"])], key=lambda r: int(r["id"]))
    gone_line = min(lines_of[int(gone_order["id"])], key=lambda r: int(r["id"]))

    drifted_price = round(float(product["price"]) + 7.5, 2)
    drift(world, "products", int(product["id"]), {"price": drifted_price})
    drift(world, "salesorders", int(total_order["id"]), {"total": 1.23})
    drift(world, "salesordersLines", int(qty_line["id"]), {"quantity": int(qty_line["quantity"]) + 3})
    assert world.api.call("DELETE", f"salesordersLines/{gone_line['id']}").status_code == 200

    # An incremental run compares Sage with the last snapshot: the drift stays (that is what full reconcile is for).
    world.sim.reset_stats()
    quiet = world.run()
    assert world.sim.stats()["writes"] == 0 and quiet.planned_ops == 0, quiet.render()
    assert world.api.get("products", int(product["id"]))["price"] == drifted_price

    world.sim.reset_stats()
    result = full_reconcile(world)
    stats = world.sim.stats()
    assert_nothing_failed(world, result)
    ops = {(o.entity, o.kind, o.key): o for plan in result.plans.values() for o in plan.ops}
    assert set(ops) == {
        ("products", "ssm_update", product["extId"]),
        ("invoices", "ssm_update", total_piece),
        ("invoice_lines", "ssm_update", str(qty_line["extId"])),
        ("invoice_lines", "ssm_create", str(gone_line["extId"])),
    }, result.render()
    assert f"drift in SSM: price {drifted_price} -> {product['price']}" in str(
        ops[("products", "ssm_update", product["extId"])].reason
    )
    assert "drift in SSM: total 1.23 -> " in ops[("invoices", "ssm_update", total_piece)].reason
    assert "was deleted in SSM" in ops[("invoice_lines", "ssm_create", str(gone_line["extId"]))].reason
    assert ops[("products", "ssm_update", product["extId"])].fields == {"price": product["price"]}
    assert ops[("invoice_lines", "ssm_update", str(qty_line["extId"]))].fields == {
        "quantity": qty_line["quantity"]
    }
    # G6: four records written, in one bulk call each; nothing else in SSM was touched.
    assert stats["records_written"] == 4, stats["by_route"]
    assert stats["writes"] == 4, stats["by_route"]
    assert all(not dups for dups in stats["duplicate_ext_ids"].values()), stats["duplicate_ext_ids"]

    # SSM is repaired, read back through its API.
    assert world.api.get("products", int(product["id"]))["price"] == product["price"]
    repaired = world.api.get("salesorders", int(total_order["id"]))
    assert repaired["total"] == total_order["total"] and repaired["Z_Synced"] is True
    assert world.api.get("salesordersLines", int(qty_line["id"]))["quantity"] == qty_line["quantity"]
    assert world.api.get("salesordersLines", int(gone_line["id"]))["deleted"] is True
    (new_line,) = [r for r in world.api.live("salesordersLines") if r["extId"] == gone_line["extId"]]
    assert ref_id(new_line["salesOrderId"]) == int(gone_order["id"]) and new_line["id"] != gone_line["id"]
    assert (new_line["quantity"], new_line["price"]) == (gone_line["quantity"], gone_line["price"])
    assert_products(world)
    assert_invoices(world)

    world.sim.reset_stats()
    again = full_reconcile(world)
    assert world.sim.stats()["writes"] == 0 and again.planned_ops == 0, again.render()
