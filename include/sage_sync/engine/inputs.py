"""The serialisable input of a planning step: what both sides changed, and what the state remembers."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

from sage_sync.engine.bindings import Binding, Parent, Record
from sage_sync.mapping.transforms import ValueLists

if TYPE_CHECKING:
    from sage_sync.engine.snapshot import SageLines


@dataclass
class PlanInput:
    """Everything a per-entity rule function needs; plain data so an orchestrator can pass it between steps.

    ``sage`` holds every current Sage record by key (canonical names); ``created`` / ``updated`` / ``deleted``
    come from the snapshot diff against the committed snapshot (``deleted`` carries the previous rows).
    ``ssm`` holds the SSM records changed since the watermark plus the ones pending from earlier runs;
    ``ssm_by_ext`` the live SSM records found by ``extId`` for Sage keys without a binding (C1 adoption).
    ``bindings`` maps Sage key -> :class:`~sage_sync.engine.bindings.Binding`; ``reserved`` maps an SSM id (as
    text) to the Sage key reserved for it (C4, K1). ``parents`` describes the accounts (for contacts and invoices):
    code -> :class:`~sage_sync.engine.bindings.Parent`; ``products`` maps article ref -> SSM id (invoice lines);
    ``line_bindings`` maps an invoice line id -> its binding; ``lines_by_ext`` the live SSM lines found by
    ``extId`` for unbound lines of changed invoices.

    The input may be narrowed (:meth:`narrow`) to the records its planner reads: ``sage``, ``bindings`` and
    ``line_bindings`` then hold only those, and ``sage_size`` still counts every current record.
    """

    entity: str
    run_at: str
    lists: ValueLists
    sage: dict[str, Record] = field(default_factory=dict)
    created: list[str] = field(default_factory=list)
    updated: dict[str, list[str]] = field(default_factory=dict)
    deleted: dict[str, Record] = field(default_factory=dict)
    unchanged: int = 0
    previous_size: int = 0
    ssm: list[Record] = field(default_factory=list)
    ssm_by_ext: dict[str, Record] = field(default_factory=dict)
    bindings: dict[str, Binding] = field(default_factory=dict)
    reserved: dict[str, str] = field(default_factory=dict)
    parents: dict[str, Parent] = field(default_factory=dict)
    products: dict[str, int] = field(default_factory=dict)
    line_bindings: dict[str, Binding] = field(default_factory=dict)
    lines_by_ext: dict[str, Record] = field(default_factory=dict)
    quarantined: dict[str, str] = field(default_factory=dict)
    #: A1: this run's approval of the entity's guarded deletions (a count or a set fingerprint), or None.
    approved_deletions: str | None = None
    #: G5: keys whose SSM create failed (maybe applied, response lost) and that Sage no longer has: their SSM
    #: record, when one exists, is in ``ssm_by_ext`` and must not outlive them.
    orphans: list[str] = field(default_factory=list)
    #: C1: SSM id -> who created it (``salesRepIdCreated``), for the records bound to keys a second live SSM
    #: record also carries: a twin made by the same user (the integration) is retired, a user's is only reported.
    creators: dict[int, int | None] = field(default_factory=dict)
    #: How many records the Sage read returned, quarantined ones included (-1: as many as ``sage`` holds). A read
    #: of quarantined rows only is not an empty read: G4 does not take it for a broken one.
    sage_size: int = -1

    def __post_init__(self) -> None:
        """Count the Sage records when the caller did not."""
        if self.sage_size < 0:
            self.sage_size = len(self.sage)

    def narrow(self, keys: set[str], lines: SageLines | None = None) -> None:
        """Keep only what the planner reads: the records, bindings and lines of ``keys`` and of the changes.

        The changed, deleted and orphaned keys are always kept; so are the bindings of the SSM records read this
        run (an echo of our own write is known as one by its binding) and the line bindings of the kept invoices
        (their current lines, read from ``lines`` when given, and the bound lines they no longer have). An
        unchanged record of a large dossier is then neither staged nor read again by the later steps (ADR 0018).
        """
        keep = set(keys) | set(self.created) | set(self.updated) | set(self.deleted) | set(self.orphans)
        listed = {int(r["id"]) for r in self.ssm}
        self.sage = {k: v for k, v in self.sage.items() if k in keep}
        self.bindings = {
            k: b
            for k, b in self.bindings.items()
            if k in keep or (b.ssm_id is not None and int(b.ssm_id) in listed)
        }
        if self.line_bindings:
            current = (
                set(lines.line_ids(self.sage))
                if lines is not None
                else {str(line["line_id"]) for row in self.sage.values() for line in row.get("lines") or []}
            )
            self.line_bindings = {
                k: b
                for k, b in self.line_bindings.items()
                if k in current or (b.base.get("piece") is not None and str(b.base["piece"]) in keep)
            }

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["lists"] = self.lists.to_dict()
        out["bindings"] = {k: b.to_dict() for k, b in self.bindings.items()}
        out["line_bindings"] = {k: b.to_dict() for k, b in self.line_bindings.items()}
        out["parents"] = {k: p.to_dict() for k, p in self.parents.items()}
        return out

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> PlanInput:
        """Rebuild from :meth:`to_dict` output."""
        data = dict(raw)
        data["lists"] = ValueLists.from_dict(raw["lists"])
        data["bindings"] = {k: Binding.from_dict(b) for k, b in (raw.get("bindings") or {}).items()}
        data["line_bindings"] = {k: Binding.from_dict(b) for k, b in (raw.get("line_bindings") or {}).items()}
        data["parents"] = {k: Parent.from_dict(p) for k, p in (raw.get("parents") or {}).items()}
        data["creators"] = {int(k): v for k, v in (raw.get("creators") or {}).items()}
        return cls(**data)

    def live_binding(self, key: str) -> Binding | None:
        """The binding of ``key`` when it points at a live SSM record."""
        b = self.bindings.get(key)
        return b if b is not None and b.live else None

    def binding(self, key: str) -> Binding:
        """The binding of ``key``, or an empty one (no SSM record) when the key was never bound."""
        return self.bindings.get(key) or Binding()

    def parent(self, code: str) -> Parent | None:
        """The account ``code`` as its contacts and invoices see it, or None when Sage does not have it."""
        return self.parents.get(code)
