"""Entity mappings as data: Sage physical columns <-> canonical fields <-> SSM fields.

The YAML files in ``entities/`` are the single place where Sage table and column names appear; code reads them
through these classes and speaks canonical field names everywhere else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

Owner = Literal["sage", "both", "ssm"]
DType = Literal["string", "int", "decimal", "date", "datetime"]

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

PANDAS_DTYPES: dict[str, str] = {
    "string": "string",
    "int": "Int64",
    "decimal": "Float64",
    "date": "datetime64[us]",
    "datetime": "datetime64[us]",
}


def check_identifier(name: str, what: str) -> str:
    """Return ``name`` if it is a plain SQL identifier, else raise ``ValueError`` naming ``what``."""
    if not _IDENTIFIER.match(name):
        raise ValueError(f"{what} {name!r} is not a plain identifier (letters, digits, underscore)")
    return name


@dataclass(frozen=True)
class FieldMap:
    """One canonical field of an entity and where it lives on each side."""

    name: str
    source: str
    dtype: DType
    sage: str | None = None
    length: int | None = None
    ssm: tuple[str, ...] = ()
    owner: Owner = "sage"
    transform: str | None = None
    compare: bool = True
    required: bool = False
    #: Integer width of the Sage column (16: smallint, 32: int); writes outside it are refused.
    bits: int = 32

    @property
    def pandas_dtype(self) -> str:
        """The pandas dtype a snapshot column of this field has."""
        return PANDAS_DTYPES[self.dtype]


@dataclass(frozen=True)
class SageSource:
    """One Sage table read for an entity, with its canonical key and equality filters."""

    name: str
    table: str
    key: tuple[str, ...]
    filter: dict[str, tuple[int | str, ...]]
    fields: tuple[FieldMap, ...]
    #: Keep only the rows of this entity's records (joined on the first key field): contacts ``within`` accounts.
    within: str | None = None

    def field(self, name: str) -> FieldMap:
        """The field called ``name`` in this source."""
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"source {self.name!r} has no field {name!r}")

    @property
    def sage_columns(self) -> dict[str, str]:
        """Canonical name -> physical Sage column, in mapping order."""
        return {f.name: f.sage for f in self.fields if f.sage}


@dataclass(frozen=True)
class SsmTarget:
    """Where an entity goes in SSM."""

    endpoint: str
    zapier_entity: str
    bulk_max: int
    ext_id: str | None = None
    lines: SsmTarget | None = None
    #: For lines: the Sage source they are read from, and the name the state keeps their bindings under.
    source: str | None = None
    binding: str | None = None


@dataclass(frozen=True)
class EntityMapping:
    """The whole mapping of one entity."""

    entity: str
    sources: dict[str, SageSource]
    ssm: SsmTarget
    write_source: str | None = None
    write_fixed: dict[str, int | str] = field(default_factory=dict)
    derived: tuple[FieldMap, ...] = ()

    @property
    def main(self) -> SageSource:
        """The first source: the one whose key is the entity's natural key."""
        return next(iter(self.sources.values()))

    @property
    def write(self) -> SageSource:
        """The source written back to Sage (raises if the entity is read-only in Sage)."""
        if self.write_source is None:
            raise ValueError(f"entity {self.entity!r} is never written to Sage")
        return self.sources[self.write_source]

    def ssm_fields(self, source: str | None = None) -> dict[str, tuple[str, ...]]:
        """Canonical name -> SSM field names for the fields of ``source`` (default: main) and derived fields."""
        src = self.sources[source] if source else self.main
        out = {f.name: f.ssm for f in src.fields if f.ssm}
        if source is None or source == self.main.name:
            out.update({f.name: f.ssm for f in self.derived if f.ssm})
        return out
