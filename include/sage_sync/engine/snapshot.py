"""Current Sage snapshots as canonical records, and what changed since the committed snapshot.

The Sage side hands over one frame per source with canonical column names; this module assembles the entity
(products join stock, accounting, taxes and families; invoices group their lines), gives each record a text key,
and classifies keys with :func:`sage_sync.engine.diff.diff_snapshots` against the committed snapshot, whose
stored digests carry each row's key and row hash (ADR 0002) so the previous snapshot is not hashed again.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from sage_sync.engine.codec import clean, mapping
from sage_sync.engine.collector import paused_collector
from sage_sync.engine.diff import diff_snapshots
from sage_sync.engine.row_hash import DEFAULT_DECIMALS, HASH_VERSION, SnapshotHashes, snapshot_hashes
from sage_sync.errors import ConfigurationError
from sage_sync.mapping.registry import registry
from sage_sync.mapping.sage_snapshot import assemble_products

KEY = "_key"
#: The column holding a digest of a record's lines (entities with lines: invoices).
LINES_DIGEST = "lines_digest"
#: The lines digest of a header without lines.
_EMPTY_LINES = hashlib.sha1(b"[]").hexdigest()


def compared_columns(entity: str) -> list[str]:
    """The canonical columns whose change is a reason to sync (``compare: true``), derived ones included.

    An entity with lines (invoices) compares them through one digest column of the lines it groups.
    """
    m = mapping(entity)
    cols = [f.name for f in m.main.fields if f.compare]
    cols += [f.name for f in m.derived if f.compare]
    if registry()[entity].lines is not None:
        cols.append(LINES_DIGEST)
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
        frame[c].astype("Int64").astype("string")
        if pd.api.types.is_numeric_dtype(frame[c])
        else frame[c].astype("string")
        for c in columns
    ]
    out = parts[0]
    for p in parts[1:]:
        out = out + "/" + p
    return out


def assemble(
    entity: str, frames: dict[str, pd.DataFrame], picture_hash: Callable[[str], str | None] | None = None
) -> pd.DataFrame:
    """One canonical frame per entity with a text key column ``_key`` (see the module docstring).

    ``frames`` holds every source the entity's mapping reads, by source name. An entity whose spec names an
    assembly (products: ``articles``) is joined by it; an entity with lines carries a digest of them
    (:func:`assemble_with_lines` also hands the lines over).
    """
    return assemble_with_lines(entity, frames, picture_hash)[0]


def assemble_with_lines(
    entity: str, frames: dict[str, pd.DataFrame], picture_hash: Callable[[str], str | None] | None = None
) -> tuple[pd.DataFrame, SageLines | None]:
    """:func:`assemble`, and for an entity with lines, its lines grouped by header (:class:`SageLines`)."""
    spec = registry()[entity]
    m = spec.mapping
    main = _filter(frames[m.main.name].copy(), m.main.filter)
    if spec.assemble is not None:
        main = ASSEMBLIES[spec.assemble](entity, main, frames, picture_hash)
    lines = None
    if spec.lines is not None and spec.lines.source is not None:
        lines_source = m.sources[spec.lines.source]
        main, lines = group_lines(main, frames.get(spec.lines.source), lines_source.filter, spec.key[0])
    main = main.reset_index(drop=True)
    main[KEY] = _text_key(main, list(spec.key))
    return main, lines


def _assemble_articles(
    entity: str,
    articles: pd.DataFrame,
    frames: dict[str, pd.DataFrame],
    picture_hash: Callable[[str], str | None] | None,
) -> pd.DataFrame:
    """Articles joined with their stock, accounting, taxes and families (D2, D3, D6)."""
    m = mapping(entity)
    sources = {name: _filter(frames[name], src.filter) for name, src in m.sources.items() if name in frames}
    sources[m.main.name] = articles
    for name, src in m.sources.items():
        if name not in sources:
            sources[name] = pd.DataFrame({f.name: pd.Series(dtype=f.pandas_dtype) for f in src.fields})
    return assemble_products(sources, m, picture_hash)


Assembly = Callable[
    [str, pd.DataFrame, dict[str, pd.DataFrame], Callable[[str], str | None] | None], pd.DataFrame
]
#: The named assemblies an entity's ``sync.assemble`` may choose.
ASSEMBLIES: dict[str, Assembly] = {"articles": _assemble_articles}


def _json_cells(column: pd.Series) -> list[str]:
    """Each cell as ``json.dumps(clean(cell), default=str)`` writes it, with one Python call per distinct value."""
    codes, uniques = pd.factorize(column, use_na_sentinel=True)
    kind = column.dtype
    if pd.api.types.is_float_dtype(kind):
        values = np.asarray(uniques, dtype="float64")
        table = values.astype(str).astype(
            object
        )  # numpy writes a float64 as Python's repr, as json.dumps does
        table[np.isnan(values)] = "null"
        table[np.isposinf(values)] = "Infinity"
        table[np.isneginf(values)] = "-Infinity"
    elif pd.api.types.is_integer_dtype(kind) and not pd.api.types.is_bool_dtype(kind):
        table = np.asarray(uniques, dtype="int64").astype(str).astype(object)
    else:
        table = np.array([json.dumps(clean(u), default=str) for u in uniques], dtype=object)
    return np.append(table, "null")[codes].tolist()


@dataclass(frozen=True)
class SageLines:
    """The current lines of an entity with lines (invoices), grouped by header, each header's in its order.

    Grouped without a Python object per line: a header's lines become records only when asked for
    (:meth:`attach`), so the unchanged invoices of a large dossier cost no dict per line (ADR 0018).
    ``frame`` holds the lines header by header; ``spans`` maps a header's join value (text) to its rows.
    """

    join: str
    frame: pd.DataFrame
    spans: dict[str, tuple[int, int]]

    def of(self, header: str) -> list[dict[str, Any]]:
        """The lines of one header as canonical records (empty when it has none)."""
        return self._records([self.spans.get(header, (0, 0))])

    def count(self, headers: Iterable[str]) -> int:
        """How many lines the given headers (join values as text) have."""
        return sum(end - start for start, end in (self.spans.get(h, (0, 0)) for h in set(headers)))

    def attach(self, records: dict[str, dict[str, Any]], keys: Iterable[str] | None = None) -> None:
        """Give each record of ``keys`` (default: every record) its ``lines``, unless it has them already.

        The lines of all of them are made records in one pass (a first load attaches a million).
        """
        wanted = [
            record
            for key in (records if keys is None else keys)
            if (record := records.get(key)) is not None and "lines" not in record
        ]
        spans = [self.spans.get(str(record.get(self.join)), (0, 0)) for record in wanted]
        rows = self._records(spans)
        at = 0
        for record, (start, end) in zip(wanted, spans, strict=True):
            record["lines"] = rows[at : at + end - start]
            at += end - start

    def line_ids(self, records: dict[str, dict[str, Any]], keys: Iterable[str] | None = None) -> list[str]:
        """The ``line_id`` (as text) of each line of the records of ``keys`` (default: every record), in order.

        What ``str(line["line_id"])`` gives for each line :meth:`attach` would give them, without making a record
        of any line.
        """
        spans = [
            self.spans.get(str(record.get(self.join)), (0, 0))
            for key in (records if keys is None else keys)
            if (record := records.get(key)) is not None
        ]
        parts = [np.arange(start, end) for start, end in spans if end > start]
        if not parts:
            return []
        return [str(clean(v)) for v in self.frame["line_id"].iloc[np.concatenate(parts)].tolist()]

    def _records(self, spans: list[tuple[int, int]]) -> list[dict[str, Any]]:
        """The lines of the given spans of ``frame``, in that order, as canonical records."""
        parts = [np.arange(start, end) for start, end in spans if end > start]
        if not parts:
            return []
        chosen = self.frame.iloc[np.concatenate(parts)]
        names = list(chosen.columns)
        with paused_collector():  # a million line records at `large`: a tree, no cycle (ADR 0018)
            columns = [[clean(v) for v in chosen[name].tolist()] for name in names]
            return [dict(zip(names, values, strict=True)) for values in zip(*columns, strict=True)]

    def by_line(self, line_column: str, value_column: str) -> dict[str, Any]:
        """Line key (``line_column`` as text) -> ``value_column``, for the lines where it is set."""
        frame = self.frame[self.frame[value_column].notna()]
        keys = [str(clean(v)) for v in frame[line_column].tolist()]
        return dict(zip(keys, (clean(v) for v in frame[value_column].tolist()), strict=True))


def group_lines(
    headers: pd.DataFrame, lines: pd.DataFrame | None, filters: dict[str, tuple[int | str, ...]], join: str
) -> tuple[pd.DataFrame, SageLines]:
    """Each header with a digest of its lines (joined on ``join``, ordered by position), and the lines grouped.

    The digest is the SHA-1 of the header's lines as ``json.dumps(lines, sort_keys=True, default=str)`` writes the
    list of their canonical records; it is written here column by column, not record by record.
    """
    out = headers.copy()
    lines = pd.DataFrame(columns=[join]) if lines is None else _filter(lines, filters).reset_index(drop=True)
    if not len(lines):
        out[LINES_DIGEST] = pd.Series([_EMPTY_LINES] * len(out), index=out.index, dtype="string")
        return out, SageLines(join, lines, {})
    columns = sorted(lines.columns)
    template = "{" + ", ".join(json.dumps(c).replace("%", "%%") + ": %s" for c in columns) + "}"
    texts = [template % cells for cells in zip(*(_json_cells(lines[c]) for c in columns), strict=True)]
    codes, uniques = pd.factorize(lines[join], use_na_sentinel=True)
    groups = np.append(np.array([str(clean(u)) for u in uniques], dtype=object), "None")[codes]
    zeros = np.zeros(len(lines))
    position = lines["position"].to_numpy(dtype="float64", na_value=0) if "position" in lines else zeros
    line_id = lines["line_id"].to_numpy(dtype="float64", na_value=0) if "line_id" in lines else zeros
    order = np.lexsort((line_id, position, groups))  # stable: equal positions keep the order read
    groups = groups[order]
    ordered = [texts[i] for i in order.tolist()]
    starts = np.flatnonzero(np.r_[True, groups[1:] != groups[:-1]]).tolist()
    ends = [*starts[1:], len(groups)]
    spans = {str(groups[a]): (a, b) for a, b in zip(starts, ends, strict=True)}
    # Hashed header by header: the lines' texts are never joined all at once (300 MB for a million lines).
    digests = {
        g: hashlib.sha1(f"[{', '.join(ordered[a:b])}]".encode()).hexdigest() for g, (a, b) in spans.items()
    }
    out[LINES_DIGEST] = pd.Series(
        [digests.get(key, _EMPTY_LINES) for key in (str(p) for p in out[join].tolist())],
        index=out.index,
        dtype="string",
    )
    return out, SageLines(join, lines.iloc[order].reset_index(drop=True), spans)


def records(frame: pd.DataFrame, entity: str) -> dict[str, dict[str, Any]]:
    """Key -> canonical values (compared columns and key fields) as plain Python.

    An invoice's lines are not among them: :meth:`SageLines.attach` gives them to the records that need them.
    """
    m = mapping(entity)
    keep = list(dict.fromkeys([*m.main.key, *compared_columns(entity)]))
    keep = [c for c in keep if c in frame.columns]
    with paused_collector():  # one dict per row: a tree, no cycle (ADR 0018)
        columns = {c: [clean(v) for v in frame[c].tolist()] for c in keep}
        keys = [str(k) for k in frame[KEY].tolist()]
        return {key: {c: columns[c][i] for c in keep} for i, key in enumerate(keys)}


@dataclass
class SageChanges:
    """The current records and their classification against the committed snapshot."""

    records: dict[str, dict[str, Any]]
    created: list[str] = field(default_factory=list)
    updated: dict[str, list[str]] = field(default_factory=dict)
    deleted: dict[str, dict[str, Any]] = field(default_factory=dict)
    unchanged: int = 0


def hash_scheme(columns: Sequence[str], decimals: int = DEFAULT_DECIMALS) -> str:
    """The prefix of a stored row digest: hash version and a tag of the compared columns and rounding.

    A digest whose prefix differs from the current one (the mapping's compared columns changed, or the hash
    scheme did) is not reused: that row is hashed again from its committed values.
    """
    tag = zlib.crc32(("|".join(sorted(columns)) + f"#{decimals}").encode()) & 0xFFFF
    return f"{HASH_VERSION}.{tag:04x}."


def _stored_column(values: list[Any], temporal: bool) -> pd.Series:
    """A column of committed values as the extract types it (dates and timestamps as instants)."""
    column = pd.Series(values, dtype=object)
    return pd.to_datetime(column) if temporal else column


def committed_digests(entity: str, rows: dict[str, dict[str, Any]]) -> dict[str, str]:
    """Key -> stored digest (scheme prefix, then key hash and row hash in hex) of rows about to be committed.

    The hashes are computed from the committed values themselves, not from the extract: a merged row or a row
    inserted from SSM is committed with values the extract never held, and the next run must see exactly what
    was committed. Only confirmed rows are hashed, so the cost follows the churn, not the snapshot size.
    """
    if not rows:
        return {}
    keys = list(rows)
    cols = [c for c in compared_columns(entity) if any(c in r for r in rows.values())]
    m = mapping(entity)
    # Dates are stored as text: read back as instants, they hash as the next extract's datetime column does.
    temporal = {f.name for f in [*m.main.fields, *m.derived] if f.pandas_dtype.startswith("datetime")}
    try:
        frame = pd.DataFrame(
            {
                KEY: pd.array(keys, dtype="string"),
                **{c: _stored_column([rows[k].get(c) for k in keys], c in temporal) for c in cols},
            }
        )
        hashes = snapshot_hashes(frame, [KEY], cols)
    except (ConfigurationError, TypeError, ValueError):
        # Values the hash cannot canonicalise: store no digest; the next diff hashes these rows itself.
        return dict.fromkeys(keys, "")
    scheme = hash_scheme(cols)
    return {
        k: f"{scheme}{int(kh):016x}{int(rh):016x}"
        for k, kh, rh in zip(keys, hashes.key_hashes, hashes.row_hashes, strict=True)
    }


def _stored_hashes(digests: list[str], previous: pd.DataFrame, cols: list[str]) -> SnapshotHashes:
    """The hashes of ``previous`` (one digest per row), read from the digests; rows without a usable one are hashed."""
    scheme = hash_scheme(cols)
    width = len(scheme) + 32
    usable = np.fromiter(
        (len(d) == width and d.startswith(scheme) for d in digests), dtype=bool, count=len(digests)
    )
    key_hashes = np.zeros(len(digests), dtype=np.uint64)
    row_hashes = np.zeros(len(digests), dtype=np.uint64)
    if usable.any():
        raw = bytes.fromhex("".join(d[-32:] for d, ok in zip(digests, usable, strict=True) if ok))
        pairs = np.frombuffer(raw, dtype=">u8").astype(np.uint64).reshape(-1, 2)
        key_hashes[usable], row_hashes[usable] = pairs[:, 0], pairs[:, 1]
    missing = np.flatnonzero(~usable)
    if len(missing):
        fresh = snapshot_hashes(previous.iloc[missing], [KEY], cols)
        key_hashes[missing], row_hashes[missing] = fresh.key_hashes, fresh.row_hashes
    return SnapshotHashes(
        key=(KEY,),
        columns=tuple(cols),
        decimals=DEFAULT_DECIMALS,
        key_hashes=key_hashes,
        row_hashes=row_hashes,
    )


@dataclass(frozen=True)
class CommittedSnapshot:
    """The committed snapshot of an entity as the diff needs it: every key's stored digest, the values on demand.

    Only the rows whose digest differs from the current row (and the deleted ones) are read with their values: a
    run in which little changed parses little of the state (ADR 0018).
    """

    digests: dict[str, str]
    values: Callable[[list[str]], dict[str, dict[str, Any]]]

    @classmethod
    def of(cls, rows: dict[str, tuple[str, dict[str, Any]]]) -> CommittedSnapshot:
        """The snapshot of ``rows`` held in memory (key -> (digest, values))."""
        return cls({k: d for k, (d, _) in rows.items()}, lambda keys: {k: rows[k][1] for k in keys})

    def __len__(self) -> int:
        return len(self.digests)


def _row_hashes(digests: list[str], scheme: str) -> tuple[np.ndarray, np.ndarray]:
    """The stored row hashes of ``digests`` and which of them were made by the current ``scheme``."""
    width = len(scheme) + 32
    usable = np.fromiter(
        (len(d) == width and d.startswith(scheme) for d in digests), dtype=bool, count=len(digests)
    )
    row_hashes = np.zeros(len(digests), dtype=np.uint64)
    if usable.any():
        raw = bytes.fromhex("".join(d[-16:] for d, ok in zip(digests, usable, strict=True) if ok))
        row_hashes[usable] = np.frombuffer(raw, dtype=">u8").astype(np.uint64)
    return row_hashes, usable


def sage_changes(
    entity: str,
    frame: pd.DataFrame,
    committed: CommittedSnapshot | dict[str, tuple[str, dict[str, Any]]],
) -> SageChanges:
    """Diff the current assembled frame against the committed snapshot of ``entity``.

    The current extract is hashed once and its row hashes are compared, key by key, with the digests stored with
    the committed snapshot (see :func:`committed_digests`); only the rows whose hash differs, those without a
    usable digest and the deleted ones have their committed values read and go through
    :func:`~sage_sync.engine.diff.diff_snapshots`, which names the changed fields.
    """
    if not isinstance(committed, CommittedSnapshot):
        committed = CommittedSnapshot.of(committed)
    cols = [c for c in compared_columns(entity) if c in frame.columns]
    current = frame[[KEY, *cols]].reset_index(drop=True)
    keys = [str(k) for k in current[KEY].tolist()]
    candidates = np.ones(len(keys), dtype=bool)
    fast_unchanged = 0
    if len(keys) and len(set(keys)) == len(keys):  # repeated keys: the diff names them (DuplicateKeyError)
        stored = [committed.digests.get(k, "") for k in keys]
        stored_hashes, usable = _row_hashes(stored, hash_scheme(cols))
        same = usable & (stored_hashes == snapshot_hashes(current, [KEY], cols).row_hashes)
        candidates = ~same
        fast_unchanged = int(same.sum())
    in_scope = [k for k, c in zip(keys, candidates, strict=True) if c]
    gone = committed.digests.keys() - set(keys)
    wanted = [k for k in in_scope if k in committed.digests] + sorted(gone)
    values = committed.values(wanted) if wanted else {}
    prev_rows = [{KEY: k, **{c: values[k].get(c) for c in cols}} for k in wanted]
    previous = pd.DataFrame(prev_rows, columns=[KEY, *cols])
    current = current[candidates].reset_index(drop=True)
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
    hashes = _stored_hashes([committed.digests[k] for k in wanted], previous, cols)
    diff = diff_snapshots(previous, current, [KEY], cols, previous_hashes=hashes)
    changes = SageChanges(records=records(frame, entity), unchanged=fast_unchanged + diff.unchanged_count)
    changes.created = [str(k) for k in diff.created[KEY]]
    for (_, row), (_, flags) in zip(diff.updated.iterrows(), diff.changed.iterrows(), strict=True):
        changes.updated[str(row[KEY])] = [c for c in cols if bool(flags[c])]
    for k in diff.deleted[KEY]:
        changes.deleted[str(k)] = values[str(k)]
    return changes
