"""The SSM API v4 simulator over real HTTP (contracts/SSM-API.md): auth, lists, writes, bulk, faults, stats."""

from __future__ import annotations

import hashlib
import re
from typing import Any

import pytest
import requests

from tests.support.simulator import SimulatorHandle, ssm_simulator  # noqa: F401


@pytest.fixture
def sim(ssm_simulator: SimulatorHandle) -> SimulatorHandle:  # noqa: F811 - the shared fixture, under a short name
    return ssm_simulator


ISO_MS_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


class Api:
    """A minimal client: login with one of the seeded keys, then JSON calls with X-Session-Key."""

    def __init__(self, sim: SimulatorHandle, which: str = "integration") -> None:
        self.sim = sim
        self.http = requests.Session()
        self.http.headers["X-Session-Key"] = sim.login(which)

    def call(self, method: str, path: str, *, json: Any = None, **kw: Any) -> requests.Response:
        return self.http.request(
            method, f"{self.sim.base_url}/{path.lstrip('/')}", json=json, timeout=30, **kw
        )

    def ok(self, method: str, path: str, *, json: Any = None, **kw: Any) -> Any:
        response = self.call(method, path, json=json, **kw)
        assert response.status_code == 200, response.text
        return response.json()

    def page(self, entity: str, page: int, size: int | None = None, **params: str) -> list[dict[str, Any]]:
        headers = {"Count": str(size)} if size else {}
        return list(self.ok("GET", entity, params={"page": page, **params}, headers=headers))


def account(name: str = "Dupont SARL", **extra: Any) -> dict[str, Any]:
    return {"name": name, "branchId": 1, "salesRepId1": 1, **extra}


def assert_error(response: requests.Response, status: int, code: int | None = None) -> str:
    """Every error carries {"statusCode", "code", "message"} (contract "Transport")."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["statusCode"] == status and body["code"] == code and body["message"]
    return str(body["message"])


def test_login_and_session_key_rules(sim: SimulatorHandle) -> None:
    """Wrong keys → 401; missing/unknown/expired X-Session-Key → 401; a new login works again."""
    bad = requests.post(
        f"{sim.base_url}/login", json={"username": sim.keys["integration"]["public_key"], "password": "x"}
    )
    assert_error(bad, 401)
    assert_error(requests.get(f"{sim.base_url}/accounts"), 401)
    assert_error(requests.get(f"{sim.base_url}/accounts", headers={"X-Session-Key": "forged"}), 401)
    api = Api(sim)
    assert api.ok("GET", "accounts") == []
    sim.token_ttl(0)  # applies to existing tokens: this one is now expired
    assert_error(api.call("GET", "accounts"), 401)
    sim.token_ttl(3600)
    assert Api(sim).ok("GET", "accounts") == []


def test_paging_boundaries_and_page_size_headers(sim: SimulatorHandle) -> None:
    """0, 1, exactly one page and one page + 1 records; Count / X-FM-Entity-Count, default 50, max 1000."""
    api = Api(sim)
    assert api.page("accounts", 0, 5) == []
    api.ok("POST", "accounts", json=account("A1"))
    assert [r["name"] for r in api.page("accounts", 0, 5)] == ["A1"]
    assert api.page("accounts", 1, 5) == []
    for i in range(2, 6):
        api.ok("POST", "accounts", json=account(f"A{i}"))
    assert len(api.page("accounts", 0, 5)) == 5 and api.page("accounts", 1, 5) == []
    api.ok("POST", "accounts", json=account("A6"))
    first, second = api.page("accounts", 0, 5), api.page("accounts", 1, 5)
    assert [r["id"] for r in first + second] == [1, 2, 3, 4, 5, 6]  # default order: id ascending
    lower = api.ok("GET", "accounts", params={"page": 1}, headers={"x-fm-entity-count": "4"})
    assert [r["id"] for r in lower] == [5, 6]
    for i in range(7, 56):
        api.ok("POST", "accounts", json=account(f"A{i}"))
    assert len(api.page("accounts", 0)) == 50  # default page size
    assert_error(api.call("GET", "accounts", headers={"Count": "1001"}), 400)
    assert_error(api.call("GET", "accounts", params={"page": "-1"}), 400)
    newest = api.ok("GET", "accounts", params={"order": "dateCreated"}, headers={"Count": "2"})
    assert [r["id"] for r in newest] == [55, 54]  # order sorts descending


def test_records_partial_put_soft_delete_and_lookups(sim: SimulatorHandle) -> None:
    """POST/PUT/DELETE bodies, partial update, soft delete listed, FK lookups, 400/910 for unknown ids."""
    api = Api(sim)
    created = api.ok(
        "POST", "accounts", json=account(city="Paris", statusId=2, countryId=1, Z_Siret="73282932000074")
    )
    assert created == {"Message": "entity created", "id": 1}
    rec = api.ok("GET", "accounts/1")
    assert rec["statusId"] == {"id": 2, "value": "Prospect"} and rec["countryId"] == {
        "id": 1,
        "value": "France",
    }
    assert rec["typeId"] is None and rec["deleted"] is False and rec["readOnly"] is False
    assert ISO_MS_Z.match(rec["dateCreated"]) and rec["dateDeleted"] is None and rec["salesRepIdCreated"] == 1
    assert api.ok("PUT", "accounts/1", json={"city": "Lyon"}) == {"Message": "entity updated"}
    updated = api.ok("GET", "accounts/1")
    assert (
        updated["city"] == "Lyon"
        and updated["Z_Siret"] == "73282932000074"
        and updated["name"] == rec["name"]
    )
    assert updated["dateUpdated"] > rec["dateUpdated"]
    assert api.ok("DELETE", "accounts/1") == {"Message": "entity deleted"}
    listed = api.page("accounts", 0)
    assert len(listed) == 1 and listed[0]["deleted"] is True and ISO_MS_Z.match(listed[0]["dateDeleted"])
    assert api.ok("GET", "accounts", params={"where": "deleted = false"}) == []
    for method in ("GET", "PUT", "DELETE"):
        assert_error(
            api.call(method, "accounts/999", json={"city": "x"} if method == "PUT" else None), 400, 910
        )
    assert "accountStatuses 77" in assert_error(api.call("POST", "accounts", json=account(statusId=77)), 400)
    assert "salesRepId1" in assert_error(api.call("POST", "accounts", json={"name": "x", "branchId": 1}), 400)
    # Contacts, orders and lines chain their foreign keys; a line's productId may be null.
    cid = api.ok(
        "POST", "contacts", json={"accountId": 1, "firstName": "Léa", "lastName": "Roux", "salesRepId": 2}
    )["id"]
    assert api.ok("GET", f"contacts/{cid}")["accountId"] == {"id": 1, "value": "Dupont SARL"}
    oid = api.ok(
        "POST", "salesorders", json={"reference": "FA00001", "branchId": 1, "salesRepId": 1, "statusId": 3}
    )["id"]
    line = {"salesOrderId": oid, "productId": None, "quantity": 2, "price": 9.5, "Z_Quantity": 2.25}
    lid = api.ok("POST", "salesordersLines", json=line)["id"]
    got = api.ok("GET", f"salesordersLines/{lid}")
    assert (
        got["salesOrderId"] == {"id": oid, "value": "FA00001"}
        and got["productId"] is None
        and got["Z_Quantity"] == 2.25
    )


def test_where_filters_and_rejects_injections_with_901(sim: SimulatorHandle) -> None:
    api = Api(sim)
    api.ok("POST", "accounts", json=account("L'Atelier", extId="C001", statusId=1))
    api.ok("POST", "accounts", json=account("Garage", extId="C002", statusId=2))
    assert [r["id"] for r in api.ok("GET", "accounts", params={"where": "name = 'L''Atelier'"})] == [1]
    assert [
        r["id"] for r in api.ok("GET", "accounts", params={"where": "statusId = 2 OR extId = 'C001'"})
    ] == [1, 2]
    since = api.ok("GET", "accounts/2")["dateUpdated"]
    assert api.ok("GET", "accounts", params={"where": f"dateUpdated > '{since}'"}) == []
    python_limits = (
        "(" * 400 + "name = 'x'" + ")" * 400,  # would be a RecursionError (a 500) without the nesting cap
        "id = " + "9" * 5000,  # would be a ValueError from int()'s 4,300-digit limit (a 500)
    )
    for bad in (
        "name = 'x' OR 1=1 --",
        "'; DROP TABLE accounts; --",
        "name = 'open",
        "nope = 1",
        *python_limits,
    ):
        assert_error(api.call("GET", "accounts", params={"where": bad}), 400, 901)
    assert api.ok("GET", "accounts", params={"where": "name = 'x'' OR ''1''=''1'"}) == []
    assert len(api.page("accounts", 0)) == 2  # nothing was dropped or leaked


def test_bulk_items_fail_one_by_one(sim: SimulatorHandle) -> None:
    api = Api(sim)
    items = [
        {"guid": "g1", "data": account("A", extId="C1")},
        {"guid": "g2", "data": account("B", Z_Nope="x")},
        {"guid": "g3", "data": account("C", extId="C3")},
    ]
    result = api.ok("POST", "accounts/bulk", json=items)
    assert [(r["guid"], r["id"], r["status"]) for r in result] == [
        ("g1", 1, 200),
        ("g2", None, 400),
        ("g3", 2, 200),
    ]
    assert "Z_Nope" in result[1]["message"]
    puts = [
        {"guid": "u1", "id": 1, "data": {"city": "Nice"}},
        {"guid": "u2", "id": 99, "data": {"city": "Nice"}},
        {"guid": "u3", "id": 2, "data": {"statusId": 1234}},
    ]
    result = api.ok("PUT", "accounts/bulk", json=puts)
    assert [(r["guid"], r["id"], r["status"]) for r in result] == [
        ("u1", 1, 200),
        ("u2", 99, 400),
        ("u3", 2, 400),
    ]
    assert api.ok("GET", "accounts/1")["city"] == "Nice"
    assert_error(
        api.call("POST", "accounts/bulk", json=[{"guid": str(i), "data": account()} for i in range(201)]), 400
    )
    assert_error(
        api.call(
            "POST", "products/bulk", json=[{"guid": str(i), "data": {"model": "m"}} for i in range(101)]
        ),
        400,
    )
    assert (
        len(
            api.ok(
                "POST", "products/bulk", json=[{"guid": str(i), "data": {"model": "m"}} for i in range(100)]
            )
        )
        == 100
    )


def test_nan_and_infinity_are_refused_naming_the_field(sim: SimulatorHandle) -> None:
    """Python's json reads NaN/Infinity; the simulator refuses them so it never serves invalid JSON."""
    api = Api(sim)
    json_body = {"Content-Type": "application/json"}
    for constant in ("NaN", "Infinity", "-Infinity"):
        raw = f'{{"model": "M", "price": {constant}}}'
        message = assert_error(api.call("POST", "products", data=raw, headers=json_body), 400)
        assert "'price'" in message and constant in message
    bulk = '[{"guid": "g1", "data": {"model": "M"}}, {"guid": "g2", "data": {"model": "M", "cost": NaN}}]'
    message = assert_error(api.call("POST", "products/bulk", data=bulk, headers=json_body), 400)
    assert "[1].data.cost" in message
    # 1e999 is valid JSON text but overflows to inf: refused by the decimal check, naming the field.
    message = assert_error(
        api.call("POST", "products", data='{"model": "M", "price": 1e999}', headers=json_body), 400
    )
    assert "products: field 'price' must be a finite number" in message
    assert api.page("products", 0) == []  # nothing stored, and every answer is strict JSON
    listed = api.call("GET", "products")
    assert "NaN" not in listed.text and "Infinity" not in listed.text


def test_read_only_records_only_yield_to_the_integration_key(sim: SimulatorHandle) -> None:
    """Contract: any non-integration key gets 403 on PUT/DELETE of a readOnly record (bulk: item 403)."""
    integration, user = Api(sim), Api(sim, "user")
    integration.ok("POST", "accounts", json=account("Sage customer", readOnly=True, extId="C1"))
    user.ok("POST", "accounts", json=account("SSM prospect"))
    assert_error(user.call("PUT", "accounts/1", json={"city": "Metz"}), 403)
    assert_error(user.call("DELETE", "accounts/1"), 403)
    bulk = user.ok(
        "PUT",
        "accounts/bulk",
        json=[{"guid": "a", "id": 1, "data": {"city": "x"}}, {"guid": "b", "id": 2, "data": {"city": "y"}}],
    )
    assert [r["status"] for r in bulk] == [403, 200]
    integration.ok("PUT", "accounts/1", json={"city": "Metz"})
    rec = user.ok("GET", "accounts/1")
    assert rec["city"] == "Metz" and rec["salesRepIdUpdated"] == sim.keys["integration"]["user_id"]
    assert user.ok("GET", "accounts/2")["salesRepIdCreated"] == sim.keys["user"]["user_id"]


def test_custom_fields_types_and_zapier_schema(sim: SimulatorHandle) -> None:
    api = Api(sim)
    schema = api.ok("POST", "procedure/zapier_schema", json={"entity": "tblSalesOrders"})
    assert {f["Key"]: f["Type"] for f in schema} == {
        "Z_Sage50InvoiceId": "text",
        "Z_Synced": "bool",
        "Z_SyncedAt": "datetime",
        "Z_DocType": "text",
        "Z_InvoiceDate": "date",
        "Z_TotalHT": "decimal",
        "Z_TotalTTC": "decimal",
    }
    expected = {
        "empresas": ["Z_Siret"],
        "contactos": ["Z_JobTitle"],
        "articulos": ["Z_StockDisplay", "Z_Unit", "Z_Barcode"],
    }
    for table, keys in expected.items():
        assert [f["Key"] for f in api.ok("POST", "procedure/zapier_schema", json={"entity": table})] == keys
    assert_error(api.call("POST", "procedure/zapier_schema", json={"entity": "expedientes"}), 400)
    order = {"reference": "FA1", "branchId": 1, "salesRepId": 1}
    oid = api.ok(
        "POST",
        "salesorders",
        json={
            **order,
            "Z_Synced": True,
            "Z_SyncedAt": "2026-03-01T10:00:00+01:00",
            "Z_InvoiceDate": "2026-02-28",
            "Z_TotalHT": 100,
        },
    )["id"]
    got = api.ok("GET", f"salesorders/{oid}")
    assert (got["Z_Synced"], got["Z_SyncedAt"], got["Z_InvoiceDate"]) == (
        True,
        "2026-03-01T09:00:00.000Z",
        "2026-02-28",
    )
    assert_error(api.call("POST", "salesorders", json={**order, "Z_Synced": "yes"}), 400)
    assert_error(api.call("POST", "salesorders", json={**order, "Z_InvoiceDate": "28/02/2026"}), 400)
    assert_error(api.call("PUT", f"salesorders/{oid}", json={"Z_Undeclared": 1}), 400)
    assert (
        api.ok("GET", "salesorders", params={"where": "Z_Synced = true AND Z_InvoiceDate >= '2026-02-01'"})[
            0
        ]["id"]
        == oid
    )


def test_value_lists_are_paged_and_product_families_extend(sim: SimulatorHandle) -> None:
    api = Api(sim)
    countries = api.ok("GET", "countries", headers={"Count": "1000"})
    names = {c["descriptionFR"] for c in countries}
    assert {
        "France",
        "Monaco",
        "Belgique",
        "Suisse",
        "Luxembourg",
        "Espagne",
        "Italie",
        "Allemagne",
        "Royaume-Uni",
        "Canada",
    } <= names
    assert {"Guadeloupe", "Martinique", "La Réunion", "Mayotte", "Guyane française"} <= names
    assert next(c for c in countries if c["descriptionFR"] == "Allemagne")["iso2"] == "DE"
    assert len(api.ok("GET", "countries", headers={"Count": "2"})) == 2
    assert {"Client", "Prospect"} <= {s["descriptionFR"] for s in api.ok("GET", "accountStatuses")}
    assert {"Facture", "Avoir"} <= {s["descriptionFR"] for s in api.ok("GET", "salesorderStatuses")}
    for name in ("branches", "accountTypes", "contactTypes", "users"):
        assert api.ok("GET", name)
    fid = api.ok("POST", "productFamilies", json={"descriptionFR": "Boissons", "descriptionEN": "Drinks"})[
        "id"
    ]
    fam = api.ok("GET", f"productFamilies/{fid}")
    assert (fam["descriptionFR"], fam["descriptionEN"], fam["description"]) == (
        "Boissons",
        "Drinks",
        "Boissons",
    )
    pid = api.ok("POST", "products", json={"model": "Jus", "familyId": fid})["id"]
    assert api.ok("GET", f"products/{pid}")["familyId"] == {"id": fid, "value": "Boissons"}
    assert_error(api.call("POST", "countries", json={"descriptionFR": "Atlantide"}), 405)
    assert_error(api.call("GET", "nothing"), 404)
    assert_error(api.call("PATCH", "accounts/1"), 405)


def test_product_documents_upload_and_sha256(sim: SimulatorHandle) -> None:
    """D3 support: POST metadata → locator; PUT bytes without session key; list shows size and sha256."""
    api = Api(sim)
    pid = api.ok("POST", "products", json={"model": "Chaise", "extId": "CHAISE01", "readOnly": True})["id"]
    doc = api.ok(
        "POST",
        f"products/{pid}/documents",
        json={"name": "chaise.jpg", "isCarrousel": True, "folderId": "-1"},
    )
    assert isinstance(doc["id"], str) and doc["locator"].startswith(sim.root_url)
    content = bytes(range(256)) * 40
    put = requests.put(
        doc["locator"], data=content, headers={"Content-Type": "application/octet-stream"}, timeout=30
    )
    assert put.status_code == 200
    listed = api.ok("GET", f"products/{pid}/documents")
    assert listed == [
        {
            "id": doc["id"],
            "name": "chaise.jpg",
            "size": len(content),
            "sha256": hashlib.sha256(content).hexdigest(),
            "isCarrousel": True,
            "folderId": "-1",
            "dateCreated": listed[0]["dateCreated"],
        }
    ]
    assert requests.put(f"{sim.root_url}/upload/guessed", data=b"x", timeout=30).status_code == 404
    assert api.ok("DELETE", f"products/{pid}/documents/{doc['id']}") == {"Message": "entity deleted"}
    assert api.ok("GET", f"products/{pid}/documents") == []
    again = api.ok(
        "POST",
        f"products/{pid}/documents",
        json={"name": "chaise-2.jpg", "isCarrousel": True, "folderId": "-1"},
    )
    assert again["id"] != doc["id"]  # document ids are never reused
    assert_error(api.call("DELETE", f"products/{pid}/documents/{doc['id']}"), 400, 910)
    assert_error(api.call("GET", "products/999/documents"), 400, 910)


def test_faults_are_decided_before_the_request_and_heal(sim: SimulatorHandle) -> None:
    """/__sim/faults: 503/500/429 and dropped connections leave no trace; fail_after; p500_after applies."""
    api = Api(sim)
    sim.faults(p503=1.0)
    assert_error(api.call("POST", "accounts", json=account("ghost")), 503)
    sim.faults(p503=0.0, p500=1.0)
    assert_error(api.call("POST", "accounts/bulk", json=[{"guid": "g", "data": account("ghost")}]), 500)
    sim.faults(p500=0.0, p429=1.0)
    limited = api.call("GET", "accounts")
    assert_error(limited, 429)
    assert limited.headers["Retry-After"] == "1"
    sim.faults(p429=0.0, pdrop=1.0)
    with pytest.raises(requests.ConnectionError):
        api.call("POST", "accounts", json=account("ghost"))
    sim.heal()
    assert api.ok("GET", "accounts") == []  # none of the faulted writes was applied
    sim.faults(fail_after=2)
    statuses = [api.call("GET", "users").status_code for _ in range(4)]
    assert statuses == [200, 200, 503, 503]
    assert sim.heal()["fail_after"] is None
    assert api.call("GET", "users").status_code == 200
    sim.faults(p500_after=1.0)
    assert_error(api.call("POST", "accounts", json=account("lost response")), 500)
    sim.heal()
    assert [r["name"] for r in api.ok("GET", "accounts")] == ["lost response"]  # applied, answer lost
    sim.faults(pdrop_after=1.0)
    with pytest.raises(requests.ConnectionError):  # applied, then the connection closed without an answer
        api.call("POST", "accounts", json=account("dropped response"))
    assert sim.heal()["pdrop_after"] == 0.0
    assert [r["name"] for r in api.ok("GET", "accounts")] == ["lost response", "dropped response"]
    assert sim.stats()["by_status"]["dropped_after"] == 1
    sim.faults(latency_ms=50, seed=3, p503=0.5)
    mixed = [api.call("GET", "users").status_code for _ in range(20)]
    assert set(mixed) == {200, 503}
    admin = requests.get(f"{sim.root_url}/__sim/stats", timeout=30)
    assert admin.status_code == 200  # faults never apply to /__sim


def test_stats_count_routes_statuses_writes_and_duplicates(sim: SimulatorHandle) -> None:
    api = Api(sim)  # one login
    api.ok("POST", "accounts/bulk", json=[{"guid": str(i), "data": account(extId="DUP")} for i in range(3)])
    api.ok("PUT", "accounts/1", json={"city": "Brest"})
    api.ok("DELETE", "accounts/3")
    api.ok("GET", "accounts")
    api.call("GET", "accounts/77")
    stats = sim.stats()
    assert stats["logins"] == 1 and stats["reads"] == 2 and stats["writes"] == 3 and stats["total"] == 6
    assert stats["by_route"] == {
        "POST /api/v4/login": 1,
        "POST /api/v4/accounts/bulk": 1,
        "PUT /api/v4/accounts/{id}": 1,
        "DELETE /api/v4/accounts/{id}": 1,
        "GET /api/v4/accounts": 1,
        "GET /api/v4/accounts/{id}": 1,
    }
    assert stats["by_status"] == {"200": 5, "400": 1}
    assert stats["records_written"] == 5 and stats["served_429"] == 0
    assert stats["duplicate_ext_ids"]["accounts"] == ["DUP"]  # two live records still carry it
    zero = sim.reset_stats()
    assert zero["total"] == 0 and zero["by_route"] == {} and zero["records_written"] == 0


def test_clock_offset_shifts_record_dates(sim: SimulatorHandle) -> None:
    api = Api(sim)
    api.ok("POST", "accounts", json=account("today"))
    sim.clock(86400 * 30)
    api.ok("POST", "accounts", json=account("next month"))
    today, later = api.ok("GET", "accounts/1"), api.ok("GET", "accounts/2")
    assert (
        later["dateCreated"][:7] != today["dateCreated"][:7]
        or later["dateCreated"][8:10] != today["dateCreated"][8:10]
    )
    assert later["dateCreated"] > today["dateCreated"]
    found = api.ok("GET", "accounts", params={"where": f"dateCreated > '{today['dateCreated']}'"})
    assert [r["name"] for r in found] == ["next month"]
    sim.clock(0)


def test_reset_wipes_records_and_keeps_keys(sim: SimulatorHandle) -> None:
    api = Api(sim)
    api.ok("POST", "accounts", json=account())
    keys = sim.keys
    assert sim.reset() == keys
    assert Api(sim).ok("GET", "accounts") == []
    assert keys["admin_user_id"] in {u["id"] for u in keys["users"]}
    assert keys["integration"]["user_id"] != keys["user"]["user_id"]
