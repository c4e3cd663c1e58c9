"""Engine settings: C4/C5 defaults, conflict policy (G2) and deletion guard (G4) per entity."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from sage_sync.errors import ConfigurationError
from sage_sync.mapping.registry import Registry, registry

Winner = Literal["sage", "ssm"]

_TEMPLATE_FIELDS = re.compile(r"\{(\w+)(?::[^}]*)?\}")


@dataclass(frozen=True)
class Guard:
    """G4: withhold all deletions of an entity when the Sage snapshot is empty or shrank too much.

    ``ratio`` is the largest share of the previous snapshot one run may delete; ``minimum`` is how many
    deletions are always allowed whatever the ratio (small dossiers).
    """

    ratio: float = 0.5
    minimum: int = 10


@dataclass(frozen=True)
class SyncConfig:
    """Everything the rules need besides the data.

    ``code_template`` builds the Sage code of a company created in SSM (C4): ``{ssm_id}`` makes it deterministic
    for a given SSM id, ``{seq}`` draws the next number of a counter in the state store; either way the code is
    reserved in the state store before the Sage insert.
    """

    admin_user_id: int = 1
    default_branch_id: int = 1
    code_template: str = "C{ssm_id:06d}"
    conflict: dict[str, Winner] = field(default_factory=dict)
    guards: dict[str, Guard] = field(default_factory=dict)
    overlap_seconds: int = 120
    #: Plausibility limits of an invoice line's quantity and unit price: above them the line is reported (G3).
    max_quantity: float = 1_000_000.0
    max_unit_price: float = 10_000_000.0

    def __post_init__(self) -> None:
        """Validate the code template: exactly one of ``{ssm_id}`` / ``{seq}``."""
        names = set(_TEMPLATE_FIELDS.findall(self.code_template))
        if not names or not names <= {"ssm_id", "seq"} or len(names) != 1:
            raise ConfigurationError(
                f"code_template {self.code_template!r} must use exactly one of {{ssm_id}} or {{seq}}"
            )
        for entity, winner in self.conflict.items():
            if winner not in ("sage", "ssm"):
                raise ConfigurationError(f"conflict policy of {entity!r} is {winner!r}; expected sage or ssm")

    def winner(self, entity: str) -> Winner:
        """Who wins a G2 conflict on ``entity`` (Sage by default)."""
        return self.conflict.get(entity, "sage")

    def guard(self, entity: str) -> Guard:
        """The G4 guard of ``entity``."""
        return self.guards.get(entity, Guard())

    def to_dict(self) -> dict[str, Any]:
        """The settings as JSON-ready data."""
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> SyncConfig:
        """Rebuild from :meth:`to_dict` output."""
        data = dict(raw)
        data["guards"] = {k: Guard(**v) for k, v in (data.get("guards") or {}).items()}
        data["conflict"] = dict(data.get("conflict") or {})
        return cls(**data)

    @classmethod
    def from_mappings(cls, entities: Registry | None = None, **overrides: Any) -> SyncConfig:
        """The conflict policy (``policy.conflict``) and guard (``guard``) of every entity (default registry)."""
        specs = entities if entities is not None else registry()
        conflict: dict[str, Winner] = {spec.name: spec.conflict for spec in specs}
        guards = {spec.name: Guard(spec.guard_ratio, spec.guard_minimum) for spec in specs}
        return cls(**{"conflict": conflict, "guards": guards, **overrides})
