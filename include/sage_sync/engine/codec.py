"""Field-level conversion between canonical records and SSM records, driven by the YAML mappings.

Canonical records are plain dicts keyed by canonical field names (the Sage hook renames the physical columns);
SSM records are the API's dicts. Values are compared in SSM space so that, e.g., "france" and "France" are the
same country and never cause a write.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import pandas as pd

from sage_sync.mapping import transforms as tf
from sage_sync.mapping.model import EntityMapping, FieldMap
from sage_sync.mapping.registry import registry
from sage_sync.mapping.sage_values import value_problem
from sage_sync.mapping.transforms import ValueLists


def clean(value: Any) -> Any:
    """Plain-Python form of a cell: NA/NaN and empty text become None, numpy scalars become int/float."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    kind = type(value)
    if kind is str:
        return value if value.strip() else None
    if kind is int or kind is bool:
        return value
    if kind is float:
        return None if math.isnan(value) else value
    if isinstance(value, (pd.Timestamp, datetime, date)):
        return value.isoformat()
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    if isinstance(value, str):
        return value if value.strip() else None
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def ssm_scalar(value: Any) -> Any:
    """The comparable form of an SSM value: ``{"id": n, ...}`` lookups become ``n``, empty text None."""
    if isinstance(value, dict) and "id" in value:
        return value["id"]
    if isinstance(value, str) and not value.strip():
        return None
    return value


@dataclass(frozen=True)
class Spec:
    """One synced field: canonical name, SSM field, transform, owner, and its mapping (the Sage column)."""

    name: str
    ssm: str
    transform: str | None
    owner: str
    field: FieldMap

    @classmethod
    def of(cls, f: FieldMap) -> Spec:
        """The spec of a mapped field (``ssm`` empty when the field never goes to SSM)."""
        return cls(f.name, f.ssm[0] if f.ssm else "", f.transform, f.owner, f)


def synced_specs(mapping: EntityMapping, *, skip: tuple[str, ...] = ()) -> list[Spec]:
    """The compared fields of the main source that have an SSM field, minus ``skip``."""
    return [Spec.of(f) for f in mapping.main.fields if f.ssm and f.compare and f.name not in skip]


def to_ssm(spec: Spec, value: Any, lists: ValueLists) -> tuple[Any, str | None]:
    """Canonical value -> SSM value (and a non-blocking warning, e.g. an unknown country)."""
    value = clean(value)
    if spec.transform == "account_status":
        return tf.status_to_ssm(value, lists), None
    if spec.transform == "country":
        return tf.country_to_ssm(value, lists)
    if spec.transform == "gender":
        return tf.gender_to_ssm(value), None
    return value, None


class UnmappedValue(Exception):
    """An SSM value with no Sage equivalent (e.g. an account status other than Client/Prospect)."""


def from_ssm(spec: Spec, raw: Any, lists: ValueLists) -> Any:
    """SSM value -> canonical value; raises :class:`UnmappedValue` when Sage has no equivalent."""
    value = ssm_scalar(raw)
    if spec.transform == "account_status":
        out = tf.status_from_ssm(value, lists)
        if out is None:
            raise UnmappedValue(f"status {value!r} is neither Client nor Prospect")
        return out
    if spec.transform == "country":
        return tf.country_from_ssm(value, lists)
    if spec.transform == "gender":
        return tf.gender_from_ssm(value)
    return value


def same(spec: Spec, canonical: Any, ssm_value: Any, lists: ValueLists) -> bool:
    """Whether a canonical value and an SSM value are the same in SSM space."""
    mine, _ = to_ssm(spec, canonical, lists)
    return _eq(mine, ssm_scalar(ssm_value))


def same_canonical(spec: Spec, a: Any, b: Any, lists: ValueLists) -> bool:
    """Whether two canonical values are the same once mapped to SSM (e.g. "FRANCE" and "France")."""
    left, _ = to_ssm(spec, a, lists)
    right, _ = to_ssm(spec, b, lists)
    if left is None and right is None:
        return _eq(clean(a), clean(b))
    return _eq(left, right)


def _eq(a: Any, b: Any) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return abs(float(a) - float(b)) < 1e-9
    return bool(a == b)


def check_sage_value(entity: str, key: str, spec: Spec, value: Any) -> str | None:
    """G3 blocking check before a Sage write (:func:`~sage_sync.mapping.sage_values.value_problem`), or None."""
    problem = value_problem(spec.field, value)
    return f"{entity} {key}: {spec.name} {problem} ({value!r})" if problem else None


def mapping(entity: str) -> EntityMapping:
    """The mapping of ``entity`` (from the entity registry)."""
    return registry()[entity].mapping


def key_fields(entity: str, key: str) -> dict[str, Any]:
    """The Sage key columns of a record's text key (the entity's written source; integers typed).

    ``"C001"`` -> ``{"code": "C001"}``; ``"C001/2"`` -> ``{"account_code": "C001", "number": 2}``.
    """
    source = mapping(entity).write
    parts = key.rsplit("/", len(source.key) - 1) if len(source.key) > 1 else [key]
    out: dict[str, Any] = {}
    for name, part in zip(source.key, parts, strict=True):
        out[name] = int(part) if source.field(name).dtype == "int" and part.lstrip("-").isdigit() else part
    return out
