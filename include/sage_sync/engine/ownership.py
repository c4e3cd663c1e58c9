"""Which SSM records belong to a dossier (M2): the ``extId`` prefix codec and the routing of new companies.

A deployment syncing several Sage dossiers with one SSM tenant tells their records apart by the ``extId``: the Sage
key prefixed per dossier (``LY-C000123`` for dossier ``lyon`` with prefix ``LY-``; an empty prefix for a single
dossier, so its extIds are the bare keys). Every ``extId`` the sync writes, looks up or reads goes through one
:class:`ExtIdCodec`, so the engine only ever sees bare Sage keys and never another dossier's record.

Records without an ``extId`` belong to no dossier yet. A company created in SSM (C4, P1) goes to the dossier its
SSM branch maps to, or to the deployment's default dossier, never to two (:class:`Ownership`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ExtIdCodec:
    """Sage key <-> SSM ``extId`` of one dossier.

    ``prefix`` is the dossier's own prefix (empty: the bare keys); ``others`` the prefixes of the deployment's other
    dossiers. A dossier with an empty prefix (a deployment that grew from one dossier keeps its extIds) owns every
    ``extId`` the others' prefixes do not claim, and may not send a key that starts with one of them.
    """

    prefix: str = ""
    others: tuple[str, ...] = ()

    @property
    def identity(self) -> bool:
        """True when keys and extIds are the same text (a single dossier)."""
        return not self.prefix and not self.others

    def encode(self, key: str) -> str:
        """The ``extId`` of Sage key ``key``.

        Raises:
            ValueError: the dossier has an empty prefix and ``key`` would read as another dossier's extId.
        """
        if not self.prefix:
            claimed = next((p for p in self.others if p and key.startswith(p)), None)
            if claimed is not None:
                raise ValueError(
                    f"Sage key {key!r} starts with {claimed!r}, another dossier's extId prefix: it cannot be "
                    "written to SSM without being taken for that dossier's record (M2); give this dossier a prefix"
                )
        return f"{self.prefix}{key}"

    def decode(self, ext_id: str | None) -> str | None:
        """The Sage key of an ``extId`` of this dossier, or None (no extId, or another dossier's)."""
        if ext_id is None or ext_id == "":
            return None
        text = str(ext_id)
        if self.prefix:
            return (
                text[len(self.prefix) :]
                if text.startswith(self.prefix) and len(text) > len(self.prefix)
                else None
            )
        if any(p and text.startswith(p) for p in self.others):
            return None
        return text


def lookup_id(value: Any) -> int | None:
    """The id of an SSM lookup (``{"id": 3, "value": ...}``) or a bare id; None when unset."""
    if isinstance(value, dict):
        value = value.get("id")
    if value is None or isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True)
class Ownership:
    """The records of one dossier: its codec and, in a deployment of several dossiers, its SSM branches.

    ``branches`` are the branches whose new companies belong to this dossier; ``claimed`` every branch some dossier
    of the deployment lists; ``default`` whether this dossier takes the new companies of the other branches.
    ``routed`` is False for a single dossier: every company is its own.
    """

    codec: ExtIdCodec = field(default_factory=ExtIdCodec)
    branches: frozenset[int] = frozenset()
    claimed: frozenset[int] = frozenset()
    default: bool = False
    routed: bool = False

    def __init__(
        self,
        codec: ExtIdCodec | None = None,
        branches: frozenset[int] | None = None,
        claimed: frozenset[int] | None = None,
        default: bool = False,
    ) -> None:
        """Routing applies when ``branches`` is given (several dossiers); otherwise every company is ours."""
        object.__setattr__(self, "codec", codec or ExtIdCodec())
        object.__setattr__(self, "branches", frozenset(branches or ()))
        object.__setattr__(self, "claimed", frozenset(claimed or ()) | frozenset(branches or ()))
        object.__setattr__(self, "default", default)
        object.__setattr__(self, "routed", branches is not None)

    @property
    def identity(self) -> bool:
        """True when nothing is filtered or rewritten (a single dossier without prefix)."""
        return self.codec.identity and not self.routed

    def owns_branch(self, branch: Any) -> bool:
        """Whether a new company of SSM branch ``branch`` (an id or a lookup) belongs to this dossier (M2)."""
        if not self.routed:
            return True
        ident = lookup_id(branch)
        if ident is not None and ident in self.branches:
            return True
        return self.default and (ident is None or ident not in self.claimed)
