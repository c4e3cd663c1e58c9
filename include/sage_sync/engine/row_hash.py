"""Stable 64-bit hashes of snapshot rows and keys, computed column by column with numpy and pyarrow.

What is hashed: every cell is first reduced to a *canonical value* so that representation never looks like a
change, then hashed; a row's hash combines its cells' hashes in column-name order.

- Numbers (``int``, ``float``, ``bool``, ``Decimal`` objects, nullable and pyarrow numeric or decimal dtypes) are
  compared as float64 rounded to ``decimals`` places (6 by default): ``Decimal("1.10")``, ``1.1`` and
  ``1.1000000000000001`` are one value, ``7`` and ``7.0`` too. Exact for integers up to 2**53 and for decimals
  up to 15 significant digits, which covers every Sage amount, quantity and identifier.
- Dates and timestamps (numpy ``datetime64``, pyarrow ``date32``/``timestamp``, ``datetime.date`` objects) are
  compared as microseconds since the epoch; a date equals the timestamp at midnight; time-zone-aware values are
  taken in UTC.
- Text is compared byte for byte in UTF-8 (no trimming, no case folding, no Unicode normalisation).
- Missing values (``None``, ``NaN``, ``NaT``, ``pd.NA``, pyarrow nulls) are one value whatever the dtype, so a
  null equals a null and differs from ``""`` and ``0``.

Text is hashed straight from the pyarrow buffers with a polynomial hash evaluated by prefix sums (no Python
object per cell); numbers and instants by their 64 bits. Cell hashes go through a cheap bijective mixer, and
each row or key hash through MurmurHash3's 64-bit finaliser. The hashes are stable across processes and
machines, which is what lets the committed snapshot keep its hashes for the next run. They are a filter, not a
proof: the diff confirms every change it reports by comparing canonical values.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from sage_sync.errors import ConfigurationError

#: Bump when the canonical forms or the hash functions change: hashes persisted by an older version are then
#: recomputed instead of being compared with new ones.
HASH_VERSION: Final = 1
DEFAULT_DECIMALS: Final = 6

_U64 = np.uint64
_MASK64: Final = (1 << 64) - 1
# Distinct salts per kind of value, so that the text "7", the number 7 and a date never share a hash.
_NULL_HASH: Final = _U64(0x6A09E667F3BCC908)
_NUMBER_SALT: Final = _U64(0xBB67AE8584CAA73B)
_TEMPORAL_SALT: Final = _U64(0x3C6EF372FE94F82B)
_TEXT_SALT: Final = _U64(0xA54FF53A5F1D36F1)
_KEY_SEED: Final = 0x510E527FADE682D1
_ROW_SEED: Final = 0x9B05688C2B3E6C1F
_COMBINE: Final = _U64(0x9E3779B97F4A7C15)
_TEXT_BASE: Final = 0x100000001B3 * 0x9E3779B1 | 1  # any odd 64-bit multiplier works; odd makes it invertible
_TEXT_CHUNK_BYTES: Final = 1 << 17  # small enough for the prefix sums to stay in the CPU cache


def _inverse_mod_2_64(odd: int) -> int:
    """Multiplicative inverse of an odd number modulo 2**64 (Newton's iteration doubles the correct bits)."""
    inverse = odd
    for _ in range(6):
        inverse = (inverse * (2 - odd * inverse)) & _MASK64
    return inverse


def _powers(base: int, count: int) -> np.ndarray:
    powers = np.full(count, base & _MASK64, dtype=_U64)
    powers[0] = 1
    with np.errstate(over="ignore"):
        return np.cumprod(powers, dtype=_U64)


_TEXT_POWERS: Final = _powers(_TEXT_BASE, _TEXT_CHUNK_BYTES + 1)
_TEXT_INVERSE_POWERS: Final = _powers(_inverse_mod_2_64(_TEXT_BASE), _TEXT_CHUNK_BYTES + 1)


def _mix64_inplace(values: np.ndarray) -> np.ndarray:
    """MurmurHash3's 64-bit finaliser, in place on a uint64 array (one scratch array, no other temporaries)."""
    scratch = np.empty_like(values)
    with np.errstate(over="ignore"):
        for multiplier in (_U64(0xFF51AFD7ED558CCD), _U64(0xC4CEB9FE1A85EC53), None):
            np.right_shift(values, _U64(33), out=scratch)
            values ^= scratch
            if multiplier is not None:
                values *= multiplier
    return values


def _scramble_inplace(values: np.ndarray) -> np.ndarray:
    """A cheap bijective mixer for cell hashes (xor-shift, then an odd multiply), in place.

    Being a bijection, it never merges two distinct canonical values, so a change confined to one numeric or
    temporal column always changes the row hash; the row hash gets the full finaliser once at the end.
    """
    scratch = np.right_shift(values, _U64(31))
    with np.errstate(over="ignore"):
        values ^= scratch
        values *= _U64(0xBF58476D1CE4E5B9)
    return values


def mix64(values: np.ndarray) -> np.ndarray:
    """MurmurHash3's 64-bit finaliser, applied elementwise to a uint64 array (returns a new array)."""
    return _mix64_inplace(values.astype(_U64, copy=True))


def _name_multiplier(name: str, seed: int) -> np.uint64:
    """A stable odd multiplier per column name (Python's ``hash`` is randomised per process, so it cannot be used)."""
    acc = seed & _MASK64
    for byte in name.encode("utf-8"):
        acc = ((acc ^ byte) * 0x100000001B3) & _MASK64
    return mix64(np.array([acc], dtype=_U64))[0] | _U64(1)


@dataclass(frozen=True)
class CanonicalColumn:
    """A column reduced to comparable values: ``kind`` is ``number``, ``temporal``, ``text`` or ``null``.

    ``values`` is a float64 array (numbers, already rounded), an int64 array of microseconds (temporal) or a
    pyarrow string array (text); ``nulls`` marks the missing cells.
    """

    kind: str
    values: Any
    nulls: np.ndarray

    def equals(self, other: CanonicalColumn) -> np.ndarray:
        """Cell-by-cell equality with another canonical column of the same length; null equals null only."""
        both_null = self.nulls & other.nulls
        one_null = self.nulls ^ other.nulls
        if self.kind != other.kind:
            # Different kinds never hold the same value; only cells null on both sides are equal.
            return both_null
        if self.kind == "text":
            same = pc.fill_null(pc.equal(self.values, other.values), False)
            same = np.asarray(same.to_numpy(zero_copy_only=False), dtype=bool)
        elif self.kind == "null":
            same = np.ones(len(self.nulls), dtype=bool)
        else:
            same = self.values == other.values
        return both_null | (same & ~one_null)


def _to_arrow(values: pd.Series) -> pa.Array | pa.ChunkedArray:
    return pa.array(values, from_pandas=True)


def _as_number(array: pa.Array | pa.ChunkedArray, decimals: int) -> CanonicalColumn:
    floats = pc.cast(array, pa.float64(), safe=False)
    return _rounded(np.array(floats.to_numpy(zero_copy_only=False), dtype=np.float64, copy=True), decimals)


def _rounded(data: np.ndarray, decimals: int, *, integral: bool = False) -> CanonicalColumn:
    """Canonical numbers from a float64 array that the function may modify; NaN is null.

    ``integral`` says the values came from integers below 2**31, which rounding would leave unchanged.
    """
    if integral:
        return CanonicalColumn("number", data, np.zeros(len(data), dtype=bool))
    nulls = np.isnan(data)
    # np.round maps every float within half a unit of the last kept decimal to the same double, so 0.1 + 0.2 and
    # 0.3 agree; adding 0.0 turns -0.0 into 0.0 so that the sign of zero is not a change.
    np.round(data, decimals, out=data)
    data += 0.0
    if nulls.any():
        data[nulls] = 0.0
    return CanonicalColumn("number", data, nulls)


def _as_temporal(array: pa.Array | pa.ChunkedArray) -> CanonicalColumn:
    kind = array.type
    if pa.types.is_date(kind):
        micros = pc.multiply(pc.cast(pc.cast(array, pa.date32()), pa.int64()), 86_400_000_000)
    else:
        if kind.tz is not None:
            # Arrow stores zoned timestamps as UTC instants already; dropping the zone keeps the instant.
            array = pc.cast(array, pa.timestamp(kind.unit))
        micros = pc.cast(pc.cast(array, pa.timestamp("us"), safe=False), pa.int64())
    nulls = np.asarray(pc.is_null(micros).to_numpy(zero_copy_only=False), dtype=bool)
    data = np.asarray(pc.fill_null(micros, 0).to_numpy(zero_copy_only=False), dtype=np.int64)
    return CanonicalColumn("temporal", data, nulls)


def _as_text(array: pa.Array | pa.ChunkedArray) -> CanonicalColumn:
    if not pa.types.is_large_string(array.type):
        array = pc.cast(array, pa.large_string())
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks() if array.num_chunks != 1 else array.chunk(0)
    nulls = np.asarray(array.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    return CanonicalColumn("text", array, nulls)


def _arrow_kind(name: str, array: pa.Array | pa.ChunkedArray, decimals: int) -> CanonicalColumn:
    kind = array.type
    if pa.types.is_null(kind):
        return CanonicalColumn("null", None, np.ones(len(array), dtype=bool))
    if pa.types.is_dictionary(kind):
        return _arrow_kind(name, pc.cast(array, kind.value_type), decimals)
    if (
        pa.types.is_integer(kind)
        or pa.types.is_floating(kind)
        or pa.types.is_decimal(kind)
        or pa.types.is_boolean(kind)
    ):
        return _as_number(array, decimals)
    if pa.types.is_date(kind) or pa.types.is_timestamp(kind):
        return _as_temporal(array)
    if pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind):
        return _as_text(array)
    raise ConfigurationError(
        f"column {name!r}: values of type {kind} cannot be compared by the snapshot diff "
        "(supported: numbers, decimals, booleans, dates, timestamps, text)"
    )


def canonical_column(values: pd.Series, *, decimals: int = DEFAULT_DECIMALS) -> CanonicalColumn:
    """Reduce one column to its canonical comparable values (see the module docstring for the rules)."""
    name = str(values.name)
    dtype = values.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        values = values.astype(dtype.categories.dtype if len(dtype.categories) else object)
        dtype = values.dtype
    if pd.api.types.is_object_dtype(dtype):
        inferred = pd.api.types.infer_dtype(values, skipna=True)
        if inferred == "empty":
            return CanonicalColumn("null", None, np.ones(len(values), dtype=bool))
        numeric = inferred in {"integer", "floating", "mixed-integer-float", "decimal", "boolean"}
        if not numeric and inferred in {"mixed-integer", "mixed"}:
            # e.g. Decimal objects beside plain ints: still numbers.
            numeric = all(isinstance(v, numbers.Number) for v in values if not pd.isna(v))
        if numeric:
            # float() of each object: slower than a typed column, but exact enough (see the module docstring).
            floats = np.array([np.nan if pd.isna(v) else float(v) for v in values], dtype=np.float64)
            return _as_number(pa.array(floats, from_pandas=True), decimals)
        if inferred in {"date", "datetime", "datetime64"}:
            stamps = pd.to_datetime(values, utc=False)
            return canonical_column(stamps.rename(name), decimals=decimals)
        if inferred == "string":
            return _as_text(pa.array(values, type=pa.large_string(), from_pandas=True))
        raise ConfigurationError(
            f"column {name!r}: holds {inferred} values that the snapshot diff cannot compare "
            "(give the column one type: numbers, dates, timestamps or text)"
        )
    if isinstance(dtype, pd.DatetimeTZDtype):
        values = values.dt.tz_convert("UTC").dt.tz_localize(None)
        dtype = values.dtype
    if isinstance(dtype, np.dtype) and dtype.kind in "biuf":
        # Plain numpy numbers skip the round trip through pyarrow.
        small_integers = dtype.kind in "biu" and dtype.itemsize <= 4
        return _rounded(values.to_numpy(dtype=np.float64, copy=True), decimals, integral=small_integers)
    if isinstance(dtype, np.dtype) and dtype.kind == "M":
        stamps = values.to_numpy()
        nulls = np.isnat(stamps)
        micros = stamps.astype("datetime64[us]").view(np.int64).copy()
        micros[nulls] = 0
        return CanonicalColumn("temporal", micros, nulls)
    return _arrow_kind(name, _to_arrow(values), decimals)


def _text_hashes(array: pa.LargeStringArray) -> np.ndarray:
    """Polynomial hash of each string's UTF-8 bytes, by prefix sums over the shared data buffer.

    For a chunk of rows whose bytes are ``b[0..B)``, ``S[k] = sum(b[t] * p**t for t < k)`` (mod 2**64); the
    string at ``[s, e)`` then hashes to ``(S[e] - S[s]) * p**-s``, which equals ``sum(b[s+j] * p**j)`` whatever
    the string's position. ``p`` is odd, so ``p**-s`` exists modulo 2**64.
    """
    count = len(array)
    out = np.zeros(count, dtype=_U64)
    if count == 0:
        return out
    offsets_buffer, data_buffer = array.buffers()[1], array.buffers()[2]
    offsets = np.frombuffer(offsets_buffer, dtype=np.int64)[array.offset : array.offset + count + 1]
    data = np.frombuffer(data_buffer, dtype=np.uint8) if data_buffer is not None else np.zeros(0, np.uint8)
    lengths = np.diff(offsets)
    if int(lengths.max(initial=0)) > _TEXT_CHUNK_BYTES:
        raise ConfigurationError(
            f"a text value of {int(lengths.max())} bytes exceeds the diff's limit of {_TEXT_CHUNK_BYTES} bytes"
        )
    prefix = np.empty(_TEXT_CHUNK_BYTES + 1, dtype=_U64)
    first = 0
    with np.errstate(over="ignore"):
        while first < count:
            start = int(offsets[first])
            # The largest row range whose bytes fit in one chunk (at least one row).
            last = int(np.searchsorted(offsets, start + _TEXT_CHUNK_BYTES, side="right")) - 1
            last = min(max(last, first + 1), count)
            size = int(offsets[last]) - start
            prefix[0] = 0
            np.multiply(data[start : start + size], _TEXT_POWERS[:size], out=prefix[1 : size + 1])
            np.cumsum(prefix[: size + 1], out=prefix[: size + 1])
            begins = offsets[first:last] - start
            ends = offsets[first + 1 : last + 1] - start
            out[first:last] = (prefix[ends] - prefix[begins]) * _TEXT_INVERSE_POWERS[begins]
            first = last
        # The length goes in too, so that trailing NUL bytes still change the hash.
        out ^= lengths.astype(_U64) * _COMBINE
    return out


def value_hashes(column: CanonicalColumn) -> np.ndarray:
    """One uint64 per cell of a canonical column; every null cell gets the same hash, whatever the kind."""
    if column.kind == "null":
        return np.full(len(column.nulls), _NULL_HASH, dtype=_U64)
    if column.kind == "text":
        raw = _text_hashes(column.values) ^ _TEXT_SALT
    elif column.kind == "number":
        raw = column.values.view(_U64) ^ _NUMBER_SALT
    else:
        raw = column.values.view(_U64) ^ _TEMPORAL_SALT
    hashed = _scramble_inplace(raw)
    if column.nulls.any():
        hashed[column.nulls] = _NULL_HASH
    return hashed


def combine_hashes(frame: pd.DataFrame, columns: Sequence[str], *, seed: int, decimals: int) -> np.ndarray:
    """Hash the given columns of every row into one uint64, independent of the frame's column order.

    Each column's cell hashes (already mixed) are multiplied by an odd constant derived from the column's name
    before being folded in (``acc = acc * c + cells * k_name``), so swapping two columns' values is a change;
    the sum is mixed once at the end.
    """
    acc = np.full(len(frame), _U64(seed & _MASK64), dtype=_U64)
    with np.errstate(over="ignore"):
        for name in sorted(columns):
            cells = value_hashes(canonical_column(frame[name], decimals=decimals))
            cells *= _name_multiplier(name, seed)
            acc *= _COMBINE
            acc += cells
    return _mix64_inplace(acc)


@dataclass(frozen=True)
class SnapshotHashes:
    """Key and row hashes of a snapshot, in the snapshot's row order, with the scheme that produced them.

    Persist them with the committed snapshot (same row order, e.g. as two extra uint64 columns from
    :meth:`to_frame`) so the next diff only hashes the new extract.
    """

    key: tuple[str, ...]
    columns: tuple[str, ...]
    decimals: int
    key_hashes: np.ndarray
    row_hashes: np.ndarray
    version: int = HASH_VERSION

    def __len__(self) -> int:
        return len(self.row_hashes)

    def compatible_with(self, key: Sequence[str], columns: Sequence[str], decimals: int) -> bool:
        """Whether these hashes can be compared with hashes computed now for ``key`` and ``columns``."""
        return (
            self.version == HASH_VERSION
            and self.decimals == decimals
            and tuple(self.key) == tuple(key)
            and sorted(self.columns) == sorted(columns)
        )

    def to_frame(self) -> pd.DataFrame:
        """The two hash arrays as uint64 columns ``key_hash`` and ``row_hash``, ready to store beside the rows."""
        return pd.DataFrame({"key_hash": self.key_hashes, "row_hash": self.row_hashes})


def _check_columns(frame: pd.DataFrame, names: Sequence[str], role: str) -> None:
    missing = [name for name in names if name not in frame.columns]
    if missing:
        raise ConfigurationError(
            f"{role} column(s) {missing} missing from the frame (it has {list(frame.columns)})"
        )


def hash_keys(frame: pd.DataFrame, key: Sequence[str], *, decimals: int = DEFAULT_DECIMALS) -> np.ndarray:
    """One uint64 per row for its natural key (the ``key`` columns), in the frame's row order."""
    _check_columns(frame, key, "key")
    return combine_hashes(frame, key, seed=_KEY_SEED, decimals=decimals)


def hash_rows(frame: pd.DataFrame, columns: Sequence[str], *, decimals: int = DEFAULT_DECIMALS) -> np.ndarray:
    """One uint64 per row for its compared ``columns``, in the frame's row order."""
    _check_columns(frame, columns, "compared")
    return combine_hashes(frame, columns, seed=_ROW_SEED, decimals=decimals)


def snapshot_hashes(
    frame: pd.DataFrame,
    key: Sequence[str],
    columns: Sequence[str],
    *,
    decimals: int = DEFAULT_DECIMALS,
) -> SnapshotHashes:
    """Hash every row of ``frame``: its natural key (``key`` columns) and its compared ``columns``, separately."""
    return SnapshotHashes(
        key=tuple(key),
        columns=tuple(columns),
        decimals=decimals,
        key_hashes=hash_keys(frame, key, decimals=decimals),
        row_hashes=hash_rows(frame, columns, decimals=decimals),
    )


def row_hashes(
    frame: pd.DataFrame, key: Sequence[str], columns: Sequence[str], *, decimals: int = DEFAULT_DECIMALS
) -> pd.Series:
    """Row hashes (uint64) of ``columns``, indexed by the natural key (a MultiIndex when the key is composite)."""
    hashes = snapshot_hashes(frame, key, columns, decimals=decimals)
    index = pd.MultiIndex.from_frame(frame[list(key)]) if len(key) > 1 else pd.Index(frame[key[0]])
    return pd.Series(hashes.row_hashes, index=index, name="row_hash")
