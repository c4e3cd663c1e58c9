"""The simulator's responses validate against the vendor's response schemas (ssm-api-v4.swagger.json).

Where the swagger and contracts/SSM-API.md disagree, SSM-API.md wins; each exception is listed here:

* Unset values are ``null`` (contract "Records": "unset → null"), while the swagger declares every property
  non-nullable; the test therefore allows ``null`` for every property.
* Properties the contract adds to a response definition (``CONTRACT_EXTRAS``): ``deleted`` on accounts and
  contacts, ``extId``/``readOnly`` on sales-order lines (contract: every record has them), ``lastName`` on
  contacts (the swagger spells it ``lasttName``; contract "Entities used" spells it ``lastName``), and the
  tenant's ``Z_*`` custom fields.
* ``date-time`` is checked strictly as the contract's format: ISO-8601 UTC with milliseconds and ``Z``.
"""

from __future__ import annotations

import copy
import json
import re
from importlib import resources
from typing import Any

import jsonschema
import pytest
import requests

from tests.support.simulator import SimulatorHandle, ssm_simulator  # noqa: F401


@pytest.fixture
def sim(ssm_simulator: SimulatorHandle) -> SimulatorHandle:  # noqa: F811 - the shared fixture, under a short name
    return ssm_simulator


SWAGGER: dict[str, Any] = json.loads(
    resources.files("sage_sync.simulators.ssm")
    .joinpath("data/ssm-api-v4.swagger.json")
    .read_text(encoding="utf-8")
)
ISO_MS_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")

CONTRACT_EXTRAS: dict[str, set[str]] = {
    "AccountResponse": {"deleted", "Z_Siret"},
    "ContactResponse": {"deleted", "lastName", "Z_JobTitle"},
    "SalesOrderResponse": {
        "Z_Sage50InvoiceId",
        "Z_Synced",
        "Z_SyncedAt",
        "Z_DocType",
        "Z_InvoiceDate",
        "Z_TotalHT",
        "Z_TotalTTC",
    },
    "SalesOrderLineResponse": {"extId", "readOnly", "Z_Quantity"},
}

# path (under /api/v4) -> the swagger's response definition of its GET, read from the swagger itself
LISTS = ["accounts", "contacts", "users", "salesorders", "salesordersLines"]
VALUE_LISTS = [
    "branches",
    "countries",
    "accountStatuses",
    "accountTypes",
    "contactTypes",
    "salesorderStatuses",
]

FORMATS = jsonschema.FormatChecker(formats=())


@FORMATS.checks("date-time")
def _is_contract_datetime(value: object) -> bool:
    return not isinstance(value, str) or bool(ISO_MS_Z.match(value))


def _nullable(schema: Any) -> Any:
    """Copy of a schema where every property also accepts null (first documented exception)."""
    schema = copy.deepcopy(schema)

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for prop in node.get("properties", {}).values():
                if "type" in prop and isinstance(prop["type"], str):
                    prop["type"] = [prop["type"], "null"]
                walk(prop)
            if "items" in node:
                walk(node["items"])

    for definition in schema["definitions"].values():
        walk(definition)
    return schema


NULLABLE = _nullable({"definitions": SWAGGER["definitions"]})


def _definition_of(path: str) -> str:
    ref = SWAGGER["paths"][f"/{path}"]["get"]["responses"]["200"]["schema"]["items"]["$ref"]
    return str(ref.rsplit("/", 1)[1])


def _validate(definition: str, item: dict[str, Any]) -> None:
    schema = {"$ref": f"#/definitions/{definition}", "definitions": NULLABLE["definitions"]}
    jsonschema.Draft4Validator(schema, format_checker=FORMATS).validate(item)
    declared = set(SWAGGER["definitions"][definition]["properties"])
    undeclared = set(item) - declared - CONTRACT_EXTRAS.get(definition, set())
    assert not undeclared, (
        f"{definition}: properties neither in the swagger nor documented as contract extras: {undeclared}"
    )


def _populate(sim: SimulatorHandle) -> dict[str, str]:
    http = requests.Session()
    http.headers["X-Session-Key"] = sim.login()

    def post(path: str, body: dict[str, Any]) -> int:
        response = http.post(f"{sim.base_url}/{path}", json=body, timeout=30)
        assert response.status_code == 200, response.text
        return int(response.json()["id"])

    full_account = {
        "name": "Schéma SA",
        "branchId": 1,
        "salesRepId1": 1,
        "salesRepId2": 2,
        "typeId": 1,
        "statusId": 1,
        "segmentId": 1,
        "countryId": 1,
        "extId": "C1",
        "readOnly": True,
        "email": "a@b.fr",
        "Z_Siret": "73282932000074",
    }
    aid = post("accounts", full_account)
    post("accounts", {"name": "Minimal", "branchId": 1, "salesRepId1": 2})  # mostly nulls
    post(
        "contacts",
        {
            "accountId": aid,
            "firstName": "Ana",
            "lastName": "Vidal",
            "salesRepId": 1,
            "gender": 1,
            "typeId": 1,
            "countryId": 2,
            "Z_JobTitle": "DAF",
        },
    )
    pid = post("products", {"model": "Table", "extId": "T1", "stock": None, "Z_StockDisplay": "-"})
    oid = post(
        "salesorders",
        {
            "reference": "FA001",
            "number": 1,
            "branchId": 1,
            "salesRepId": 1,
            "accountId": aid,
            "statusId": 3,
            "currencyId": 1,
            "total": 12.5,
            "closedDate": "2026-01-31",
            "Z_Synced": True,
            "Z_SyncedAt": "2026-02-01T08:00:00Z",
            "Z_InvoiceDate": "2026-01-31",
            "Z_TotalHT": 10.42,
            "Z_TotalTTC": 12.5,
        },
    )
    post(
        "salesordersLines",
        {"salesOrderId": oid, "productId": pid, "quantity": 1, "price": 10.42, "Z_Quantity": 1.0},
    )
    post("salesordersLines", {"salesOrderId": oid, "productId": None, "quantity": 2, "price": 0})
    http.delete(f"{sim.base_url}/accounts/2", timeout=30)  # a soft-deleted record must validate too
    return dict(http.headers)  # type: ignore[arg-type]


@pytest.mark.parametrize("path", LISTS + VALUE_LISTS)
def test_list_and_get_responses_match_the_swagger(sim: SimulatorHandle, path: str) -> None:
    headers = _populate(sim)
    definition = _definition_of(path)
    items = requests.get(f"{sim.base_url}/{path}", headers={**headers, "Count": "1000"}, timeout=30).json()
    assert isinstance(items, list) and items
    for item in items:
        _validate(definition, item)
    single = requests.get(f"{sim.base_url}/{path}/{items[0]['id']}", headers=headers, timeout=30).json()
    _validate(definition, single)


def test_write_responses_carry_the_contract_message_and_id(sim: SimulatorHandle) -> None:
    """PostResponse {id, message}: the contract's body is {"Message", "id"} (capital M, as the real API)."""
    headers = _populate(sim)
    body = requests.post(
        f"{sim.base_url}/accounts",
        json={"name": "x", "branchId": 1, "salesRepId1": 1},
        headers=headers,
        timeout=30,
    ).json()
    jsonschema.Draft4Validator(SWAGGER["definitions"]["PostResponse"]).validate(body)
    assert body == {"Message": "entity created", "id": body["id"]}
