"""SQL text for the Sage 50 FR dossier, built only from the entity mapping (no Airflow imports).

Every table and column name comes from :mod:`sage_sync.mapping` and is checked again here to be a plain identifier
before it is pasted into SQL; every value (filters, keys, written fields) travels as a ``?`` bound parameter.
Identifiers are left unquoted: the contract's tables are created unquoted, so PostgreSQL folds them to lower
case and only unquoted names match on both engines.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sage_sync.mapping.model import FieldMap, SageSource, check_identifier

FilterValue = int | str


@dataclass(frozen=True)
class SelectStatement:
    """A ``SELECT`` over one Sage source: its SQL, its bound parameters and the fields of its columns in order.

    Result columns are matched to ``fields`` by position, never by the names the driver reports (PostgreSQL
    returns them folded to lower case).
    """

    sql: str
    params: tuple[FilterValue, ...]
    fields: tuple[FieldMap, ...]


def _column(f: FieldMap, table: str) -> str:
    if not f.sage:
        raise ValueError(f"{table}: field {f.name!r} has no Sage column")
    return check_identifier(f.sage, f"{table}: Sage column of {f.name!r}")


def _in_clause(column: str, values: Sequence[FilterValue]) -> str:
    if not values:
        raise ValueError(f"filter on {column} has no values")
    return f"{column} IN ({', '.join('?' for _ in values)})"


def build_select(
    source: SageSource,
    columns: Sequence[str] | None = None,
    filters: Mapping[str, Sequence[FilterValue]] | None = None,
) -> SelectStatement:
    """Build the ``SELECT`` of ``source``'s mapped columns with its equality filters as ``IN (?, ...)``.

    Args:
        source: the mapped Sage table.
        columns: canonical field names to read (default: every mapped field, in mapping order).
        filters: extra equality filters (canonical field -> accepted values), combined with the mapping's own.

    Raises:
        ValueError: a field is unknown, has no Sage column, or a name is not a plain identifier.
    """
    table = check_identifier(source.table, f"source {source.name!r}: table")
    wanted = [f for f in source.fields if f.sage] if columns is None else [source.field(c) for c in columns]
    if not wanted:
        raise ValueError(f"{table}: nothing to select")
    select_list = ", ".join(_column(f, table) for f in wanted)
    clauses: list[str] = []
    params: list[FilterValue] = []
    for name, values in {**source.filter, **(filters or {})}.items():
        clauses.append(_in_clause(_column(source.field(name), table), values))
        params.extend(values)
    where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
    return SelectStatement(
        sql=f"SELECT {select_list} FROM {table}{where}", params=tuple(params), fields=tuple(wanted)
    )


def build_insert(source: SageSource, columns: Sequence[str]) -> str:
    """Build ``INSERT INTO table (cols) VALUES (?, ...)`` for canonical ``columns`` of ``source``."""
    table = check_identifier(source.table, f"source {source.name!r}: table")
    names = [_column(source.field(c), table) for c in columns]
    return f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join('?' for _ in names)})"


def build_update(source: SageSource, set_columns: Sequence[str], where_columns: Sequence[str]) -> str:
    """Build ``UPDATE table SET a = ?, ... WHERE k = ? AND ...``; parameters go SET values first, then WHERE."""
    table = check_identifier(source.table, f"source {source.name!r}: table")
    if not set_columns or not where_columns:
        raise ValueError(f"{table}: an update needs columns to set and a key")
    sets = ", ".join(f"{_column(source.field(c), table)} = ?" for c in set_columns)
    where = " AND ".join(f"{_column(source.field(c), table)} = ?" for c in where_columns)
    return f"UPDATE {table} SET {sets} WHERE {where}"
