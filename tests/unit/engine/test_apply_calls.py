"""The load prepares each bulk call just before it sends it (G5, G6, D1).

Seen at the transport: when a call is sent, only the value-list entries of that call's items and the calls before
it have been asked for; a call that fails fails its own items only; an op whose reference is unknown fails alone;
outcomes come back in plan order.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sage_sync.engine.apply import apply_plan
from sage_sync.engine.plan import Op, Plan
from sage_sync.engine.sides import ItemOutcome
from tests.support.memory import Fault, InMemorySage, InMemorySsm

PRODUCTS = 250  # three calls: products go 100 per bulk call


class FamiliesAtEachCall(InMemorySsm):
    """The in-memory tenant, noting how many product families exist when each create call arrives."""

    def __init__(self) -> None:
        super().__init__()
        self.families_at_call: list[int] = []

    def bulk_create(self, endpoint: str, items: list[dict[str, Any]]) -> list[ItemOutcome]:
        self.families_at_call.append(len(self.lists.product_families))
        return super().bulk_create(endpoint, items)


def _plan() -> Plan:
    plan = Plan("products")
    for n in range(PRODUCTS):
        ref = f"A{n:04d}"
        plan.ops.append(
            Op(
                "ssm_create",
                "products",
                ref,
                "D1",
                "new article",
                fields={"extId": ref, "model": ref},
                refs={"familyId": ["productFamilies", f"Famille {n:04d}"]},
            )
        )
    plan.ops[30].refs = {"familyId": ["accounts", "NOT-BOUND"]}  # a reference no one can resolve
    return plan


def test_d1_g6_each_call_resolves_only_its_own_items_before_it_is_sent() -> None:
    ssm = FamiliesAtEachCall()
    before = len(ssm.lists.product_families)
    result = apply_plan(_plan(), InMemorySage(), ssm)
    # The first call holds the first 100 ops that could be sent (op 30's reference is unknown, so it has no family):
    # 100 families then, 200 for the second call, 249 for the last.
    assert [n - before for n in ssm.families_at_call] == [100, 200, 249]
    assert [o.key for o in result.outcomes] == [f"A{n:04d}" for n in range(PRODUCTS)]
    assert [o.ok for o in result.outcomes].count(False) == 1
    assert "reference not resolved" in str(result.outcomes[30].error)
    assert result.api_calls == 3 + 249  # three bulk calls, one value-list call per new family


def test_g5_a_failed_call_fails_its_own_items_and_the_others_are_written_once() -> None:
    ssm = InMemorySsm()
    ssm.faults.armed.append(Fault("raise", "create", "products", calls_left=1))  # the second call
    result = apply_plan(_plan(), InMemorySage(), ssm)
    failed = [n for n, o in enumerate(result.outcomes) if not o.ok]
    # Calls are full: the first holds the first 100 ops that could be sent (op 30 could not), the second the next 100.
    assert failed == [30, *range(101, 201)]
    assert all("TransportError" in str(result.outcomes[n].error) for n in range(101, 201))
    live = {r["extId"]: r["id"] for r in ssm.live("products")}
    assert sorted(live) == sorted(o.key for o in result.outcomes if o.ok)
    assert len(live) == PRODUCTS - 101
    assert all(live[o.key] == o.id for o in result.outcomes if o.ok)


def _invoices(order: int, line: int) -> Plan:
    """Sales orders and their lines interleaved as the invoices' planner makes them, an update and a delete."""
    plan = Plan("invoices")
    plan.ops.append(Op("ssm_delete", "invoice_lines", "00", "I2", "line gone", ssm_id=line))
    plan.ops.append(Op("ssm_update", "invoices", "F0", "I1", "posted", ssm_id=order, fields={"statusId": 2}))
    # A new line of an invoice an earlier run synced, planned before this run's invoices.
    plan.ops.append(
        Op("ssm_create", "invoice_lines", "01", "I1", "new line", fields={"extId": "01"},
           refs={"salesOrderId": ["invoices", "F0"]})
    )  # fmt: skip
    for n in range(1, 4):
        piece = f"F{n}"
        plan.ops.append(Op("ssm_create", "invoices", piece, "I1", "new invoice", fields={"extId": piece}))
        for m in range(1, 3):
            plan.ops.append(
                Op(
                    "ssm_create",
                    "invoice_lines",
                    f"{n}{m}",
                    "I1",
                    "new line",
                    fields={"extId": f"{n}{m}", "quantity": m},
                    refs={"salesOrderId": ["invoices", piece]},
                )
            )
    # A line of an invoice no run synced.
    plan.ops.append(
        Op("ssm_create", "invoice_lines", "99", "I1", "new line", fields={"extId": "99"},
           refs={"salesOrderId": ["invoices", "F404"]})
    )  # fmt: skip
    return plan


def test_i1_g5_the_staged_plan_applies_a_group_at_a_time_as_the_plan_in_memory_does(tmp_path: Path) -> None:
    """The load step reads the staged ops one group at a time (ADR 0018, decision 37): same calls, same outcomes.

    References to records of an earlier run are looked up in the state only when a key is not one this load
    created, once per entity, and an id this load created wins over a stale one.
    """
    from sage_sync.engine.apply import apply_ops
    from sage_sync.engine.staging import Staging

    in_memory, staged = InMemorySsm(), InMemorySsm()
    for tenant in (in_memory, staged):  # an earlier run's sales order and line, with the same ids in both
        bound, line = (
            tenant.user_create("salesorders", {"extId": "F0"}),
            tenant.user_create("salesordersLines", {}),
        )
    expected = apply_plan(_invoices(bound, line), InMemorySage(), in_memory, {"invoices|F0": bound})
    staging = Staging(tmp_path / "run")
    staging.write_plan("invoices", _invoices(bound, line))
    asked: list[str] = []

    def ids_of(entity: str) -> dict[str, int]:
        asked.append(entity)
        return {"F0": bound, "F1": 999_999}  # F1's binding is stale: this load creates F1 again

    with staging.staged_ops("invoices") as ops:
        assert len(ops) == 13
        assert ops.groups() == [
            ("ssm_delete", "invoice_lines"),
            ("ssm_update", "invoices"),
            ("ssm_create", "invoice_lines"),
            ("ssm_create", "invoices"),
        ]
        assert [p for p, _ in ops.select("ssm_create", "invoices")] == [3, 6, 9]
        spool = Path(ops._spool.name if ops._spool else "")
        assert len(list(spool.iterdir())) == 4  # one spool file per group
        result = apply_ops("invoices", ops, InMemorySage(), staged, ids_of=ids_of)
    assert not spool.exists()  # the spool files go with the block

    assert asked == ["invoices"]  # read once: line 01 (sent first) names an invoice this load did not create
    assert [(o.kind, o.entity, o.key, o.ok, o.id, o.error) for o in result.outcomes] == [
        (o.kind, o.entity, o.key, o.ok, o.id, o.error) for o in expected.outcomes
    ]
    assert result.api_calls == expected.api_calls == 4  # each group in one call, the sales orders first
    assert "reference not resolved" in str(result.outcomes[-1].error)
    lines = {r["extId"]: r["salesOrderId"] for r in staged.live("salesordersLines")}
    orders = {r["extId"]: r["id"] for r in staged.live("salesorders")}
    assert lines == {"11": orders["F1"], "12": orders["F1"], "21": orders["F2"], "22": orders["F2"],
                     "31": orders["F3"], "32": orders["F3"], "01": bound}  # fmt: skip
    assert lines == {r["extId"]: r["salesOrderId"] for r in in_memory.live("salesordersLines")}
    assert [r.get("statusId") for r in staged.live("salesorders") if r["extId"] == "F0"] == [2]
