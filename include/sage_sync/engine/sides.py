"""The two sides the engine talks to, as Protocols the real adapters (ODBC hook, HTTP hook) implement.

Everything crossing these interfaces uses canonical field names on the Sage side and SSM field names on the SSM
side; per-item outcomes let one refused row never block the others (G3, G5).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import pandas as pd

from sage_sync.engine.own_creates import OwnCreates
from sage_sync.mapping.transforms import ValueLists


@dataclass
class ItemOutcome:
    """What happened to one item of a write: ``ok`` with the SSM id / ``dateUpdated`` when known, or an error."""

    ok: bool
    id: int | None = None
    date_updated: str | None = None
    error: str | None = None


class SageSide(Protocol):
    """Sage 50 FR as the engine sees it (implemented by the ODBC hook adapter and :mod:`.memory`)."""

    def read_snapshot(self, entity: str) -> dict[str, pd.DataFrame]:
        """The current rows of every source of ``entity`` (canonical column names), by source name."""
        ...

    def read_picture(self, path: str) -> bytes | None:
        """The bytes of an article picture (D3), or None when the file is missing."""
        ...

    def insert(self, entity: str, rows: list[dict[str, Any]]) -> list[ItemOutcome]:
        """Insert account or contact rows (canonical names, including the key); one outcome per row."""
        ...

    def update(
        self, entity: str, keys: list[dict[str, Any]], rows: list[dict[str, Any]]
    ) -> list[ItemOutcome]:
        """Update the given fields of the rows identified by ``keys``; one outcome per row."""
        ...


class SsmSide(Protocol):
    """Sage Sales Management as the engine sees it (implemented by the HTTP hook adapter and :mod:`.memory`)."""

    def value_lists(self) -> ValueLists:
        """Account statuses, countries, users, sales order statuses and product families."""
        ...

    def list_changed(
        self, endpoint: str, since: str | None, skip: OwnCreates | None = None
    ) -> list[dict[str, Any]]:
        """Every record (deleted ones included) whose ``dateUpdated`` is at or after ``since``.

        ``since`` None lists every record of the endpoint: the first run, and a full reconcile. ``skip`` leaves
        out the unchanged records of our own creates (:class:`~sage_sync.engine.own_creates.OwnCreates`).
        """
        ...

    def get_by_ids(self, endpoint: str, ids: list[int]) -> list[dict[str, Any]]:
        """The records with these ids (deleted ones included; unknown ids are left out)."""
        ...

    def find_by_ext_ids(self, endpoint: str, ext_ids: list[str]) -> list[dict[str, Any]]:
        """The live records whose ``extId`` is one of ``ext_ids`` (C1 adoption before a create)."""
        ...

    def bulk_create(self, endpoint: str, items: list[dict[str, Any]]) -> list[ItemOutcome]:
        """Create records (at most the entity's bulk size per call); one outcome per item, in order."""
        ...

    def bulk_update(self, endpoint: str, items: list[tuple[int, dict[str, Any]]]) -> list[ItemOutcome]:
        """Partially update ``(id, fields)`` items; one outcome per item, in order."""
        ...

    def soft_delete(self, endpoint: str, ids: list[int]) -> list[ItemOutcome]:
        """Soft-delete records (``DELETE``); one outcome per id."""
        ...

    def ensure_product_family(self, name: str) -> int:
        """The id of the product family called ``name``, creating it when missing."""
        ...

    def upload_product_picture(
        self, product_id: int, name: str, content: bytes, *, new: bool = False
    ) -> None:
        """Upload ``content`` as the product's carrousel picture (D3), replacing the previous one.

        ``new``: the product was created by this run's load, so it has no document to look at or replace.
        """
        ...

    def api_calls(self) -> int:
        """How many API calls this side has made so far (for the run ledger, G7)."""
        ...

    def parallel_calls(self) -> int:
        """How many bulk create calls the load may keep in flight at once (1: one after the other)."""
        ...
