"""Current Sage snapshots as canonical records, and what changed since the committed snapshot.

The Sage side hands over one frame per source with canonical column names; this module assembles the entity
(products join stock, accounting, taxes and families; invoices group their lines), gives each record a text key,
and classifies keys with :func:`sage_sync.engine.diff.diff_snapshots` against the committed snapshot.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from sage_sync.engine.codec import clean, mapping
from sage_sync.engine.diff import diff_snapshots

KEY = "_key"


def compared_columns(entity: str) -> list[str]:
    """The canonical columns whose change is a reason to sync (``compare: true``), derived ones included."""
    m = mapping(entity)
    cols = [f.name for f in m.main.fields if f.compare]
    cols += [f.name for f in m.derived if f.compare]
    if entity == "invoices":
        cols.append("lines_digest")
    return cols


def _filter(frame: pd.DataFrame, filters: dict[str, tuple[int | str, ...]]) -> pd.DataFrame:
    for column, allowed in filters.items():
        if column in frame.columns:
            frame = frame[frame[column].isin(list(allowed))]
    return frame


def _text_key(frame: pd.DataFrame, columns: list[str]) -> pd.Series:
    if len(columns) == 1:
        return frame[columns[0]].astype("string")
    parts = [
        frame[c].astype("Int64").astype("string") if c == "number" else frame[c].astype("string")
        for c in columns
    ]
    out = parts[0]
    for p in parts[1:]:
        out = out + "/" + p
    return out


def assemble(
    entity: str, frames: dict[str, pd.DataFrame], picture_hash: Callable[[str], str | None] | None = None
) -> pd.DataFrame:
    """One canonical frame per entity with a text key column ``_key`` (see the module docstring)."""
    m = mapping(entity)
    main = _filter(frames[m.main.name].copy(), m.main.filter)
    if entity == "products":
        main = _assemble_products(main, frames, picture_hash)
    elif entity == "invoices":
        main = _assemble_invoices(main, frames)
    key_cols = list(m.main.key)
    if entity == "invoices":
        key_cols = ["piece"]
    main = main.reset_index(drop=True)
    main[KEY] = _text_key(main, key_cols)
    return main


def _assemble_products(
    articles: pd.DataFrame, frames: dict[str, pd.DataFrame], picture_hash: Callable[[str], str | None] | None
) -> pd.DataFrame:
    out = articles.copy()
    stock = frames.get("stock")
    totals = (
        stock.groupby("ref")["quantity"].sum()
        if stock is not None and len(stock)
        else pd.Series(dtype="Float64")
    )
    managed = out["stock_managed"].fillna(0).astype("Int64") > 0
    out["stock_total"] = out["ref"].map(totals).astype("Float64").fillna(0.0).where(managed, pd.NA)
    out["stock_display"] = [
        "-" if not m else (str(int(t)) if float(t).is_integer() else str(t))
        for m, t in zip(managed, out["stock_total"], strict=True)
    ]
    rate: dict[Any, Any] = {}
    accounting, taxes = frames.get("accounting"), frames.get("taxes")
    if accounting is not None and taxes is not None and len(accounting):
        acc = _filter(accounting, mapping("products").sources["accounting"].filter)
        by_code = dict(zip(taxes["tax_code"], taxes["tax_rate"], strict=True))
        rate = {r: by_code.get(c) for r, c in zip(acc["ref"], acc["tax_code"], strict=True)}
    out["vat_rate"] = out["ref"].map(lambda r: clean(rate.get(r))).astype("Float64")
    families = frames.get("families")
    names = (
        dict(zip(families["family_code"], families["family_name"], strict=True))
        if families is not None
        else {}
    )
    out["family_name"] = out["family_code"].map(lambda c: names.get(c)).astype("string")
    pictures = [picture_hash(str(p)) if picture_hash and clean(p) else None for p in out["picture"]]
    out["picture_sha256"] = pd.Series(pictures, index=out.index, dtype="string")
    return out


def _assemble_invoices(headers: pd.DataFrame, frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    out = headers.copy()
    lines = frames.get("lines")
    grouped: dict[str, list[dict[str, Any]]] = {}
    if lines is not None and len(lines):
        lines = _filter(lines, mapping("invoices").sources["lines"].filter)
        for rec in lines.to_dict("records"):
            line = {k: clean(v) for k, v in rec.items()}
            grouped.setdefault(str(line["piece"]), []).append(line)
    for items in grouped.values():
        items.sort(key=lambda line: (line.get("position") or 0, line.get("line_id") or 0))
    out["lines"] = [grouped.get(str(p), []) for p in out["piece"]]
    out["lines_digest"] = pd.Series(
        [hashlib.sha1(json.dumps(v, sort_keys=True, default=str).encode()).hexdigest() for v in out["lines"]],
        index=out.index,
        dtype="string",
    )
    return out


def records(frame: pd.DataFrame, entity: str) -> dict[str, dict[str, Any]]:
    """Key -> canonical values (compared columns, key fields, and invoice lines) as plain Python."""
    m = mapping(entity)
    keep = list(dict.fromkeys([*m.main.key, *compared_columns(entity)]))
    if entity == "invoices":
        keep.append("lines")
    keep = [c for c in keep if c in frame.columns]
    columns = {c: [v if c == "lines" else clean(v) for v in frame[c].tolist()] for c in keep}
    keys = [str(k) for k in frame[KEY].tolist()]
    return {key: {c: columns[c][i] for c in keep} for i, key in enumerate(keys)}


def row_digest(values: dict[str, Any]) -> str:
    """A short stable digest of a committed row (stored beside its values)."""
    return hashlib.sha1(json.dumps(values, sort_keys=True, default=str).encode()).hexdigest()


@dataclass
class SageChanges:
    """The current records and their classification against the committed snapshot."""

    records: dict[str, dict[str, Any]]
    created: list[str] = field(default_factory=list)
    updated: dict[str, list[str]] = field(default_factory=dict)
    deleted: dict[str, dict[str, Any]] = field(default_factory=dict)
    unchanged: int = 0


#: Below this many rows the diff runs on plain dicts: pandas' per-call overhead dominates small snapshots.
SMALL_SNAPSHOT = 2000


def _small_changes(
    entity: str, frame: pd.DataFrame, committed: dict[str, tuple[str, dict[str, Any]]]
) -> SageChanges:
    recs = records(frame, entity)
    cols = [c for c in compared_columns(entity) if c in frame.columns]
    changes = SageChanges(records=recs)
    for key, values in recs.items():
        old = committed.get(key)
        if old is None:
            changes.created.append(key)
            continue
        changed = [c for c in cols if not _same_cell(values.get(c), old[1].get(c))]
        if changed:
            changes.updated[key] = changed
        else:
            changes.unchanged += 1
    changes.deleted = {k: v for k, (_, v) in committed.items() if k not in recs}
    return changes


def _same_cell(a: Any, b: Any) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return round(float(a), 6) == round(float(b), 6)
    return bool(a == b)


def sage_changes(
    entity: str,
    frame: pd.DataFrame,
    committed: dict[str, tuple[str, dict[str, Any]]],
    *,
    small: int = SMALL_SNAPSHOT,
) -> SageChanges:
    """Diff the current assembled frame against the committed snapshot of ``entity``.

    Snapshots of at most ``small`` rows on both sides are compared as dicts; larger ones go through the
    vectorised :func:`~sage_sync.engine.diff.diff_snapshots`. Both give the same classification.
    """
    if len(frame) <= small and len(committed) <= small:
        return _small_changes(entity, frame, committed)
    cols = [c for c in compared_columns(entity) if c in frame.columns]
    current = frame[[KEY, *cols]].reset_index(drop=True)
    prev_rows = [{KEY: k, **{c: v.get(c) for c in cols}} for k, (_, v) in committed.items()]
    previous = pd.DataFrame(prev_rows, columns=[KEY, *cols])
    for c in [KEY, *cols]:
        target = current[c].dtype
        try:
            if str(target).startswith("datetime"):
                previous[c] = pd.to_datetime(previous[c]).astype(target)
            else:
                previous[c] = previous[c].astype(target)
        except (TypeError, ValueError):
            previous[c] = previous[c].astype("string")
            current[c] = current[c].astype("string")
    diff = diff_snapshots(previous, current, [KEY], cols)
    changes = SageChanges(records=records(frame, entity), unchanged=diff.unchanged_count)
    changes.created = [str(k) for k in diff.created[KEY]]
    for (_, row), (_, flags) in zip(diff.updated.iterrows(), diff.changed.iterrows(), strict=True):
        changes.updated[str(row[KEY])] = [c for c in cols if bool(flags[c])]
    for k in diff.deleted[KEY]:
        changes.deleted[str(k)] = committed[str(k)][1]
    return changes
