"""Rows whose Sage key cannot identify them: a missing key, or a key two rows share (G3, C1, I1).

The diff matches records by key, so such rows would stop the whole entity. They are set aside instead, each with a
reason a person can act on and the row's content to find it by; the rest of the entity goes on. A key two rows
share (an invoice piece saved as type 6 and 7 at once, a half-posted invoice) is neither created, updated nor
deleted while it stays ambiguous: its committed record, if any, keeps its SSM twin as it was.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from sage_sync.engine.codec import clean
from sage_sync.engine.snapshot import KEY
from sage_sync.mapping.registry import EntitySpec

#: How many of a row's values name it in a reason (its first non-empty text columns).
_SHOWN_VALUES = 3
#: The start of the quarantine key of a row without key (``no CT_Num: CT_Intitule='Sans Code'``).
MISSING_KEY = "no "


@dataclass(frozen=True)
class BadKeys:
    """The rows set aside: quarantine key -> reason, and the keys two rows share."""

    reasons: dict[str, str] = field(default_factory=dict)
    shared: frozenset[str] = frozenset()


def _identity(spec: EntitySpec, row: pd.Series) -> str:
    """The row's first few non-empty values with their Sage column names (how a person finds it in Sage)."""
    shown: list[str] = []
    for f in spec.mapping.main.fields:
        if f.sage is None or f.name in spec.key or f.dtype != "string":
            continue
        value = clean(row.get(f.name))
        if value is not None:
            shown.append(f"{f.sage}={value!r}")
        if len(shown) == _SHOWN_VALUES:
            break
    return ", ".join(shown) or "no other value"


def _differing(spec: EntitySpec, rows: pd.DataFrame) -> str:
    """The Sage columns in which rows sharing a key differ (``DO_Type 6 / 7``)."""
    out = []
    for f in spec.mapping.main.fields:
        if f.sage is None or f.name not in rows.columns:
            continue
        values = [clean(v) for v in rows[f.name].tolist()]
        if len({repr(v) for v in values}) > 1:
            out.append(f"{f.sage} {' / '.join(str(v) for v in values)}")
    return "; ".join(out[:_SHOWN_VALUES]) or "identical rows"


def set_aside(spec: EntitySpec, frame: pd.DataFrame) -> tuple[pd.DataFrame, BadKeys]:
    """The frame without rows whose key is missing or shared, and what was set aside with why."""
    keys = frame[KEY]
    missing = keys.isna() | (keys.astype("string").str.strip() == "").fillna(True)
    shared = keys.duplicated(keep=False) & ~missing
    if not missing.any() and not shared.any():
        return frame, BadKeys()
    source = spec.mapping.main
    columns = "/".join(str(source.sage_columns.get(k, k)) for k in spec.key)
    reasons: dict[str, str] = {}
    for position in missing.to_numpy().nonzero()[0]:
        row = frame.iloc[position]
        label = f"{MISSING_KEY}{columns}: {_identity(spec, row)}"[:80]
        reasons[label] = (
            f"{source.table} row without {columns} ({_identity(spec, row)}): it cannot be matched with SSM; "
            f"give it its {columns} in Sage"
        )
    for key, rows in frame[shared.to_numpy()].groupby(KEY, sort=True):
        reasons[str(key)] = (
            f"{len(rows)} rows of {source.table} share {columns} {key} ({_differing(spec, rows)}): none is synced "
            "until one remains"
        )
    kept = frame[~(missing | shared).to_numpy()].reset_index(drop=True)
    return kept, BadKeys(reasons, frozenset(str(k) for k in keys[shared.to_numpy()]))
