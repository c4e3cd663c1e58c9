"""Validation and statement planning of Sage write-back (F_COMPTET, F_CONTACTT), with no Airflow imports.

Rows are canonical-field dicts (or a DataFrame of them) carrying the record's Sage key plus the fields to set.
Before anything is written, every value is checked against the mapping: what Sage can store
(:mod:`sage_sync.mapping.sage_values`: characters, length, integer range), type, required fields, fixed values. :func:`validate_writes` returns the problems (the quality layer
quarantines rows with it); :func:`plan_writes` refuses the whole batch with :class:`RecordRejected` when there is
any, and otherwise returns the statements and their bound parameters, grouped so that rows setting the same
columns share one ``executemany``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, TypeAlias

import pandas as pd

from sage_sync.errors import RecordRejected
from sage_sync.hooks.sage50_sql import build_insert, build_update
from sage_sync.mapping.model import EntityMapping, FieldMap, SageSource
from sage_sync.mapping.sage_values import integer_problem, text_problem

Row: TypeAlias = Mapping[str, Any]
Rows: TypeAlias = pd.DataFrame | Iterable[Row]


@dataclass(frozen=True)
class WriteProblem:
    """One reason a record cannot be written: which record, which Sage column, and what is wrong."""

    table: str
    record: str
    column: str | None
    message: str

    def __str__(self) -> str:
        return f"{self.table} {self.record}: {self.message}"


@dataclass(frozen=True)
class WriteStatement:
    """One SQL statement and the parameter rows it runs with; ``keys`` labels each row for error reports."""

    sql: str
    params: list[tuple[Any, ...]]
    keys: list[str]
    kind: str  # "insert" | "update"


@dataclass
class WritePlan:
    """Statements that write a validated batch, in order: inserts first, then updates."""

    statements: list[WriteStatement] = field(default_factory=list)


def _is_missing(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float) and math.isnan(value)


def as_records(rows: Rows) -> list[dict[str, Any]]:
    """Turn a DataFrame or an iterable of mappings into plain dicts with ``None`` for missing values."""
    if isinstance(rows, pd.DataFrame):
        records = rows.astype(object).to_dict(orient="records")
    else:
        records = [dict(r) for r in rows]
    return [{str(k): (None if _is_missing(v) else v) for k, v in r.items()} for r in records]


def record_label(source: SageSource, row: Row) -> str:
    """``CT_Num=C0042`` / ``CT_Num=C0042, CT_No=3``: the record's Sage key as the error messages show it."""
    parts = []
    for name in source.key:
        f = source.field(name)
        parts.append(f"{f.sage}={row.get(name)}")
    return ", ".join(parts)


def _check_value(f: FieldMap, value: Any) -> tuple[Any, str | None]:
    """Return the value to bind for ``f`` and the problem with it (None when it is fine)."""
    column = f.sage
    if f.dtype == "string":
        if not isinstance(value, str):
            return None, f"{column} is {value!r}, not text"
        problem = text_problem(f, value)
        return (None, f"{column} {problem}") if problem else (value, None)
    if f.dtype == "int":
        if isinstance(value, bool) or not isinstance(value, int | float | Decimal | str):
            return None, f"{column} is {value!r}, not an integer"
        try:
            number = Decimal(str(value).strip())
        except ArithmeticError:
            return None, f"{column} is {value!r}, not an integer"
        if not number.is_finite() or number != number.to_integral_value():
            return None, f"{column} is {value!r}, not an integer"
        problem = integer_problem(f, number)
        return (None, f"{column} {problem}") if problem else (int(number), None)
    if f.dtype == "decimal":
        try:
            number = Decimal(str(value).strip())
        except ArithmeticError:
            return None, f"{column} is {value!r}, not a number"
        if isinstance(value, bool) or not number.is_finite():
            return None, f"{column} is {value!r}, not a number"
        return number, None
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime()
    if f.dtype == "date" and isinstance(value, datetime):
        value = value.date()
    if not isinstance(value, date):
        return None, f"{column} is {value!r}, not a date"
    return value, None


def _validate_row(
    mapping: EntityMapping, row: Row, *, insert: bool
) -> tuple[dict[str, Any], list[WriteProblem]]:
    source = mapping.write
    label = record_label(source, row)
    known = {f.name: f for f in source.fields if f.sage}
    problems: list[WriteProblem] = []

    def problem(column: str | None, message: str) -> None:
        problems.append(WriteProblem(source.table, label, column, message))

    values: dict[str, Any] = {}
    for name, value in row.items():
        f = known.get(name)
        if f is None:
            problem(None, f"field {name!r} is not a column of {source.table} in the {mapping.entity} mapping")
            continue
        fixed = mapping.write_fixed.get(name)
        if fixed is not None and value is not None and str(value) != str(fixed):
            problem(f.sage, f"{f.sage} must stay {fixed}, the row sets {value!r}")
            continue
        if value is None:
            if name in source.key:
                problem(f.sage, f"{f.sage} (key) is missing")
            elif insert and f.required:
                problem(f.sage, f"{f.sage} is required")
            else:
                values[name] = None
            continue
        bound, message = _check_value(f, value)
        if message:
            problem(f.sage, message)
        else:
            values[name] = bound
    for name in source.key:
        if name not in row:
            problem(source.field(name).sage, f"{source.field(name).sage} (key) is missing")
    if insert:
        for f in source.fields:
            if f.required and f.name not in row:
                problem(f.sage, f"{f.sage} is required")
        for name, fixed in mapping.write_fixed.items():
            values[name] = fixed
    return values, problems


def validate_writes(mapping: EntityMapping, rows: Rows, *, insert: bool) -> list[WriteProblem]:
    """Return every problem that would stop ``rows`` from being written to Sage (empty list: all writable).

    Checks, per value: cp1252 (Sage's code page), the column length from the mapping, the type; per row: the key
    is present, required fields are present on inserts, fixed values (e.g. ``CT_Type=0``) are not changed.
    """
    problems: list[WriteProblem] = []
    for row in as_records(rows):
        problems.extend(_validate_row(mapping, row, insert=insert)[1])
    return problems


def plan_writes(mapping: EntityMapping, inserts: Rows = (), updates: Rows = ()) -> WritePlan:
    """Validate ``inserts`` and ``updates`` and return their statements, or raise :class:`RecordRejected`.

    Updates only ever touch rows that also match the mapping's fixed values (``... AND CT_Type = ?``): a
    supplier can never be modified through the customer write-back, whatever key a row carries.
    """
    source = mapping.write
    problems: list[WriteProblem] = []
    grouped: dict[tuple[str, tuple[str, ...]], list[tuple[dict[str, Any], str]]] = {}
    for kind, rows in (("insert", inserts), ("update", updates)):
        for row in as_records(rows):
            values, found = _validate_row(mapping, row, insert=kind == "insert")
            problems.extend(found)
            if found:
                continue
            if kind == "update":
                values = {k: v for k, v in values.items() if k not in mapping.write_fixed}
                if not set(values) - set(source.key):
                    continue  # nothing to set beyond the key
            order = tuple(f.name for f in source.fields if f.name in values)
            grouped.setdefault((kind, order), []).append((values, record_label(source, row)))
    if problems:
        raise RecordRejected([str(p) for p in problems])
    plan = WritePlan()
    for (kind, order), items in grouped.items():
        if kind == "insert":
            sql = build_insert(source, order)
            params = [tuple(values[c] for c in order) for values, _ in items]
        else:
            set_cols = [c for c in order if c not in source.key]
            where_cols: Sequence[str] = (*source.key, *mapping.write_fixed)
            sql = build_update(source, set_cols, where_cols)
            params = [
                tuple(values[c] for c in set_cols)
                + tuple(values[k] for k in source.key)
                + tuple(mapping.write_fixed.values())
                for values, _ in items
            ]
        plan.statements.append(WriteStatement(sql=sql, params=params, keys=[k for _, k in items], kind=kind))
    return plan


#: The transform that marks a field as the code of the customer/prospect account a record belongs to.
ACCOUNT_REF = "account_ref"


def account_ref_field(mapping: EntityMapping) -> FieldMap | None:
    """The write source's field holding the owning account's code (contacts' ``CT_Num``), if it has one."""
    for f in mapping.write.fields:
        if f.transform == ACCOUNT_REF and f.sage:
            return f
    return None


def account_codes(mapping: EntityMapping, *batches: Rows) -> list[str]:
    """The distinct owning-account codes ``batches`` refer to, in first-seen order."""
    ref = account_ref_field(mapping)
    if ref is None:
        return []
    codes: dict[str, None] = {}
    for rows in batches:
        for row in as_records(rows):
            code = row.get(ref.name)
            if code is not None:
                codes[str(code)] = None
    return list(codes)


def parent_account_problems(
    mapping: EntityMapping,
    accounts: EntityMapping,
    found: Mapping[str, Any],
    *batches: Rows,
) -> list[WriteProblem]:
    """Records whose owning account is not a customer/prospect of ``accounts``' write source.

    Args:
        mapping: the mapping being written (contacts).
        accounts: the accounts mapping; its fixed write values (``CT_Type = 0``) say what an owner must be.
        found: account code -> its type column's value, for the codes that exist in Sage.
        batches: the rows being written.
    """
    ref = account_ref_field(mapping)
    if ref is None:
        return []
    source, owner = mapping.write, accounts.write
    type_name, wanted = next(iter(accounts.write_fixed.items()))
    type_column = owner.field(type_name).sage
    problems: list[WriteProblem] = []
    for rows in batches:
        for row in as_records(rows):
            code = row.get(ref.name)
            if code is None:
                continue  # reported as a missing key by the value checks
            label = record_label(source, row)
            if str(code) not in found:
                why = f"account {code} does not exist in {owner.table}"
            elif str(found[str(code)]) != str(wanted):
                why = f"account {code} has {type_column} = {found[str(code)]} (not a customer or prospect)"
            else:
                continue
            message = (
                f"{ref.sage}: {why}; contacts can only be written under a {type_column} = {wanted} account"
            )
            problems.append(WriteProblem(source.table, label, ref.sage, message))
    return problems
