"""Load entity mappings from YAML (packaged defaults, or a deployment's own folder)."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml

from sage_sync.errors import ConfigurationError
from sage_sync.mapping.model import (
    PANDAS_DTYPES,
    EntityMapping,
    FieldMap,
    SageSource,
    SsmTarget,
    check_identifier,
)

DEFAULT_DIR = Path(__file__).parent / "entities"


def _as_tuple(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(str(v) for v in value)


def _field(raw: dict[str, Any], default_source: str, where: str) -> FieldMap:
    name = check_identifier(str(raw["name"]), f"{where}: field name")
    dtype = raw.get("dtype", "string")
    if dtype not in PANDAS_DTYPES:
        raise ConfigurationError(f"{where}: field {name!r} has unknown dtype {dtype!r}")
    sage = raw.get("sage")
    if sage is not None:
        check_identifier(str(sage), f"{where}: Sage column of {name!r}")
    owner = raw.get("owner", "sage")
    if owner not in ("sage", "both", "ssm"):
        raise ConfigurationError(f"{where}: field {name!r} has unknown owner {owner!r}")
    bits = raw.get("bits", 32)
    if bits not in (16, 32) or (dtype != "int" and "bits" in raw):
        raise ConfigurationError(f"{where}: field {name!r}: bits must be 16 or 32, on an int field only")
    return FieldMap(
        name=name,
        source=str(raw.get("source", default_source)),
        dtype=dtype,
        sage=sage,
        length=raw.get("length"),
        ssm=_as_tuple(raw.get("ssm")),
        owner=owner,
        transform=raw.get("transform"),
        compare=bool(raw.get("compare", True)),
        required=bool(raw.get("required", False)),
        bits=int(bits),
    )


def _target(raw: dict[str, Any]) -> SsmTarget:
    lines = raw.get("lines")
    return SsmTarget(
        endpoint=str(raw["endpoint"]),
        zapier_entity=str(raw["zapier_entity"]),
        bulk_max=int(raw.get("bulk_max", 200)),
        ext_id=raw.get("ext_id"),
        lines=_target(lines) if lines else None,
        source=raw.get("source"),
        binding=raw.get("binding"),
    )


def parse_mapping(raw: dict[str, Any], where: str = "mapping") -> EntityMapping:
    """Build an :class:`EntityMapping` from its YAML document, validating names and references."""
    try:
        entity = str(raw["entity"])
        raw_sources: dict[str, Any] = raw["sage"]["sources"]
        first = next(iter(raw_sources))
        fields = [_field(f, first, where) for f in raw.get("fields", [])]
        sources: dict[str, SageSource] = {}
        for name, src in raw_sources.items():
            own = tuple(f for f in fields if f.source == name)
            key = _as_tuple(src["key"])
            known = {f.name for f in own}
            filters = {str(k): tuple(v) for k, v in (src.get("filter") or {}).items()}
            for col in (*key, *filters):
                if col not in known:
                    raise ConfigurationError(f"{where}: source {name!r} uses unknown field {col!r}")
            sources[name] = SageSource(
                name=name,
                table=check_identifier(str(src["table"]), f"{where}: table of {name!r}"),
                key=key,
                filter=filters,
                fields=own,
                within=src.get("within"),
            )
        write = raw["sage"].get("write") or {}
        derived = tuple(_field(f, first, where) for f in raw.get("derived", []))
        return EntityMapping(
            entity=entity,
            sources=sources,
            ssm=_target(raw["ssm"]),
            write_source=write.get("source"),
            write_fixed=dict(write.get("fixed") or {}),
            derived=derived,
        )
    except (KeyError, TypeError, StopIteration) as exc:
        raise ConfigurationError(f"{where}: malformed mapping ({exc!r})") from exc
    except ValueError as exc:
        raise ConfigurationError(str(exc)) from exc


@cache
def load_mapping(entity: str, folder: Path | None = None) -> EntityMapping:
    """Load the mapping of ``entity`` from ``folder`` (a deployment's own) or the packaged defaults."""
    path = (folder or DEFAULT_DIR) / f"{entity}.yaml"
    if not path.exists() and folder is not None:
        path = DEFAULT_DIR / f"{entity}.yaml"
    if not path.exists():
        known = ", ".join(sorted(p.stem for p in DEFAULT_DIR.glob("*.yaml")))
        raise ConfigurationError(f"unknown entity {entity!r}; expected one of {known}")
    with path.open(encoding="utf-8") as fh:
        return parse_mapping(yaml.safe_load(fh), where=str(path))
