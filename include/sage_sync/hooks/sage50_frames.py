"""Typed pandas frames from fetched Sage rows: pyodbc row chunks or Arrow batches (no Airflow imports).

Column ``i`` of a result is the field ``fields[i]`` of the ``SELECT`` that produced it (matching by position,
since PostgreSQL reports folded lower-case names). Every column gets the dtype its mapping declares
(``string``, ``Int64``, ``Float64``, ``datetime64[us]``), whatever the driver returned: SQLite hands back floats
for ``numeric`` columns, psqlODBC hands back ``Decimal``, arrow-odbc picks ``decimal128``, ``int16``,
``timestamp[s]``... The snapshot and its diff must not depend on which engine or fetch path produced it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from sage_sync.mapping.model import FieldMap

_ARROW_TARGET: dict[str, pa.DataType] = {
    "string": pa.string(),
    "int": pa.int64(),
    "decimal": pa.float64(),
    "date": pa.timestamp("us"),
    "datetime": pa.timestamp("us"),
}
# What arrow-odbc is asked to bind each mapping dtype as (so the driver converts, not Python): 64-bit integers
# (SQLite does not enforce smallint ranges), doubles (psqlODBC would report numeric as decimal128(28, 6)),
# microsecond timestamps (the SQLite3 driver reports timestamp columns with second precision).
_ARROW_FETCH: dict[str, pa.DataType] = {
    "string": pa.string(),
    "int": pa.int64(),
    "decimal": pa.float64(),
    "date": pa.date32(),
    "datetime": pa.timestamp("us"),
}
_PANDAS_FOR_ARROW = {
    pa.string(): pd.StringDtype(),
    pa.int64(): pd.Int64Dtype(),
    pa.float64(): pd.Float64Dtype(),
}


def arrow_fetch_schema(fields: Sequence[FieldMap]) -> Callable[[pa.Schema], pa.Schema]:
    """A ``map_schema`` for arrow-odbc: keep the driver's column names, bind each column as its field's type."""

    def mapper(schema: pa.Schema) -> pa.Schema:
        if len(schema) != len(fields):
            raise ValueError(f"the driver reports {len(schema)} columns, {len(fields)} were selected")
        return pa.schema(
            [col.with_type(_ARROW_FETCH[f.dtype]) for col, f in zip(schema, fields, strict=True)]
        )

    return mapper


def empty_frame(fields: Sequence[FieldMap]) -> pd.DataFrame:
    """An empty frame with the canonical columns and dtypes of ``fields``."""
    return pd.DataFrame({f.name: pd.Series([], dtype=f.pandas_dtype) for f in fields})


def _to_int(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float | Decimal) and value == int(value):
        return int(value)
    return int(str(value))


def _to_float(value: Any) -> float | None:
    return None if value is None else float(value)


def column_from_values(values: Sequence[Any], f: FieldMap) -> pd.Series:
    """Convert one column of Python values (as pyodbc returns them) to the dtype of ``f``."""
    if f.dtype == "string":
        return pd.Series(pd.array(list(values), dtype="string"), name=f.name)
    if f.dtype == "int":
        return pd.Series(pd.array([_to_int(v) for v in values], dtype="Int64"), name=f.name)
    if f.dtype == "decimal":
        return pd.Series(pd.array([_to_float(v) for v in values], dtype="Float64"), name=f.name)
    # A value no calendar reads (text in a date column of a damaged dossier) becomes a missing date, which the
    # quality suites quarantine with the row's reason, instead of failing the whole read.
    converted = pd.to_datetime(pd.Series(list(values), dtype=object), errors="coerce", format="mixed")
    return converted.astype("datetime64[us]").rename(f.name)


def rows_to_frame(rows: Sequence[Sequence[Any]], fields: Sequence[FieldMap]) -> pd.DataFrame:
    """Build the typed frame of a chunk of rows whose columns are ``fields`` in order."""
    if not rows:
        return empty_frame(fields)
    columns = list(zip(*rows, strict=True))
    if len(columns) != len(fields):
        raise ValueError(f"the driver returned {len(columns)} columns, {len(fields)} were selected")
    return pd.DataFrame({f.name: column_from_values(col, f) for f, col in zip(fields, columns, strict=True)})


def _arrow_column(array: pa.Array | pa.ChunkedArray, f: FieldMap) -> pd.Series:
    target = _ARROW_TARGET[f.dtype]
    if f.dtype in ("date", "datetime") and pa.types.is_string(array.type):
        array = pc.strptime(array, format="%Y-%m-%d %H:%M:%S", unit="us", error_is_null=True)
    if array.type != target:
        array = pc.cast(array, target)
    series = array.to_pandas(types_mapper=_PANDAS_FOR_ARROW.get)
    if f.dtype in ("date", "datetime"):
        series = series.astype("datetime64[us]")
    return pd.Series(series, name=f.name)


def arrow_to_frame(batch: pa.RecordBatch | pa.Table, fields: Sequence[FieldMap]) -> pd.DataFrame:
    """Build the typed frame of an Arrow batch whose columns are ``fields`` in order."""
    if batch.num_columns != len(fields):
        raise ValueError(f"the driver returned {batch.num_columns} columns, {len(fields)} were selected")
    if batch.num_rows == 0:
        return empty_frame(fields)
    data = {f.name: _arrow_column(batch.column(i), f) for i, f in enumerate(fields)}
    return pd.DataFrame(data)
