"""The SSM side as one dossier sees it: its own records only, under bare Sage keys (M2).

:class:`DossierSsmSide` wraps any :class:`~sage_sync.engine.sides.SsmSide`. Every ``extId`` going out is encoded
with the dossier's prefix and every ``extId`` coming back decoded (:class:`~.ownership.ExtIdCodec`), so the rules,
the state and the reports speak bare Sage keys. Records of another dossier are left out, and so are records without
``extId`` that belong elsewhere: a company of another dossier's branch, a contact of another dossier's company.

With a single dossier and no prefix the operators use the plain side: nothing changes.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sage_sync.engine.own_creates import OwnCreates
from sage_sync.engine.ownership import Ownership, lookup_id
from sage_sync.engine.sides import ItemOutcome, SsmSide
from sage_sync.mapping.registry import EntitySpec, registry
from sage_sync.mapping.transforms import ValueLists

#: The transform of the field that links a record to its account (contacts, invoices): it names the parent.
_PARENT_LINK = "account_ref"


def _spec_of(endpoint: str) -> EntitySpec | None:
    return next((s for s in registry() if s.endpoint == endpoint), None)


def _parent_link(spec: EntitySpec) -> tuple[str, str] | None:
    """(parent endpoint, SSM link field) of a two-way entity read ``within`` another one (contacts in accounts)."""
    within = spec.mapping.main.within
    if within is None:
        return None
    link = next((f for f in spec.mapping.main.fields if f.transform == _PARENT_LINK and f.ssm), None)
    return (registry()[within].endpoint, link.ssm[0]) if link is not None else None


class DossierSsmSide:
    """An :class:`SsmSide` limited to one dossier's records, speaking bare Sage keys (see the module docstring)."""

    def __init__(self, inner: SsmSide, ownership: Ownership) -> None:
        """Wrap ``inner``; ``ownership`` says which records are this dossier's."""
        self.inner = inner
        self.ownership = ownership
        self._parents: dict[tuple[str, int], bool] = {}

    # --- what is ours ------------------------------------------------------------------------------------------

    def _owns_new(self, spec: EntitySpec | None, rec: dict[str, Any]) -> bool:
        """Whether a record without extId belongs to this dossier: by branch, or by its parent's owner."""
        if spec is None or not spec.two_way or not self.ownership.routed:
            return True
        link = _parent_link(spec)
        if link is None:
            return self.ownership.owns_branch(rec.get("branchId"))
        parent = lookup_id(rec.get(link[1]))
        return parent is None or self._parents.get((link[0], parent), True)

    def _learn_parents(self, spec: EntitySpec | None, records: Iterable[dict[str, Any]]) -> None:
        """Read the parents (accounts) of new records once, to tell whose they are (a contact follows its company)."""
        if spec is None or not spec.two_way or not self.ownership.routed:
            return
        link = _parent_link(spec)
        if link is None:
            return
        endpoint, name = link
        wanted = {
            pid
            for rec in records
            if not rec.get("extId") and (pid := lookup_id(rec.get(name))) is not None
            if (endpoint, pid) not in self._parents
        }
        if not wanted:
            return
        found = self.inner.get_by_ids(endpoint, sorted(wanted))
        parent_spec = _spec_of(endpoint)
        for parent in found:
            ext = parent.get("extId")
            ours = (
                self.ownership.codec.decode(ext) is not None if ext else self._owns_new(parent_spec, parent)
            )
            self._parents[(endpoint, int(parent["id"]))] = ours

    def _own(self, endpoint: str, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The dossier's records among ``records``, with their extIds decoded to Sage keys."""
        if self.ownership.identity:
            return records
        spec = _spec_of(endpoint)
        self._learn_parents(spec, records)
        out: list[dict[str, Any]] = []
        for rec in records:
            ext = rec.get("extId")
            if ext:
                key = self.ownership.codec.decode(str(ext))
                if key is None:
                    continue  # another dossier's record (M2)
                out.append(rec if key == ext else {**rec, "extId": key})
            elif self._owns_new(spec, rec):
                out.append(rec)
        return out

    def _encoded(self, fields: dict[str, Any]) -> dict[str, Any]:
        """The fields with their ``extId`` encoded (raises ``ValueError`` for a key another dossier's prefix claims)."""
        if fields.get("extId") is None or self.ownership.codec.identity:
            return fields
        return {**fields, "extId": self.ownership.codec.encode(str(fields["extId"]))}

    def _send(self, items: list[Any], encode: Any, call: Any) -> list[ItemOutcome]:
        """Encode each item, send the encodable ones in one call, and give the others an error outcome in place."""
        ready: list[Any] = []
        outcomes: list[ItemOutcome | None] = []
        for item in items:
            try:
                ready.append(encode(item))
                outcomes.append(None)
            except ValueError as exc:
                outcomes.append(ItemOutcome(False, error=str(exc)))
        sent = iter(call(ready) if ready else [])
        return [o if o is not None else next(sent) for o in outcomes]

    # --- SsmSide ------------------------------------------------------------------------------------------------

    def value_lists(self) -> ValueLists:
        """The tenant's value lists (shared by every dossier)."""
        return self.inner.value_lists()

    def list_changed(
        self, endpoint: str, since: str | None, skip: OwnCreates | None = None
    ) -> list[dict[str, Any]]:
        """The dossier's records changed since ``since`` (keys decoded; other dossiers' records left out)."""
        return self._own(endpoint, self.inner.list_changed(endpoint, since, skip))

    def get_by_ids(self, endpoint: str, ids: list[int]) -> list[dict[str, Any]]:
        """The dossier's records with these ids (keys decoded)."""
        return self._own(endpoint, self.inner.get_by_ids(endpoint, ids))

    def find_by_ext_ids(self, endpoint: str, ext_ids: list[str]) -> list[dict[str, Any]]:
        """The live records carrying these Sage keys as this dossier's extIds (keys decoded)."""
        codec = self.ownership.codec
        if codec.identity:
            return self.inner.find_by_ext_ids(endpoint, ext_ids)
        encoded = []
        for key in ext_ids:
            try:
                encoded.append(codec.encode(str(key)))
            except ValueError:
                continue  # such a key is never written either (see _send): nothing of ours can carry it
        found = self.inner.find_by_ext_ids(endpoint, encoded) if encoded else []
        return self._own(endpoint, found)

    def bulk_create(self, endpoint: str, items: list[dict[str, Any]]) -> list[ItemOutcome]:
        """Create records with this dossier's extIds; an unencodable key fails its item only."""
        return self._send(items, self._encoded, lambda ready: self.inner.bulk_create(endpoint, ready))

    def bulk_update(self, endpoint: str, items: list[tuple[int, dict[str, Any]]]) -> list[ItemOutcome]:
        """Update records, writing this dossier's extIds; an unencodable key fails its item only."""
        return self._send(
            items,
            lambda item: (item[0], self._encoded(item[1])),
            lambda ready: self.inner.bulk_update(endpoint, ready),
        )

    def soft_delete(self, endpoint: str, ids: list[int]) -> list[ItemOutcome]:
        """Soft-delete records (ids are this dossier's: the engine only knows those)."""
        return self.inner.soft_delete(endpoint, ids)

    def ensure_product_family(self, name: str) -> int:
        """A product family of the tenant (shared by every dossier)."""
        return self.inner.ensure_product_family(name)

    def upload_product_picture(
        self, product_id: int, name: str, content: bytes, *, new: bool = False
    ) -> None:
        """Upload a product picture (D3)."""
        self.inner.upload_product_picture(product_id, name, content, new=new)

    def api_calls(self) -> int:
        """The API calls of the wrapped side (the parents' lookups included)."""
        return self.inner.api_calls()

    def parallel_calls(self) -> int:
        """The wrapped side's."""
        return self.inner.parallel_calls()
