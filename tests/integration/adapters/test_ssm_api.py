"""``SsmApiSide`` against the real SSM simulator over HTTP.

Per-item outcomes in bulk calls of the API's size, value lists read once, incremental listing by ``dateUpdated``
with deleted records, batched look-ups, product pictures replaced (never piled up), and call counts.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from sage_sync.adapters.ssm_api import SsmApiSide
from sage_sync.engine.own_creates import CreatedRange, OwnCreates, just_after
from sage_sync.hooks.ssm import SalesManagementHook
from tests.support.simulator import SimulatorHandle, ssm_simulator  # noqa: F401


@pytest.fixture
def sim(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> SimulatorHandle:
    """A freshly reset simulator; ``ssm_default`` points at it with the integration key and no rate limit."""
    handle: SimulatorHandle = request.getfixturevalue("ssm_simulator")
    key = handle.keys["integration"]
    conn = {"conn_type": "http", "host": handle.base_url, "login": key["public_key"],
            "password": key["private_key"], "extra": {"requests_per_second": 0}}  # fmt: skip
    monkeypatch.setenv("AIRFLOW_CONN_SSM_DEFAULT", json.dumps(conn))
    return handle


@pytest.fixture
def side(sim: SimulatorHandle) -> Iterator[SsmApiSide]:
    """The adapter under test, on a fresh hook."""
    hook = SalesManagementHook()
    yield SsmApiSide(hook)
    hook.close()


def _routes(sim: SimulatorHandle) -> dict[str, int]:
    """Calls per route since the last stats reset, the session's login aside."""
    return {k: v for k, v in sim.stats()["by_route"].items() if k != "POST /api/v4/login"}


def _accounts(n: int, prefix: str = "C") -> list[dict[str, Any]]:
    return [
        {"name": f"Société {i}", "branchId": 1, "salesRepId1": 1, "extId": f"{prefix}{i:05d}"}
        for i in range(n)
    ]


def test_value_lists_are_read_once_per_adapter(side: SsmApiSide, sim: SimulatorHandle) -> None:
    """The engine's labels are the French ones; a second call costs no API call."""
    lists = side.value_lists()
    assert {"Client", "Prospect"} <= set(lists.account_statuses)
    assert {"Facture", "Avoir"} <= set(lists.salesorder_statuses)
    assert "Divers" in lists.product_families
    assert any(c["descriptionFR"] == "France" and c["iso2"] == "FR" for c in lists.countries)
    users = {u["id"]: u for u in sim.keys["users"]}
    assert {i: (u["name"], u["lastName"]) for i, u in lists.users.items()} == {
        int(i): (u["name"], u["lastName"]) for i, u in users.items()
    }
    calls = side.api_calls()
    lists.account_statuses.clear()  # the engine may mutate its copy; the cache stays intact
    assert side.value_lists().account_statuses and side.api_calls() == calls


def test_bulk_writes_give_one_outcome_per_item_in_api_sized_chunks(
    side: SsmApiSide, sim: SimulatorHandle
) -> None:
    """G3/G6: 250 creates go in two bulk calls (200 max); a refused item does not block the others."""
    items = _accounts(250)
    items[7] = {"name": "Sans commercial", "branchId": 1, "extId": "BAD"}  # salesRepId1 is required
    sim.reset_stats()
    outcomes = side.bulk_create("accounts", items)
    assert _routes(sim) == {"POST /api/v4/accounts/bulk": 2}
    assert [o.ok for o in outcomes].count(False) == 1 and not outcomes[7].ok
    assert "salesRepId1" in str(outcomes[7].error)
    assert len({o.id for o in outcomes if o.ok}) == 249

    ids = [int(o.id) for o in outcomes if o.ok and o.id is not None]
    updates = [(ids[0], {"city": "Lyon"}), (999_999, {"city": "Nulle part"}), (ids[1], {"city": "Paris"})]
    result = side.bulk_update("accounts", updates)
    assert [o.ok for o in result] == [True, False, True]
    assert "999999" in str(result[1].error)

    deleted = side.soft_delete("accounts", [ids[2], 999_998])
    assert [o.ok for o in deleted] == [True, False]
    assert "910" in str(deleted[1].error)
    assert side.get_by_ids("accounts", [ids[2]])[0]["deleted"] is True
    products = [{"model": f"Article {i}", "extId": f"A{i:04d}"} for i in range(150)]
    sim.reset_stats()
    assert all(o.ok for o in side.bulk_create("products", products))
    assert _routes(sim) == {"POST /api/v4/products/bulk": 2}, "products: 100 per bulk call"


def test_c1_creates_in_flight_together_give_each_op_its_own_record(sim: SimulatorHandle) -> None:
    """G5/C1: 850 account creates in five bulk calls, three in flight at once; a refused item fails alone.

    Every op's outcome names the record made from its own item (its ``extId``), in plan order, each created once.
    """
    from sage_sync.engine.apply import apply_plan
    from sage_sync.engine.plan import Op, Plan
    from tests.support.memory import InMemorySage

    hook = SalesManagementHook(parallel_calls=3)
    side = SsmApiSide(hook)
    assert side.parallel_calls() == 3
    plan = Plan("accounts")
    for item in _accounts(850, prefix="P"):
        plan.ops.append(Op("ssm_create", "accounts", item["extId"], "C1", "new", fields=item))
    plan.ops[400].fields = {"name": "Sans commercial", "branchId": 1, "extId": "P00400"}  # refused by the API
    sim.reset_stats()
    result = apply_plan(plan, InMemorySage(), side)
    hook.close()
    assert _routes(sim) == {"POST /api/v4/accounts/bulk": 5}
    assert [o.key for o in result.outcomes] == [op.key for op in plan.ops]
    assert [o.ok for o in result.outcomes].count(False) == 1 and not result.outcomes[400].ok
    created = {int(r["id"]): r["extId"] for r in SalesManagementHook().iter_records("accounts")}
    assert len(created) == 849 and len(set(created.values())) == 849  # nothing created twice
    assert all(created[int(o.id or 0)] == o.key for o in result.outcomes if o.ok)


def test_parallel_calls_is_a_checked_connection_setting(sim: SimulatorHandle) -> None:
    """The default keeps four bulk writes in flight; zero or more than eight is a clear configuration error."""
    from sage_sync.errors import ConfigurationError

    assert SalesManagementHook().settings.parallel_calls == 4
    for bad in (0, 9):
        with pytest.raises(ConfigurationError, match="parallel_calls must be at least 1 and at most 8"):
            _ = SalesManagementHook(parallel_calls=bad).settings


def test_listing_is_incremental_by_date_updated_and_keeps_deleted_records(
    side: SsmApiSide, sim: SimulatorHandle
) -> None:
    """The SSM read of a two-way entity: records changed at or after the watermark, deletions included."""
    ids = [int(o.id) for o in side.bulk_create("accounts", _accounts(5)) if o.id is not None]
    everything = side.list_changed("accounts", None)
    assert {r["id"] for r in everything} == set(ids)
    watermark = max(r["dateUpdated"] for r in everything)
    sim.clock(5)  # later writes carry a later server time
    side.bulk_update("accounts", [(ids[0], {"city": "Rennes"})])
    side.soft_delete("accounts", [ids[1]])
    changed = {r["id"]: r for r in side.list_changed("accounts", watermark.replace("Z", "+00:00"))}
    assert set(changed) >= {ids[0], ids[1]}
    assert changed[ids[1]]["deleted"] is True and changed[ids[0]]["city"] == "Rennes"
    later = {r["id"] for r in side.list_changed("accounts", changed[ids[1]]["dateUpdated"])}
    assert ids[1] in later and ids[2] not in later
    with pytest.raises(ValueError, match="ISO-8601"):
        side.list_changed("accounts", "yesterday")


def test_g2_the_read_skips_our_unchanged_creates_and_keeps_every_later_edit(
    side: SsmApiSide, sim: SimulatorHandle
) -> None:
    """The ``where`` of :class:`OwnCreates` is the API's: it leaves out exactly what ``skips`` leaves out.

    Of six accounts we created, the one a user edited and the two our own key changed later (as a later run or an
    administrator would: C2, C3) are read, and so is a user's new account; the three untouched ones are not.
    """
    ids = [int(o.id) for o in side.bulk_create("accounts", _accounts(6)) if o.id is not None]
    first, last = (side.get_by_ids("accounts", [i])[0] for i in (ids[0], ids[-1]))
    us = int(first["salesRepIdCreated"])
    own = OwnCreates(us, (CreatedRange(ids[0], ids[-1], just_after(last["dateCreated"])),))
    user = requests.Session()
    user.headers["X-Session-Key"] = sim.login("user")
    try:
        sim.clock(5)
        edited = user.put(f"{sim.base_url}/accounts/{ids[1]}", json={"city": "Vannes"}, timeout=30)
        assert edited.status_code == 200, edited.text
        made = user.post(
            f"{sim.base_url}/accounts", json={"name": "Bar", "branchId": 1, "salesRepId1": 1}, timeout=30
        )
        theirs = int(made.json()["id"])
    finally:
        user.close()
    side.bulk_update("accounts", [(ids[2], {"city": "Brest"})])
    side.soft_delete("accounts", [ids[3]])
    listed = side.list_changed("accounts", None, own)
    assert {r["id"] for r in listed} == {ids[1], ids[2], ids[3], theirs}
    everything = side.list_changed("accounts", None)
    assert {r["id"] for r in everything if not own.skips(r)} == {r["id"] for r in listed}
    since = min(r["dateUpdated"] for r in listed)
    assert {r["id"] for r in side.list_changed("accounts", since, own)} == {ids[1], ids[2], ids[3], theirs}
    with pytest.raises(ValueError, match="until"):
        OwnCreates(us, (CreatedRange(ids[0], ids[-1]),))


def test_lookups_by_id_and_ext_id_are_batched(side: SsmApiSide, sim: SimulatorHandle) -> None:
    """``get_by_ids`` keeps deleted records and leaves unknown ids out; ``find_by_ext_ids`` returns live records
    only (C1 adoption); both split long lists into several calls that fit a URL."""
    outcomes = side.bulk_create("accounts", _accounts(400))
    ids = [int(o.id) for o in outcomes if o.id is not None]
    side.soft_delete("accounts", [ids[0]])
    sim.reset_stats()
    found = side.get_by_ids("accounts", [*ids, 888_888])
    assert sorted(r["id"] for r in found) == sorted(ids)
    assert _routes(sim)["GET /api/v4/accounts"] > 1
    by_ext = side.find_by_ext_ids("accounts", [f"C{i:05d}" for i in range(400)] + ["UNKNOWN"])
    assert sorted(r["extId"] for r in by_ext) == [f"C{i:05d}" for i in range(1, 400)]


def test_product_families_are_created_once(side: SsmApiSide, sim: SimulatorHandle) -> None:
    """An article's family that SSM lacks is created once and then served from the adapter's lists."""
    divers = side.value_lists().product_families["Divers"]
    sim.reset_stats()
    assert side.ensure_product_family("Divers") == divers
    created = side.ensure_product_family("Vins & Spiritueux")
    assert side.ensure_product_family("Vins & Spiritueux") == created
    assert _routes(sim) == {"POST /api/v4/productFamilies": 1}
    assert side.value_lists().product_families["Vins & Spiritueux"] == created


def test_product_picture_is_replaced_never_piled_up(side: SsmApiSide, sim: SimulatorHandle) -> None:
    """D3: a new picture replaces the carrousel one; the same bytes again (a run that crashed before its commit)
    do not upload twice."""
    (product,) = side.bulk_create("products", [{"model": "Cafetière", "extId": "CAF1"}])
    pid = int(product.id or 0)
    session = requests.Session()
    session.headers["X-Session-Key"] = sim.login()

    def documents() -> list[dict[str, Any]]:
        response = session.get(f"{sim.base_url}/products/{pid}/documents", timeout=30)
        response.raise_for_status()
        return list(response.json())

    side.upload_product_picture(pid, "cafetiere.png", b"first picture")
    first = documents()
    assert [(d["name"], d["isCarrousel"], d["size"]) for d in first] == [("cafetiere.png", True, 13)]
    side.upload_product_picture(pid, "cafetiere.png", b"second picture!")
    second = documents()
    assert [(d["size"], d["id"] != first[0]["id"]) for d in second] == [(15, True)]
    sim.reset_stats()
    side.upload_product_picture(pid, "cafetiere.png", b"second picture!")
    assert documents() == second
    assert "POST /api/v4/products/{id}/documents" not in _routes(sim)
    session.close()


def test_api_calls_count_every_call_of_the_hook(side: SsmApiSide, sim: SimulatorHandle) -> None:
    """G7: the ledger's API calls are the hook's own count (login included), matching what the server saw."""
    sim.reset_stats()
    side.value_lists()
    side.list_changed("accounts", None)
    assert side.api_calls() == side.hook.calls.total == sim.stats()["total"]
