"""Record semantics and runtime controls of the SSM simulator, without HTTP (contracts/SSM-API.md)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from sage_sync.simulators.ssm.records import ApiError, Clock, Records
from sage_sync.simulators.ssm.runtime import Faults, RateLimiter
from sage_sync.simulators.ssm.seed import derive_keys, seed_tenant
from sage_sync.simulators.ssm.store import Store

ISO_MS_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


@pytest.fixture
def records(tmp_path: Path) -> Records:
    store = Store(tmp_path / "t.sqlite")
    clock = Clock()
    seed_tenant(store, clock.stamp())
    return Records(store, clock)


def list_page(
    records: Records, entity: str, page: int, size: int, where: str | None, order: str | None
) -> Any:
    """One page of a list call as the API answers it (the served JSON text, parsed)."""
    return [json.loads(item) for item in records.list_page_json(entity, page, size, where, order)]


def _account(**extra: object) -> dict[str, object]:
    return {"name": "Dupont SARL", "branchId": 1, "salesRepId1": 1, **extra}


def test_clock_stamps_are_iso_ms_z_and_strictly_increasing() -> None:
    """dateUpdated changes on every accepted write, even within one millisecond."""
    clock = Clock()
    stamps = [clock.stamp() for _ in range(50)]
    assert all(ISO_MS_Z.match(s) for s in stamps)
    assert stamps == sorted(stamps) and len(set(stamps)) == 50
    clock.set_offset(-86400)
    assert clock.stamp() < stamps[0]


def test_create_requires_contract_fields_and_reports_the_field(records: Records) -> None:
    with pytest.raises(ApiError) as err:
        records.create("accounts", {"name": "x", "branchId": 1}, 1)
    assert err.value.status == 400 and "salesRepId1" in err.value.message
    with pytest.raises(ApiError) as err:
        records.create("salesordersLines", {"salesOrderId": 1, "quantity": 1, "price": 1.0}, 1)
    assert err.value.status == 400  # salesOrderId 1 does not exist yet, or productId missing


def test_lines_accept_a_null_product_but_require_the_key(records: Records) -> None:
    oid = records.create("salesorders", {"reference": "FA0001", "branchId": 1, "salesRepId": 1}, 1)
    with pytest.raises(ApiError, match="productId"):
        records.create("salesordersLines", {"salesOrderId": oid, "quantity": 1, "price": 2.5}, 1)
    lid = records.create(
        "salesordersLines", {"salesOrderId": oid, "productId": None, "quantity": 1, "price": 2.5}, 1
    )
    assert records.get("salesordersLines", lid)["productId"] is None


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        ({"statusId": 999}, "accountStatuses 999 does not exist"),
        ({"Z_Unknown": "x"}, "'Z_Unknown' is not declared"),
        ({"colour": "red"}, "unknown field 'colour'"),
        ({"dateUpdated": "2026-01-01T00:00:00Z"}, "'dateUpdated' is read-only"),
        ({"name": 5}, "must be text"),
        ({"branchId": "1"}, "must be an integer"),
        ({"readOnly": "yes"}, "true or false"),
    ],
)
def test_invalid_writes_name_entity_and_field(records: Records, data: dict[str, object], needle: str) -> None:
    with pytest.raises(ApiError) as err:
        records.create("accounts", _account(**data), 1)
    assert err.value.status == 400
    assert needle in err.value.message and err.value.message.startswith("accounts")


@pytest.mark.parametrize("value", [float("inf"), float("-inf"), float("nan")])
def test_decimal_fields_refuse_non_finite_numbers(records: Records, value: float) -> None:
    """NaN/Infinity stored would make every later answer invalid JSON; refused naming the field."""
    with pytest.raises(ApiError) as err:
        records.create("products", {"model": "M", "price": value}, 1)
    assert err.value.status == 400 and "products: field 'price' must be a finite number" in err.value.message
    assert records.create("products", {"model": "M", "price": 1e308}, 1) == 1


def test_product_ext_id_is_limited_to_30_characters(records: Records) -> None:
    with pytest.raises(ApiError, match="limit is 30"):
        records.create("products", {"model": "M", "extId": "A" * 31}, 1)
    assert records.create("products", {"model": "M", "extId": "A" * 30}, 1) == 1


def test_partial_update_soft_delete_and_read_only(records: Records) -> None:
    rid = records.create("accounts", _account(readOnly=True, city="Paris", Z_Siret="123"), 1)
    before = dict(records.get("accounts", rid))
    with pytest.raises(ApiError) as err:
        records.update("accounts", rid, {"city": "Lyon"}, 2, integration=False)
    assert err.value.status == 403
    records.update("accounts", rid, {"city": "Lyon"}, 1, integration=True)
    after = records.get("accounts", rid)
    assert after["city"] == "Lyon" and after["Z_Siret"] == "123" and after["name"] == before["name"]
    assert after["dateUpdated"] > before["dateUpdated"]
    records.delete("accounts", rid, 1, integration=True)
    deleted = records.get("accounts", rid)
    assert deleted["deleted"] is True and deleted["dateDeleted"] and deleted["salesRepIdDeleted"] == 1
    assert list_page(records, "accounts", 0, 50, None, None)[0]["deleted"] is True


def test_unknown_id_is_400_code_910(records: Records) -> None:
    with pytest.raises(ApiError) as err:
        records.get("accounts", 42)
    assert (err.value.status, err.value.code) == (400, 910)


def test_serialise_turns_foreign_keys_into_lookups(records: Records) -> None:
    aid = records.create("accounts", _account(statusId=2, countryId=1), 1)
    out = records.serialise("accounts", records.get("accounts", aid))
    assert out["statusId"] == {"id": 2, "value": "Prospect"}
    assert out["countryId"] == {"id": 1, "value": "France"}
    assert out["typeId"] is None
    user = records.serialise("users", records.get("users", 2))
    assert user["userTypeId"] == {"id": 2, "description": "Commercial"}


def test_order_sorts_descending_with_ties_by_id_descending(records: Records) -> None:
    for city in ("B", "A", "B", None):
        records.create("accounts", _account(city=city), 1)
    page = list_page(records, "accounts", 0, 50, None, "city")
    assert [(r["id"], r["city"]) for r in page] == [(3, "B"), (1, "B"), (2, "A"), (4, None)]
    assert [r["id"] for r in list_page(records, "accounts", 0, 50, None, None)] == [1, 2, 3, 4]


def test_keys_are_deterministic_per_seed() -> None:
    assert derive_keys(0) == derive_keys(0)
    assert derive_keys(0) != derive_keys(1)
    integration, user = derive_keys(0)
    assert integration.integration and not user.integration and integration.user_id != user.user_id


def test_rate_limiter_refuses_beyond_the_burst_and_tells_how_long_to_wait() -> None:
    limiter = RateLimiter(2.0)
    assert limiter.acquire("k") == 0 and limiter.acquire("k") == 0
    wait = limiter.acquire("k")
    assert 0 < wait <= 0.5
    assert limiter.acquire("other") == 0  # buckets are per key
    assert RateLimiter(0).acquire("k") == 0  # 0 = unlimited


def test_faults_are_seeded_merged_and_fail_after_counts_down() -> None:
    faults = Faults()
    faults.merge({"p503": 1.0})
    assert faults.decide() == "503"
    faults.merge({"p503": 0.0, "fail_after": 2})
    assert [faults.decide() for _ in range(4)] == [None, None, "503", "503"]
    with pytest.raises(ValueError, match="p429"):
        faults.merge({"p429": 2})
    with pytest.raises(ValueError, match="unknown"):
        faults.merge({"pboom": 0.1})
    a, b = Faults(), Faults()
    a.merge({"p500": 0.5, "seed": 7})
    b.merge({"p500": 0.5, "seed": 7})
    assert [a.decide() for _ in range(20)] == [b.decide() for _ in range(20)]
    after = Faults()
    after.merge({"pdrop_after": 1.0})
    assert after.decide() == "drop_after" and after.to_json()["pdrop_after"] == 1.0
    with pytest.raises(ValueError, match="pdrop_after"):
        after.merge({"pdrop_after": float("nan")})


def test_store_persists_records_across_reopen(tmp_path: Path) -> None:
    store = Store(tmp_path / "p.sqlite")
    clock = Clock()
    seed_tenant(store, clock.stamp())
    recs = Records(store, clock)
    rid = recs.create("accounts", _account(extId="C1"), 1)
    store.commit()
    store.close()
    again = Store(tmp_path / "p.sqlite")
    assert again.tables["accounts"][rid]["extId"] == "C1"
    assert again.new_id("accounts") == rid + 1
