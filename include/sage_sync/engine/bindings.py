"""What the state remembers about a record known to both sides, as frozen values the planners read.

A :class:`Binding` ties a Sage key to an SSM id, with the values both sides held after the last confirmed write
(the three-way merge base), a :class:`Status`, and the ``dateUpdated`` of our own last write (echo detection). A
full reconcile adds what it found on the live SSM record (ADR 0010): the new merge base, the drift and the stray
lines. A :class:`Parent` is an account as its contacts and invoices see it. All of them round-trip through JSON,
because the plan input travels between Airflow tasks as a staged file.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, Literal

Record = dict[str, Any]
"""An SSM record as the API returns it, or a Sage record as canonical values."""


class Status(StrEnum):
    """Where a binding stands."""

    OK = "ok"
    """The last write to SSM was confirmed."""
    FAILED = "failed"
    """The last write failed; the SSM record (if any) is still live and the record is planned again."""
    DELETED = "deleted"
    """The sync soft-deleted the SSM record (Sage deleted the record)."""
    SSM_DELETED = "ssm_deleted"
    """Someone deleted the SSM record in SSM."""


#: Statuses whose SSM record is gone (a failed binding still points at a live record).
DEAD = frozenset({Status.DELETED, Status.SSM_DELETED})


@dataclass(frozen=True)
class BindingScope:
    """Which stored bindings a planner may read, as the state database can select them (ADR 0018).

    A binding is selected when its key is in ``keys``, when a synced field named in ``values`` holds one of the
    texts given for it, when a synced field named in ``links`` is empty or holds no live SSM id of the entity
    given for it, or (``failed_creates``) when it failed without an SSM id. The planner's own test then decides
    among the few selected.
    """

    keys: frozenset[str] = frozenset()
    values: tuple[tuple[str, frozenset[str]], ...] = ()
    links: tuple[tuple[str, str], ...] = ()
    failed_creates: bool = False
    """Also select the failed bindings without SSM id (creates whose response may have been lost, G5)."""

    def size(self) -> int:
        """How many texts the selection names (the state reads every binding when a statement cannot hold them)."""
        return len(self.keys) + sum(len(texts) for _, texts in self.values)


@dataclass(frozen=True)
class StrayLine:
    """A live SSM line no Sage line accounts for (full reconcile): deleted, or left alone and reported."""

    ssm_id: int
    key: str
    ext_id: str | None
    delete: bool
    reason: str


@dataclass(frozen=True)
class Binding:
    """A Sage key's SSM record and what both sides held after the last confirmed write.

    ``reconcile`` (``"live"``: ``synced`` is the live SSM record; ``"gone"``: the record must be re-created),
    ``recorded`` (the synced values the state held), ``drift`` (a readable sentence), ``drift_fields`` and
    ``stray_lines`` are set by a full reconcile only.
    """

    ssm_id: int | None = None
    synced: Record | None = None
    status: Status = Status.OK
    ssm_date_updated: str | None = None
    attempts: int = 0
    reconcile: Literal["live", "gone"] | None = None
    recorded: Record | None = None
    drift: str | None = None
    drift_fields: tuple[str, ...] = ()
    stray_lines: tuple[StrayLine, ...] = ()

    @property
    def live(self) -> bool:
        """True when the binding points at an SSM record that is not deleted."""
        return self.ssm_id is not None and self.status not in DEAD

    @property
    def base(self) -> Record:
        """The merge base: the values both sides held after the last confirmed write (empty when none)."""
        return self.synced or {}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (defaults left out, so a staged plan input stays small)."""
        out: dict[str, Any] = {"ssm_id": self.ssm_id, "synced": self.synced, "status": str(self.status)}
        if self.ssm_date_updated is not None:
            out["ssm_date_updated"] = self.ssm_date_updated
        if self.attempts:
            out["attempts"] = self.attempts
        if self.reconcile is not None:
            out.update(reconcile=self.reconcile, recorded=self.recorded, drift=self.drift)
            out["drift_fields"] = list(self.drift_fields)
        if self.stray_lines:
            out["stray_lines"] = [vars(s) for s in self.stray_lines]
        return out

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Binding:
        """Rebuild from :meth:`to_dict` output."""
        ssm_id = raw.get("ssm_id")
        return cls(
            ssm_id=int(ssm_id) if ssm_id is not None else None,
            synced=raw.get("synced"),
            status=Status(raw.get("status") or Status.OK),
            ssm_date_updated=raw.get("ssm_date_updated"),
            attempts=int(raw.get("attempts") or 0),
            reconcile=raw.get("reconcile"),
            recorded=raw.get("recorded"),
            drift=raw.get("drift"),
            drift_fields=tuple(raw.get("drift_fields") or ()),
            stray_lines=tuple(StrayLine(**s) for s in raw.get("stray_lines") or ()),
        )

    def with_(self, **changes: Any) -> Binding:
        """A copy with ``changes`` (bindings are frozen: the plan input holds values, not shared objects)."""
        return replace(self, **changes)


@dataclass(frozen=True)
class Parent:
    """An account as its contacts and invoices see it: its SSM record and whether it is a prospect."""

    ssm_id: int | None
    is_prospect: int | None
    live: bool

    @property
    def ready(self) -> bool:
        """True when the account has a live SSM record children can attach to."""
        return self.ssm_id is not None and self.live

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"ssm_id": self.ssm_id, "is_prospect": self.is_prospect, "live": self.live}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Parent:
        """Rebuild from :meth:`to_dict` output."""
        return cls(raw.get("ssm_id"), raw.get("is_prospect"), bool(raw.get("live")))


@dataclass(frozen=True)
class Pair:
    """The SSM side of one Sage key in a run (two-way entities).

    ``changed``: its bound SSM record, changed since the last run (not the echo of our own write);
    ``adoptable``: a live unbound SSM record carrying the key as ``extId`` (C1/K1 adoption instead of a duplicate);
    ``reserved``: a record created in SSM for which the key was reserved (C4/K1: insert in Sage, write the key back).
    """

    changed: Record | None = None
    adoptable: Record | None = None
    reserved: Record | None = None


@dataclass
class Pairs:
    """Every key's :class:`Pair` of a run, built up while the SSM records are read."""

    by_key: dict[str, Pair] = field(default_factory=dict)

    def get(self, key: str) -> Pair:
        """The pair of ``key`` (empty when SSM holds nothing for it)."""
        return self.by_key.get(key, Pair())

    def attach(self, key: str, **records: Record) -> None:
        """Attach SSM records to ``key`` (``changed=``, ``adoptable=``, ``reserved=``), replacing earlier ones."""
        self.by_key[key] = replace(self.by_key.get(key, Pair()), **records)

    def offer(self, key: str, **records: Record) -> None:
        """Attach SSM records to ``key`` where nothing is attached yet."""
        current = self.by_key.get(key, Pair())
        self.by_key[key] = replace(
            current, **{k: v for k, v in records.items() if getattr(current, k) is None}
        )

    def keyset(self) -> set[str]:
        """The keys SSM holds something for."""
        return set(self.by_key)
