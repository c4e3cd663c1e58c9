"""The straightforward snapshot diff: a pandas outer merge on the key, then a column-by-column compare.

It is the executable specification of :func:`sage_sync.engine.diff.diff_snapshots` (same outcomes, same null
and rounding rules for columns of one type on both sides), used by the property tests as an oracle and by the
benchmark as the baseline. It is several times slower and uses several times the memory, so the sync never
calls it.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from sage_sync.engine.diff import DuplicateKeyError
from sage_sync.engine.row_hash import DEFAULT_DECIMALS

_PREVIOUS = "__previous"
_CURRENT = "__current"


@dataclass(frozen=True)
class ReferenceDiff:
    """Outcome of :func:`reference_diff`: frames rebuilt from the merge, and a boolean ``changed`` frame."""

    key: tuple[str, ...]
    columns: tuple[str, ...]
    created: pd.DataFrame
    updated: pd.DataFrame
    changed: pd.DataFrame
    deleted: pd.DataFrame
    unchanged_count: int

    def counts(self) -> dict[str, int]:
        """Rows per outcome: ``created``, ``updated``, ``deleted``, ``unchanged``."""
        return {
            "created": len(self.created),
            "updated": len(self.updated),
            "deleted": len(self.deleted),
            "unchanged": self.unchanged_count,
        }

    def changed_fields(self) -> dict[Hashable, list[str]]:
        """Changed field names per updated key (a tuple when the key is composite)."""
        keys = (
            self.updated[self.key[0]].tolist()
            if len(self.key) == 1
            else list(zip(*(self.updated[k].tolist() for k in self.key), strict=True))
        )
        flags = self.changed.to_numpy(dtype=bool)
        return {
            k: [c for c, f in zip(self.columns, row, strict=True) if f]
            for k, row in zip(keys, flags, strict=True)
        }


def _comparable(values: pd.Series, decimals: int) -> pd.Series:
    if pd.api.types.is_bool_dtype(values.dtype) or pd.api.types.is_numeric_dtype(values.dtype):
        return values.astype("float64").round(decimals)
    if values.dtype == object and pd.api.types.infer_dtype(values, skipna=True) in {
        "decimal",
        "integer",
        "floating",
    }:
        return values.astype("float64").round(decimals)
    return values


def reference_diff(
    previous: pd.DataFrame,
    current: pd.DataFrame,
    key: Sequence[str],
    columns: Sequence[str] | None = None,
    *,
    decimals: int = DEFAULT_DECIMALS,
) -> ReferenceDiff:
    """Diff two snapshots by a full outer merge on ``key`` and a compare of every column of every row."""
    key = tuple(key)
    compared = tuple(columns) if columns is not None else tuple(c for c in current.columns if c not in key)
    for label, frame in (("previous", previous), ("current", current)):
        repeated = frame[frame.duplicated(list(key), keep=False)]
        if len(repeated):
            keys = list(dict.fromkeys(repeated[list(key)].itertuples(index=False, name=None)))
            raise DuplicateKeyError(label, key, keys, len(keys))

    merged = previous[[*key, *compared]].merge(
        current[[*key, *compared]], on=list(key), how="outer", suffixes=(_PREVIOUS, _CURRENT), indicator=True
    )
    both = (merged["_merge"] == "both").to_numpy()
    changed = np.zeros((int(both.sum()), len(compared)), dtype=bool)
    for j, name in enumerate(compared):
        before = _comparable(merged[name + _PREVIOUS][both], decimals)
        after = _comparable(merged[name + _CURRENT][both], decimals)
        equal = (before == after).fillna(False).to_numpy(dtype=bool) | (
            before.isna() & after.isna()
        ).to_numpy()
        changed[:, j] = ~equal

    def rows_of(mask: np.ndarray, suffix: str) -> pd.DataFrame:
        rows = merged[mask]
        return pd.DataFrame({**{k: rows[k] for k in key}, **{c: rows[c + suffix] for c in compared}})

    any_change = changed.any(axis=1)
    updated_mask = both.copy()
    updated_mask[both] = any_change
    updated = rows_of(updated_mask, _CURRENT)
    return ReferenceDiff(
        key=key,
        columns=compared,
        created=rows_of((merged["_merge"] == "right_only").to_numpy(), _CURRENT),
        updated=updated,
        changed=pd.DataFrame(changed[any_change], index=updated.index, columns=list(compared)),
        deleted=rows_of((merged["_merge"] == "left_only").to_numpy(), _PREVIOUS),
        unchanged_count=int(both.sum() - any_change.sum()),
    )
