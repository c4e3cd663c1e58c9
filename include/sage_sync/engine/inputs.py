"""The serialisable input of a planning step: what both sides changed, and what the state remembers."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from sage_sync.mapping.transforms import ValueLists


@dataclass
class PlanInput:
    """Everything a per-entity rule function needs; plain data so an orchestrator can pass it between steps.

    ``sage`` holds every current Sage record by key (canonical names); ``created`` / ``updated`` / ``deleted``
    come from the snapshot diff against the committed snapshot (``deleted`` carries the previous rows).
    ``ssm`` holds the SSM records changed since the watermark plus the ones pending from earlier runs;
    ``ssm_by_ext`` the live SSM records found by ``extId`` for Sage keys without a binding (C1 adoption).
    ``bindings`` maps Sage key -> ``{"ssm_id", "synced", "status", "ssm_date_updated"}``; ``reserved`` maps an
    SSM id (as text) to the Sage key reserved for it (C4, K1). ``parents`` describes the accounts (for contacts
    and invoices): code -> ``{"ssm_id", "is_prospect", "live"}``; ``products`` maps article ref -> SSM id (invoice
    lines); ``line_bindings`` maps an invoice line id -> ``{"ssm_id", "synced"}``; ``lines_by_ext`` the live SSM
    lines found by ``extId`` for unbound lines of changed invoices.
    """

    entity: str
    run_at: str
    lists: ValueLists
    sage: dict[str, dict[str, Any]] = field(default_factory=dict)
    created: list[str] = field(default_factory=list)
    updated: dict[str, list[str]] = field(default_factory=dict)
    deleted: dict[str, dict[str, Any]] = field(default_factory=dict)
    unchanged: int = 0
    previous_size: int = 0
    ssm: list[dict[str, Any]] = field(default_factory=list)
    ssm_by_ext: dict[str, dict[str, Any]] = field(default_factory=dict)
    bindings: dict[str, dict[str, Any]] = field(default_factory=dict)
    reserved: dict[str, str] = field(default_factory=dict)
    parents: dict[str, dict[str, Any]] = field(default_factory=dict)
    products: dict[str, int] = field(default_factory=dict)
    line_bindings: dict[str, dict[str, Any]] = field(default_factory=dict)
    lines_by_ext: dict[str, dict[str, Any]] = field(default_factory=dict)
    quarantined: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        out = asdict(self)
        out["lists"] = self.lists.to_dict()
        return out

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> PlanInput:
        """Rebuild from :meth:`to_dict` output."""
        data = dict(raw)
        data["lists"] = ValueLists.from_dict(raw["lists"])
        return cls(**data)

    def live_binding(self, key: str) -> dict[str, Any] | None:
        """The binding of ``key`` when it points at a live SSM record."""
        b = self.bindings.get(key)
        if b and b.get("ssm_id") is not None and b.get("status") not in ("ssm_deleted", "deleted"):
            return b
        return None
