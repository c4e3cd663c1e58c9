"""In-memory Sage and SSM sides for tests, with injectable faults.

They behave like the real systems where the engine can tell: SSM soft-deletes, keeps ``dateUpdated`` on a
monotonic server clock, returns foreign keys as ``{"id", "value"}``, refuses a non-integration user's edit of a
read-only record, answers bulk calls item by item; Sage refuses a duplicate key. Faults are armed one at a time:
an item refused, an exception before or in the middle of a batch, a lost response (the write applied, the caller
sees an error), or a crash (:class:`SimulatedCrash`, which no ``except Exception`` catches) before a call.
"""

from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pandas as pd

from sage_sync.engine.codec import mapping
from sage_sync.engine.own_creates import OwnCreates
from sage_sync.engine.sides import ItemOutcome
from sage_sync.hooks.sage50_frames import column_from_values
from sage_sync.mapping.transforms import ValueLists


class SimulatedCrash(BaseException):  # noqa: N818 - a process death, deliberately not an Exception
    """The process died here (escapes every ``except Exception``)."""


class TransportError(Exception):
    """A simulated network or server error."""


#: The SSM users behind the integration's API key and behind a salesperson's edits in the app.
INTEGRATION_USER = 99
APP_USER = 7
ADMIN_USER = 3

#: Fault ``method`` "write" matches any of these.
WRITES = frozenset({"insert", "update", "create", "delete"})


@dataclass
class Fault:
    """One armed fault: ``mode`` is refuse | raise | mid_batch | lost | crash (| empty: a read returns no rows).

    It fires on the matching call after ``calls_left`` matching calls were let through; ``method`` None matches
    every call, "write" every write; ``endpoint`` None every entity or endpoint.
    """

    mode: str
    method: str | None = None
    endpoint: str | None = None
    calls_left: int = 0
    item: int = 0


@dataclass
class Faults:
    """The faults armed on one side, consumed as they fire."""

    armed: list[Fault] = field(default_factory=list)
    enabled: bool = True

    def take(self, method: str, endpoint: str) -> Fault | None:
        """The fault that fires on this call, if any."""
        if not self.enabled:
            return None
        for f in list(self.armed):
            wanted = f.method in (None, method) or (f.method == "write" and method in WRITES)
            if wanted and f.endpoint in (None, endpoint):
                if f.calls_left > 0:
                    f.calls_left -= 1
                    continue
                self.armed.remove(f)
                return f
        return None


def _run_batch(items: list[Any], fault: Fault | None, apply_one: Any) -> list[ItemOutcome]:
    """Apply ``items`` one by one under ``fault``."""
    if fault is not None and fault.mode == "crash":
        raise SimulatedCrash("simulated crash before the call")
    if fault is not None and fault.mode == "raise":
        raise TransportError("simulated 503 before anything was applied")
    out: list[ItemOutcome] = []
    for i, item in enumerate(items):
        if fault is not None and fault.mode == "mid_batch" and i == fault.item:
            raise TransportError(f"simulated connection drop after {i} item(s)")
        if fault is not None and fault.mode == "refuse" and i == fault.item:
            out.append(ItemOutcome(False, error="simulated refusal (400)"))
            continue
        out.append(apply_one(item))
    if fault is not None and fault.mode == "lost":
        raise TransportError("simulated lost response: the writes applied")
    return out


# --- Sage ---------------------------------------------------------------------------------------------------


class InMemorySage:
    """Sage 50 FR in memory: canonical rows per source, keyed as the mapping says."""

    def __init__(self) -> None:
        """Start with an empty dossier."""
        self.tables: dict[str, dict[tuple[Any, ...], dict[str, Any]]] = {}
        self.pictures: dict[str, bytes] = {}
        self.faults = Faults()
        self.writes = 0

    def _source(self, entity: str, source: str | None = None) -> tuple[str, tuple[str, ...]]:
        m = mapping(entity)
        src = m.sources[source] if source else m.main
        return f"{entity}.{src.name}", src.key

    def put(self, entity: str, row: dict[str, Any], source: str | None = None) -> None:
        """Create or replace a row (a user's edit in Sage)."""
        table, key = self._source(entity, source)
        full = dict(row)
        if entity == "accounts":
            full.setdefault("account_type", 0)
        self.tables.setdefault(table, {})[tuple(full[k] for k in key)] = full
        self._document_totals(entity, source, full)

    def edit(self, entity: str, key: tuple[Any, ...], source: str | None = None, **values: Any) -> None:
        """Change some fields of a row."""
        table, _ = self._source(entity, source)
        self.tables[table][key].update(values)
        self._document_totals(
            entity, source, self.tables[table][key], recompute_ttc="amount_ttc" not in values
        )

    def delete(self, entity: str, key: tuple[Any, ...], source: str | None = None) -> None:
        """Delete a row."""
        table, _ = self._source(entity, source)
        gone = self.tables.get(table, {}).pop(key, None)
        if gone is not None:
            self._document_totals(entity, source, gone, recompute_ttc=False)

    def _document_totals(
        self, entity: str, source: str | None, line: dict[str, Any], *, recompute_ttc: bool = True
    ) -> None:
        """As Sage does: a line's TTC follows its HT and VAT rate, and its invoice's totals are its lines' sums."""
        if entity != "invoices" or source != "lines":
            return
        line.setdefault("vat_rate", 20.0)
        if recompute_ttc or line.get("amount_ttc") is None:
            ht = float(line.get("amount_ht") or 0.0)
            line["amount_ttc"] = float(
                round(Decimal(str(ht)) * (1 + Decimal(str(line["vat_rate"])) / 100), 2)
            )
        header = self.tables.get("invoices.headers", {}).get((0, line["piece"]))
        if header is None:
            return
        lines = [r for r in self.tables.get("invoices.lines", {}).values() if r["piece"] == line["piece"]]
        header["total_ht"] = round(sum(float(r.get("amount_ht") or 0.0) for r in lines), 2)
        header["total_ttc"] = round(sum(float(r.get("amount_ttc") or 0.0) for r in lines), 2)

    def rows(self, entity: str, source: str | None = None) -> dict[tuple[Any, ...], dict[str, Any]]:
        """The rows of a source by key."""
        table, _ = self._source(entity, source)
        return self.tables.get(table, {})

    def read_snapshot(self, entity: str) -> dict[str, pd.DataFrame]:
        """Every source of ``entity`` as a frame with the mapping's dtypes."""
        fault = self.faults.take("read", entity)
        if fault is not None and fault.mode != "empty":
            raise TransportError("simulated ODBC read failure")
        empty = fault is not None  # a broken read that returns no rows at all (G4)
        out: dict[str, pd.DataFrame] = {}
        for name, src in mapping(entity).sources.items():
            table = f"{entity}.{name}"
            rows = [] if empty else list(self.tables.get(table, {}).values())
            # Typed column by column exactly as the ODBC hook types what the driver returns (a date no calendar
            # reads becomes a missing date, a date pandas' nanoseconds cannot hold stays a date).
            frame = pd.DataFrame(
                {f.name: column_from_values([r.get(f.name) for r in rows], f) for f in src.fields}
            )
            out[name] = frame
        return out

    def read_picture(self, path: str) -> bytes | None:
        """The bytes of a picture file."""
        return self.pictures.get(path)

    def insert(self, entity: str, rows: list[dict[str, Any]]) -> list[ItemOutcome]:
        """Insert rows; a duplicate key is refused like a primary-key violation."""
        table, key = self._source(entity)
        store = self.tables.setdefault(table, {})

        def one(row: dict[str, Any]) -> ItemOutcome:
            k = tuple(row[c] for c in key)
            if k in store:
                return ItemOutcome(False, error=f"duplicate key {k}")
            full = dict(row)
            if entity == "accounts":
                full.setdefault("account_type", 0)
            store[k] = full
            self.writes += 1
            return ItemOutcome(True)

        return _run_batch(rows, self.faults.take("insert", entity), one)

    def update(
        self, entity: str, keys: list[dict[str, Any]], rows: list[dict[str, Any]]
    ) -> list[ItemOutcome]:
        """Update rows in place; an unknown key is refused."""
        table, key = self._source(entity)
        store = self.tables.setdefault(table, {})

        def one(pair: tuple[dict[str, Any], dict[str, Any]]) -> ItemOutcome:
            k = tuple(pair[0][c] for c in key)
            if k not in store:
                return ItemOutcome(False, error=f"no row {k}")
            store[k].update(pair[1])
            self.writes += 1
            return ItemOutcome(True)

        return _run_batch(list(zip(keys, rows, strict=True)), self.faults.take("update", entity), one)


# --- SSM ----------------------------------------------------------------------------------------------------

LOOKUPS = {
    "statusId",
    "countryId",
    "accountId",
    "branchId",
    "salesRepId",
    "typeId",
    "familyId",
    "productId",
    "salesOrderId",
    "salesRepId1",
    "salesRepId2",
    "salesRepId3",
    "salesRepId4",
    "salesRepId5",
}


def default_lists() -> ValueLists:
    """A small tenant: statuses, a few countries, two users, invoice statuses."""
    return ValueLists(
        account_statuses={"Client": 1, "Prospect": 2, "Lead": 3},
        countries=[
            {"id": 73, "descriptionFR": "France", "iso2": "FR"},
            {"id": 21, "descriptionFR": "Belgique", "iso2": "BE"},
            {"id": 58, "descriptionFR": "Côte d'Ivoire", "iso2": "CI"},
        ],
        users={1: {"name": "Ada", "lastName": "Admin"}, 7: {"name": "Lucie", "lastName": "Martin"}},
        salesorder_statuses={"Facture": 11, "Avoir": 12},
        product_families={},
    )


class InMemorySsm:
    """Sage Sales Management in memory (soft deletes, server clock, per-item bulk outcomes)."""

    def __init__(self, lists: ValueLists | None = None) -> None:
        """Start an empty tenant with the given value lists."""
        self.lists = lists or default_lists()
        self.data: dict[str, dict[int, dict[str, Any]]] = {}
        self.documents: dict[int, list[dict[str, Any]]] = {}
        self.faults = Faults()
        self.calls = 0
        self.writes = 0
        self._next_id = 1000
        self._clock = datetime(2026, 1, 1, tzinfo=UTC)

    def advance(self, seconds: float) -> None:
        """Move the server clock forward (time passing between two runs)."""
        self._clock += timedelta(seconds=seconds)

    def now(self) -> str:
        """Advance the server clock by one millisecond and return it as ISO-8601 text."""
        self._clock += timedelta(milliseconds=1)
        return self._clock.isoformat(timespec="milliseconds").replace("+00:00", "Z")

    def _view(self, rec: dict[str, Any]) -> dict[str, Any]:
        out = copy.deepcopy(rec)
        for k in LOOKUPS:
            if out.get(k) is not None:
                out[k] = {"id": out[k], "value": str(out[k])}
        return out

    # --- users' own edits (not counted as API calls of the integration) -----------------------------------

    def user_create(self, endpoint: str, data: dict[str, Any], user: int | None = None) -> int:
        """A user (default: a salesperson) creates a record in the SSM app."""
        self._next_id += 1
        stamp = self.now()
        rec = {
            "id": self._next_id,
            "extId": None,
            "readOnly": False,
            "deleted": False,
            "salesRepIdCreated": APP_USER if user is None else user,
            "salesRepIdUpdated": APP_USER if user is None else user,
            "dateCreated": stamp,
            "dateUpdated": stamp,
            "dateDeleted": None,
            **data,
        }
        self.data.setdefault(endpoint, {})[self._next_id] = rec
        return self._next_id

    def user_update(self, endpoint: str, ident: int, data: dict[str, Any]) -> bool:
        """A user edits a record; refused (False) on read-only or deleted records, like the API's 403."""
        rec = self.data.get(endpoint, {}).get(ident)
        if rec is None or rec["readOnly"] or rec["deleted"]:
            return False
        rec.update(data)
        rec["dateUpdated"] = self.now()
        rec["salesRepIdUpdated"] = APP_USER
        return True

    def user_delete(self, endpoint: str, ident: int) -> bool:
        """A user deletes a record; refused on read-only records."""
        rec = self.data.get(endpoint, {}).get(ident)
        if rec is None or rec["readOnly"] or rec["deleted"]:
            return False
        rec["deleted"] = True
        rec["dateDeleted"] = rec["dateUpdated"] = self.now()
        rec["salesRepIdUpdated"] = APP_USER
        return True

    def admin_update(self, endpoint: str, ident: int, data: dict[str, Any]) -> None:
        """An administrator edits a record with a key holding the integration right (read-only ones too): drift."""
        rec = self.data[endpoint][ident]
        rec.update(copy.deepcopy(data))
        rec["dateUpdated"] = self.now()
        rec["salesRepIdUpdated"] = ADMIN_USER

    def admin_delete(self, endpoint: str, ident: int) -> None:
        """An administrator soft-deletes a record, read-only ones too (drift a full reconcile repairs)."""
        rec = self.data[endpoint][ident]
        rec["deleted"] = True
        rec["dateDeleted"] = rec["dateUpdated"] = self.now()
        rec["salesRepIdUpdated"] = ADMIN_USER

    def live(self, endpoint: str) -> list[dict[str, Any]]:
        """Raw live records of an endpoint (for assertions)."""
        return [r for r in self.data.get(endpoint, {}).values() if not r["deleted"]]

    # --- the SsmSide protocol ----------------------------------------------------------------------------

    def api_calls(self) -> int:
        """API calls made by the integration."""
        return self.calls

    def parallel_calls(self) -> int:
        """One call at a time: the double's faults are counted in call order."""
        return 1

    def value_lists(self) -> ValueLists:
        """The tenant's value lists."""
        self.calls += 1
        return copy.deepcopy(self.lists)

    def list_changed(
        self, endpoint: str, since: str | None, skip: OwnCreates | None = None
    ) -> list[dict[str, Any]]:
        """Records updated at or after ``since``, less those ``skip`` leaves out (the API's ``where``)."""
        self.calls += 1
        if self.faults.take("list", endpoint) is not None:
            raise TransportError("simulated 503 on list")
        recs = self.data.get(endpoint, {}).values()
        return [
            self._view(r)
            for r in recs
            if (since is None or r["dateUpdated"] >= since) and (skip is None or not skip.skips(r))
        ]

    def get_by_ids(self, endpoint: str, ids: list[int]) -> list[dict[str, Any]]:
        """Records by id."""
        self.calls += 1
        store = self.data.get(endpoint, {})
        return [self._view(store[i]) for i in ids if i in store]

    def find_by_ext_ids(self, endpoint: str, ext_ids: list[str]) -> list[dict[str, Any]]:
        """Live records by extId."""
        self.calls += 1
        wanted = set(ext_ids)
        return [
            self._view(r)
            for r in self.data.get(endpoint, {}).values()
            if r.get("extId") in wanted and not r["deleted"]
        ]

    def bulk_create(self, endpoint: str, items: list[dict[str, Any]]) -> list[ItemOutcome]:
        """Create records, item by item."""
        self.calls += 1

        def one(data: dict[str, Any]) -> ItemOutcome:
            self._next_id += 1
            stamp = self.now()
            self.data.setdefault(endpoint, {})[self._next_id] = {
                "id": self._next_id,
                "extId": None,
                "readOnly": False,
                "deleted": False,
                "salesRepIdCreated": INTEGRATION_USER,
                "salesRepIdUpdated": INTEGRATION_USER,
                "dateCreated": stamp,
                "dateUpdated": stamp,
                "dateDeleted": None,
                **copy.deepcopy(data),
            }
            self.writes += 1
            return ItemOutcome(True, id=self._next_id, date_updated=stamp)

        return _run_batch(items, self.faults.take("create", endpoint), one)

    def bulk_update(self, endpoint: str, items: list[tuple[int, dict[str, Any]]]) -> list[ItemOutcome]:
        """Partially update records, item by item (the integration may modify read-only records)."""
        self.calls += 1

        def one(item: tuple[int, dict[str, Any]]) -> ItemOutcome:
            rec = self.data.get(endpoint, {}).get(item[0])
            if rec is None:
                return ItemOutcome(False, error=f"910 resource {item[0]} does not exist")
            rec.update(copy.deepcopy(item[1]))
            rec["dateUpdated"] = self.now()
            rec["salesRepIdUpdated"] = INTEGRATION_USER
            self.writes += 1
            return ItemOutcome(True, id=item[0], date_updated=rec["dateUpdated"])

        return _run_batch(items, self.faults.take("update", endpoint), one)

    def soft_delete(self, endpoint: str, ids: list[int]) -> list[ItemOutcome]:
        """Soft-delete records."""
        self.calls += 1

        def one(ident: int) -> ItemOutcome:
            rec = self.data.get(endpoint, {}).get(ident)
            if rec is None:
                return ItemOutcome(False, error=f"910 resource {ident} does not exist")
            rec["deleted"] = True
            rec["dateDeleted"] = rec["dateUpdated"] = self.now()
            rec["salesRepIdUpdated"] = INTEGRATION_USER
            self.writes += 1
            return ItemOutcome(True, id=ident, date_updated=rec["dateUpdated"])

        return _run_batch(ids, self.faults.take("delete", endpoint), one)

    def ensure_product_family(self, name: str) -> int:
        """The id of a product family, created when missing."""
        if name not in self.lists.product_families:
            self.calls += 1
            self._next_id += 1
            self.lists.product_families[name] = self._next_id
        return self.lists.product_families[name]

    def upload_product_picture(
        self, product_id: int, name: str, content: bytes, *, new: bool = False
    ) -> None:
        """Replace the product's carrousel picture."""
        assert not (new and self.documents.get(product_id)), (
            f"product {product_id} is not new: it has documents"
        )
        self.calls += 2 if new else 3  # (list the documents), create the document, PUT the bytes
        if self.faults.take("upload", "products") is not None:
            raise TransportError("simulated upload failure")
        self.documents[product_id] = [
            {
                "name": name,
                "isCarrousel": True,
                "size": len(content),
                "sha256": hashlib.sha256(content).hexdigest(),
            }
        ]


# --- a whole world for tests: both sides, a state store, one config ----------------------------------------


def account_row(code: str, name: str, *, prospect: bool = False, **values: Any) -> dict[str, Any]:
    """A Sage customer (or prospect) row with canonical names."""
    return {"code": code, "name": name, "account_type": 0, "is_prospect": 1 if prospect else 0, **values}


def contact_row(code: str, number: int, last_name: str, **values: Any) -> dict[str, Any]:
    """A Sage contact row of account ``code``."""
    return {"account_code": code, "number": number, "last_name": last_name, **values}


def put_article(sage: InMemorySage, ref: str, *, tax_code: str = "T20", **values: Any) -> None:
    """A Sage article (wine family, 12.00 excl. tax, no stock management) and its sales accounting row (VAT code)."""
    row = {
        "ref": ref,
        "designation": f"Article {ref}",
        "family_code": "VIN",
        "purchase_price": 4.0,
        "sales_price": 12.0,
        "price_includes_tax": 0,
        "stock_managed": 0,
        "asleep": 0,
        **values,
    }
    sage.put("products", row)
    accounting = {"ref": ref, "accounting_type": 0, "accounting_field": 1, "tax_code": tax_code}
    sage.put("products", accounting, source="accounting")


def put_invoice(sage: InMemorySage, piece: str, customer: str = "C001", **values: Any) -> None:
    """A Sage sales invoice header of ``customer`` (open; its totals follow the lines put under it)."""
    row = {
        "domain": 0,
        "doc_type": 6,
        "piece": piece,
        "date": "2026-03-01",
        "customer_code": customer,
        "provenance": 0,
        "total_ht": 0.0,
        "total_ttc": 0.0,
        **values,
    }
    sage.put("invoices", row)


def put_invoice_line(sage: InMemorySage, piece: str, line_id: int, **values: Any) -> None:
    """A line of invoice ``piece`` (no article: 2 x 25.00)."""
    row = {
        "line_id": line_id,
        "domain": 0,
        "doc_type": 6,
        "piece": piece,
        "position": line_id,
        "article_ref": None,
        "designation": f"Line {line_id}",
        "quantity": 2.0,
        "unit_price": 25.0,
        "amount_ht": 50.0,
        **values,
    }
    sage.put("invoices", row, source="lines")


class SyncWorld:
    """Both in-memory sides, a state store and a config, with a ``run()`` shortcut."""

    def __init__(self, state_url: str = "sqlite://", config: Any = None) -> None:
        """Build an empty world; ``sqlite://`` keeps the state in memory."""
        from sage_sync.engine.config import SyncConfig
        from sage_sync.engine.state import StateStore

        self.sage = InMemorySage()
        self.ssm = InMemorySsm()
        self.state = StateStore(state_url)
        self.state.migrate()
        self.config = config or SyncConfig()

    def run(
        self,
        *,
        dry_run: bool = False,
        full_reconcile: bool = False,
        approve_deletions: dict[str, int | str] | None = None,
        entities: tuple[str, ...] | None = None,
    ) -> Any:
        """One sync cycle (see :func:`sage_sync.engine.pipeline.run_once`); ``full_reconcile`` repairs SSM drift."""
        from sage_sync.engine.pipeline import run_once

        # Runs are 15 minutes apart: records not touched since the last run fall outside the overlap margin of
        # the incremental SSM read, as in production.
        self.ssm.advance(900)
        return run_once(
            self.sage,
            self.ssm,
            self.state,
            self.config,
            dry_run=dry_run,
            full_reconcile=full_reconcile,
            approve_deletions=approve_deletions,
            entities=entities,
        )

    def ssm_by_ext(self, endpoint: str, ext_id: str) -> list[dict[str, Any]]:
        """Live SSM records with this extId."""
        return [r for r in self.ssm.live(endpoint) if r.get("extId") == ext_id]
