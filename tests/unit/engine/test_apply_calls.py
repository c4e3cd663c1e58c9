"""The load prepares each bulk call just before it sends it (G5, G6, D1).

Seen at the transport: when a call is sent, only the value-list entries of that call's items and the calls before
it have been asked for; a call that fails fails its own items only; an op whose reference is unknown fails alone;
outcomes come back in plan order.
"""

from __future__ import annotations

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
