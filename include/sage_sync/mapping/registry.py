"""The entity registry: what each synced entity is, read once from the mapping YAML files.

One YAML file per entity in ``entities/`` is the only place an entity is defined. Its ``sync`` block says how it
is synced: the direction, the entities it waits for, its quality suites; its ``ssm`` block the endpoint and bulk
limit; ``guard`` and ``policy`` the G4 guard and the G2 conflict policy. Everything else (the DAG's task groups,
the engine's run order, the report's sections, the bulk chunk sizes) reads this registry.

Importing this module reads nothing; :func:`registry` parses the files on first use (a few milliseconds), so the
DAG file may call it at parse time.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

import yaml

from sage_sync.errors import ConfigurationError
from sage_sync.mapping.loader import DEFAULT_DIR, parse_mapping
from sage_sync.mapping.model import EntityMapping, SsmTarget

Direction = Literal["two_way", "sage_to_ssm"]
Winner = Literal["sage", "ssm"]
DIRECTIONS: tuple[str, ...] = ("two_way", "sage_to_ssm")


@dataclass(frozen=True)
class EntitySpec:
    """One synced entity: its mapping and how it is synced.

    ``depends_on`` are the entities whose commit it waits for (contacts attach to accounts' SSM ids; invoice lines
    reference products). ``suite`` validates the Sage snapshot before it goes to SSM; ``to_sage_suite`` the rows a
    two-way entity writes back to Sage. ``guard`` is the G4 guard (largest share of the snapshot one run may delete,
    deletions always allowed); ``conflict`` who wins a G2 conflict by default.
    """

    name: str
    mapping: EntityMapping
    direction: Direction
    depends_on: tuple[str, ...]
    suite: str
    to_sage_suite: str | None
    guard_ratio: float
    guard_minimum: int
    conflict: Winner
    text_key: tuple[str, ...] = ()
    assemble: str | None = None

    @property
    def two_way(self) -> bool:
        """True when SSM changes flow back to Sage (customers/prospects, contacts)."""
        return self.direction == "two_way"

    @property
    def endpoint(self) -> str:
        """The SSM endpoint the entity's records go to."""
        return self.mapping.ssm.endpoint

    @property
    def bulk_max(self) -> int:
        """Items per SSM bulk call (the API allows 200; products 100)."""
        return self.mapping.ssm.bulk_max

    @property
    def key(self) -> tuple[str, ...]:
        """The canonical fields of a record's text key (``C001``, ``C001/2``): ``sync.key``, else the main key."""
        return self.text_key or self.mapping.main.key

    @property
    def lines(self) -> SsmTarget | None:
        """The SSM target of the entity's lines (invoices: sales order lines), or None."""
        return self.mapping.ssm.lines

    @property
    def lines_entity(self) -> str | None:
        """The name under which the state keeps the lines' bindings (``invoice_lines``), or None."""
        return self.mapping.ssm.lines.binding if self.mapping.ssm.lines is not None else None


@dataclass(frozen=True)
class Registry:
    """Every entity, in dependency order (an entity comes after those it waits for)."""

    specs: tuple[EntitySpec, ...]

    def __iter__(self) -> Iterator[EntitySpec]:
        return iter(self.specs)

    def __getitem__(self, name: str) -> EntitySpec:
        for spec in self.specs:
            if spec.name == name:
                return spec
        raise ConfigurationError(f"unknown entity {name!r}; expected one of {', '.join(self.names)}")

    def __contains__(self, name: object) -> bool:
        return any(spec.name == name for spec in self.specs)

    @property
    def names(self) -> tuple[str, ...]:
        """The entity names in dependency order."""
        return tuple(spec.name for spec in self.specs)

    @property
    def two_way(self) -> tuple[str, ...]:
        """The entities synced both ways."""
        return tuple(spec.name for spec in self.specs if spec.two_way)

    def endpoint(self, entity: str) -> str:
        """The SSM endpoint an entity, or an entity's lines (``invoice_lines``), is written to."""
        for spec in self.specs:
            if spec.name == entity:
                return spec.endpoint
            if spec.lines is not None and spec.lines_entity == entity:
                return spec.lines.endpoint
        raise ConfigurationError(f"unknown entity {entity!r}; expected one of {', '.join(self.names)}")

    def bulk_limits_by_endpoint(self) -> dict[str, int]:
        """Items per bulk call of every SSM endpoint the entities write (their lines' included)."""
        out = {spec.endpoint: spec.bulk_max for spec in self.specs}
        out.update(
            {spec.lines.endpoint: spec.lines.bulk_max for spec in self.specs if spec.lines is not None}
        )
        return out

    def bulk_limit(self, entity: str) -> int:
        """Items per bulk call for an entity or an entity's lines."""
        for spec in self.specs:
            if spec.name == entity:
                return spec.bulk_max
            if spec.lines is not None and spec.lines_entity == entity:
                return spec.lines.bulk_max
        raise ConfigurationError(f"unknown entity {entity!r}; expected one of {', '.join(self.names)}")


def _spec(raw: dict[str, Any], where: str) -> EntitySpec:
    mapping = parse_mapping(raw, where)
    sync = raw.get("sync")
    if not isinstance(sync, dict):
        raise ConfigurationError(f"{where}: missing the `sync` block (direction, depends_on, quality)")
    direction = sync.get("direction")
    if direction not in DIRECTIONS:
        raise ConfigurationError(f"{where}: sync.direction is {direction!r}; expected one of {DIRECTIONS}")
    quality = sync.get("quality") or {}
    if not isinstance(quality, dict) or not quality.get("suite"):
        raise ConfigurationError(f"{where}: sync.quality.suite names the entity's quality suite")
    if direction == "two_way" and not quality.get("to_sage"):
        raise ConfigurationError(
            f"{where}: a two-way entity needs sync.quality.to_sage (rows written to Sage)"
        )
    guard = raw.get("guard") or {}
    policy = raw.get("policy") or {}
    conflict = {"sage_wins": "sage", "ssm_wins": "ssm", None: "sage"}.get(policy.get("conflict"))
    if conflict is None:
        raise ConfigurationError(
            f"{where}: policy.conflict is {policy.get('conflict')!r}; expected sage_wins or ssm_wins"
        )
    return EntitySpec(
        name=mapping.entity,
        mapping=mapping,
        direction=direction,
        depends_on=tuple(str(d) for d in sync.get("depends_on") or ()),
        suite=str(quality["suite"]),
        to_sage_suite=str(quality["to_sage"]) if quality.get("to_sage") else None,
        guard_ratio=float(guard.get("ratio", 0.5)),
        guard_minimum=int(guard.get("minimum", 10)),
        conflict=conflict,  # type: ignore[arg-type]  # one of the two literals above
        text_key=tuple(str(k) for k in sync.get("key") or ()),
        assemble=str(sync["assemble"]) if sync.get("assemble") else None,
    )


def _dependency_order(specs: dict[str, EntitySpec]) -> tuple[EntitySpec, ...]:
    """Entities after those they wait for; among the ready ones, by name (a stable, readable order)."""
    for spec in specs.values():
        unknown = [d for d in spec.depends_on if d not in specs]
        if unknown:
            raise ConfigurationError(f"entity {spec.name!r} depends on unknown {', '.join(unknown)}")
    ordered: list[EntitySpec] = []
    done: set[str] = set()
    while len(ordered) < len(specs):
        ready = sorted(n for n, s in specs.items() if n not in done and set(s.depends_on) <= done)
        if not ready:
            cycle = sorted(set(specs) - done)
            raise ConfigurationError(f"entities {', '.join(cycle)} wait for each other (a dependency cycle)")
        ordered.append(specs[ready[0]])
        done.add(ready[0])
    return tuple(ordered)


@cache
def registry(folder: Path | None = None) -> Registry:
    """The entities defined by the mapping files of ``folder`` (default: the packaged mappings)."""
    where = folder or DEFAULT_DIR
    specs: dict[str, EntitySpec] = {}
    for path in sorted(where.glob("*.yaml")):
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        if not isinstance(raw, dict):
            raise ConfigurationError(f"{path}: expected a mapping document")
        spec = _spec(raw, str(path))
        if spec.name != path.stem:
            raise ConfigurationError(f"{path}: entity {spec.name!r} must live in {spec.name}.yaml")
        specs[spec.name] = spec
    if not specs:
        raise ConfigurationError(f"no entity mapping (*.yaml) in {where}")
    return Registry(_dependency_order(specs))


def entity_names() -> tuple[str, ...]:
    """The synced entities, in dependency order (accounts, contacts, products, invoices)."""
    return registry().names
