"""``SsmApiSide``: the engine's :class:`~sage_sync.engine.sides.SsmSide` over :class:`SalesManagementHook`.

Every write is a bulk call in the API's chunk size with one outcome per item, so one refused item never blocks
the others (G3, G5); transport errors that outlive the hook's retries propagate, and the engine then fails the
whole call's items and plans them again next run. Value lists are read once per adapter instance (one run).
"""

from __future__ import annotations

import copy
import hashlib
import logging
from datetime import datetime
from typing import Any

from sage_sync.engine.own_creates import OwnCreates
from sage_sync.engine.sides import ItemOutcome
from sage_sync.errors import RetriableSyncError
from sage_sync.hooks.ssm import (
    API_CODE_NOT_FOUND,
    BulkOutcome,
    SalesManagementHook,
    SsmApiError,
    WriteOutcomeUnknown,
)
from sage_sync.hooks.where import and_, where_ge
from sage_sync.mapping.transforms import ValueLists

log = logging.getLogger(__name__)

#: The value lists the engine's transforms need, by ``ValueLists`` field.
_LABELLED_LISTS = {
    "account_statuses": "accountStatuses",
    "salesorder_statuses": "salesorderStatuses",
    "product_families": "productFamilies",
}


def _label(item: dict[str, Any]) -> str | None:
    """The French label of a value-list item (the engine's labels are French: Client, Prospect, Facture...)."""
    for name in ("descriptionFR", "description"):
        value = item.get(name)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def _parse_since(since: str) -> datetime:
    """An ISO-8601 watermark (``...Z`` or with an offset) as an aware datetime; bad text is a clear error."""
    try:
        moment = datetime.fromisoformat(since.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"list_changed: since {since!r} is not an ISO-8601 date-time") from None
    if moment.tzinfo is None:
        raise ValueError(f"list_changed: since {since!r} has no time zone (expected UTC, e.g. ...Z)")
    return moment


def _outcome(result: BulkOutcome) -> ItemOutcome:
    if result.ok:
        return ItemOutcome(True, id=result.id)
    return ItemOutcome(False, id=result.id, error=f"SSM refused the item ({result.status}): {result.message}")


class SsmApiSide:
    """Sage Sales Management as the engine sees it, through the API v4 hook.

    Args:
        hook: the API hook to use (default: ``SalesManagementHook()`` on connection ``ssm_default``).
    """

    def __init__(self, hook: SalesManagementHook | None = None) -> None:
        """Store the hook; nothing is called until the engine asks."""
        self.hook = hook if hook is not None else SalesManagementHook()
        self._lists: ValueLists | None = None

    # --- reads ---------------------------------------------------------------------------------------------

    def api_calls(self) -> int:
        """Every HTTP call this side's hook has sent (logins and retries included), for the run ledger (G7)."""
        return self.hook.calls.total

    def parallel_calls(self) -> int:
        """The connection's ``parallel_calls`` (default 2): create calls in flight at once, within the rate limit."""
        return int(self.hook.settings.parallel_calls)

    def value_lists(self) -> ValueLists:
        """Account statuses, countries, users, sales order statuses and product families (read once)."""
        if self._lists is None:
            self._lists = self._read_value_lists()
        return copy.deepcopy(self._lists)

    def _read_value_lists(self) -> ValueLists:
        lists = ValueLists()
        for attribute, name in _LABELLED_LISTS.items():
            setattr(lists, attribute, self._read_labels(name))
        lists.countries = [
            {"id": int(c["id"]), "descriptionFR": _label(c), "iso2": c.get("iso2")}
            for c in self.hook.value_list("countries")
            if not c.get("deleted")
        ]
        # Deleted users keep their names: a company may still be owned by a user who has left (C6).
        lists.users = {
            int(u["id"]): {"name": u.get("name"), "lastName": u.get("lastName")}
            for u in self.hook.value_list("users")
        }
        return lists

    def list_changed(
        self, endpoint: str, since: str | None, skip: OwnCreates | None = None
    ) -> list[dict[str, Any]]:
        """Every record (deleted ones included) whose ``dateUpdated`` is at or after ``since`` (all when None).

        ``skip``: the unchanged records of our own creates, left out by the API's ``where``.
        """
        clauses = [] if since is None else [where_ge("dateUpdated", _parse_since(since))]
        if skip is not None:
            clauses.append(skip.where())
        return self.hook.list_all(endpoint, where=and_(*clauses) if clauses else None)

    def get_by_ids(self, endpoint: str, ids: list[int]) -> list[dict[str, Any]]:
        """The records with these ids, deleted ones included; unknown ids are left out."""
        wanted = list(dict.fromkeys(int(i) for i in ids))
        return list(self.hook.iter_records_in(endpoint, "id", wanted))

    def find_by_ext_ids(self, endpoint: str, ext_ids: list[str]) -> list[dict[str, Any]]:
        """The live records whose ``extId`` is one of ``ext_ids`` (batched lookups; C1 adoption)."""
        found = self.hook.find_by_ext_ids(endpoint, [str(e) for e in ext_ids])
        return [r for r in found.values() if not r.get("deleted")]

    # --- writes --------------------------------------------------------------------------------------------

    def bulk_create(self, endpoint: str, items: list[dict[str, Any]]) -> list[ItemOutcome]:
        """Create records in bulk calls of the API maximum; one outcome per item, in order.

        A lost response is reconciled by the hook through ``extId`` before anything is re-sent, so items that
        carry one are created once (G5).
        """
        if not items:
            return []
        return [_outcome(r) for r in self.hook.bulk_create(endpoint, items)]

    def bulk_update(self, endpoint: str, items: list[tuple[int, dict[str, Any]]]) -> list[ItemOutcome]:
        """Partially update ``(id, fields)`` items in bulk calls; one outcome per item, in order."""
        if not items:
            return []
        body = [{"id": int(ident), "data": dict(fields)} for ident, fields in items]
        return [_outcome(r) for r in self.hook.bulk_update(endpoint, body)]

    def soft_delete(self, endpoint: str, ids: list[int]) -> list[ItemOutcome]:
        """Soft-delete records (the API has no bulk delete: one ``DELETE`` each); one outcome per id.

        Deleting twice is harmless (the API answers 200), so a delete whose response was lost is simply sent
        again next run. Once a call fails after the hook's retries, the remaining ids are not tried: the API is
        unreachable, and they are planned again next run.
        """
        out: list[ItemOutcome] = []
        for position, ident in enumerate(ids):
            try:
                self.hook.delete(endpoint, int(ident))
            except SsmApiError as exc:
                out.append(ItemOutcome(False, id=int(ident), error=str(exc)))
                continue
            except RetriableSyncError as exc:
                error = f"not deleted, the API is unreachable: {exc}"
                out.extend(ItemOutcome(False, id=int(i), error=error) for i in ids[position:])
                break
            out.append(ItemOutcome(True, id=int(ident)))
        return out

    def ensure_product_family(self, name: str) -> int:
        """The id of the product family ``name``, creating it (``POST /productFamilies``) when missing."""
        lists = self._lists if self._lists is not None else self._load()
        if name in lists.product_families:
            return lists.product_families[name]
        try:
            ident = self.hook.create("productFamilies", {"descriptionFR": name, "descriptionEN": name})
        except WriteOutcomeUnknown:
            # The create may have applied: look again before the engine retries, so the family is made once.
            lists.product_families = self._read_labels("productFamilies")
            if name in lists.product_families:
                return lists.product_families[name]
            raise
        lists.product_families[name] = ident
        return ident

    def _load(self) -> ValueLists:
        self._lists = self._read_value_lists()
        return self._lists

    def _read_labels(self, name: str) -> dict[str, int]:
        """Label -> id of a value list's live items; ascending ids, so the oldest wins a shared label."""
        labels: dict[str, int] = {}
        for item in sorted(self.hook.value_list(name), key=lambda i: int(i["id"])):
            label = _label(item)
            if label is not None and not item.get("deleted"):
                labels.setdefault(label, int(item["id"]))
        return labels

    def upload_product_picture(
        self, product_id: int, name: str, content: bytes, *, new: bool = False
    ) -> None:
        """Make ``content`` the product's only carrousel picture (D3).

        The new picture is uploaded first and the previous carrousel documents are deleted after, so a failure
        never leaves the product without a picture. When a carrousel document already holds these exact bytes
        (a previous run uploaded it, then failed before committing), it is kept instead of uploading again. A
        product this run just created (``new``) has no document: its documents are not listed (a call saved).
        """
        pid = int(product_id)
        digest = hashlib.sha256(content).hexdigest()
        documents = [] if new else [d for d in self.hook.list_product_documents(pid) if d.get("isCarrousel")]
        keep = next((d for d in documents if d.get("sha256") == digest and d.get("name") == name), None)
        if keep is None:
            keep = {"id": self.hook.upload_product_picture(pid, name, content)}
        for doc in documents:
            if str(doc.get("id")) != str(keep.get("id")):
                try:
                    self.hook.delete_product_document(pid, str(doc["id"]))
                except SsmApiError as exc:
                    if exc.code != API_CODE_NOT_FOUND:  # already gone: that is what we wanted
                        raise
