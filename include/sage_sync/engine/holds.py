"""Records a first-sync match keeps out of the sync until a person decides (O1), and how the extract applies that.

While a proposal waits (its confidence is below the automatic threshold, or two candidates compete), neither of
its records may be created on the other side, or the first run would make the very duplicate the match is about.
The match step of the run stages the held records (``match.json``); the extract takes them out of the entity's
plan input right before codes are reserved:

* a held Sage key stays in the snapshot (so no C4/K1 code or number is reserved over it) but leaves the created and
  updated lists: it is neither created in SSM nor committed, and comes back as a new row once the match is decided;
* a held SSM record leaves the SSM records read: no code is reserved for it, it is not created in Sage;
* a held account is no parent yet: its contacts and invoices wait (K4, I6), as for any account not synced yet.

A match that is bound writes the key to the SSM record, so the next extract adopts it (C1, K1, D1: the binding and
the Sage-owned fields are written by the usual adoption); a rejected one is released and synced on its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sage_sync.engine.inputs import PlanInput

#: The run-wide staging file the match step writes: proposals, what was bound, and the held records.
MATCH_FILE = "match.json"


@dataclass(frozen=True)
class Holds:
    """Held records by entity: ``sage`` Sage keys, ``ssm`` SSM ids."""

    sage: dict[str, frozenset[str]] = field(default_factory=dict)
    ssm: dict[str, frozenset[int]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return any(self.sage.values()) or any(self.ssm.values())

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (sorted, for stable staging files)."""
        return {
            "sage": {e: sorted(k) for e, k in self.sage.items() if k},
            "ssm": {e: sorted(i) for e, i in self.ssm.items() if i},
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any] | None) -> Holds:
        """Rebuild from :meth:`to_dict` output (None: nothing held)."""
        raw = raw or {}
        return cls(
            {str(e): frozenset(str(k) for k in keys) for e, keys in (raw.get("sage") or {}).items()},
            {str(e): frozenset(int(i) for i in ids) for e, ids in (raw.get("ssm") or {}).items()},
        )


def apply_holds(inp: PlanInput, holds: Holds) -> int:
    """Take the held records out of ``inp`` (see the module docstring); returns how many were taken out."""
    keys = holds.sage.get(inp.entity, frozenset())
    ids = holds.ssm.get(inp.entity, frozenset())
    before = len(inp.created) + len(inp.updated) + len(inp.ssm)
    if keys:
        inp.created = [k for k in inp.created if k not in keys]
        inp.updated = {k: v for k, v in inp.updated.items() if k not in keys}
        inp.ssm_by_ext = {k: v for k, v in inp.ssm_by_ext.items() if k not in keys}
    if ids:
        inp.ssm = [r for r in inp.ssm if int(r["id"]) not in ids]
    for code in holds.sage.get("accounts", frozenset()):
        inp.parents.pop(code, None)
    return before - (len(inp.created) + len(inp.updated) + len(inp.ssm))
