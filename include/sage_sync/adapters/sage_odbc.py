"""``SageOdbcSide``: the engine's :class:`~sage_sync.engine.sides.SageSide` over :class:`Sage50Hook`.

Reads hand the engine one frame per mapped source (canonical names), so the engine assembles every entity the
same way whatever the engine behind ODBC. Writes go in one transaction per batch; when the hook refuses a batch
(a row fails validation, or the database refuses one row), the batch is replayed row by row so the valid rows
go through and each refused row gets an error outcome naming its reason (G3: one bad row never blocks others).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pandas as pd

from sage_sync.engine.sides import ItemOutcome
from sage_sync.errors import FatalSyncError, RecordRejected
from sage_sync.hooks.sage50 import Sage50Hook
from sage_sync.hooks.sage50_writes import as_records, record_label
from sage_sync.mapping.sage_snapshot import media_path

log = logging.getLogger(__name__)

#: Entities the engine writes back to Sage (customers/prospects and their contacts).
WRITABLE = ("accounts", "contacts")


def default_media_folder(database: str | None) -> Path | None:
    """The media folder of a file dossier: ``<file stem>_media`` beside the file, when both exist.

    A server dossier (PostgreSQL: ``database`` is a name, not a file) has no default: pass the folder explicitly.
    """
    if not database:
        return None
    path = Path(database)
    if not path.is_file():
        return None
    folder = path.with_name(f"{path.stem}_media")
    return folder if folder.is_dir() else None


class SageOdbcSide:
    """Sage 50 FR read and written through ODBC, plus the dossier's media folder for article pictures.

    Args:
        hook: the ODBC hook to use (default: ``Sage50Hook()`` on connection ``sage50_default``).
        media_folder: the folder ``AR_Photo`` paths are relative to (default: ``<dossier stem>_media`` beside a
            file dossier; no pictures otherwise).
    """

    def __init__(self, hook: Sage50Hook | None = None, *, media_folder: Path | None = None) -> None:
        """Store the hook; the connection is opened lazily, on the first read or write."""
        self.hook = hook if hook is not None else Sage50Hook()
        self._media_folder = media_folder
        self._media_resolved = media_folder is not None

    @property
    def media_folder(self) -> Path | None:
        """The media folder in use (see the class docstring)."""
        if not self._media_resolved:
            self._media_folder = default_media_folder(self.hook.database)
            self._media_resolved = True
        return self._media_folder

    # --- reads ---------------------------------------------------------------------------------------------

    def read_snapshot(self, entity: str) -> dict[str, pd.DataFrame]:
        """Every source of ``entity`` as a typed frame with canonical names, by source name.

        Products come as their raw sources (articles, stock, accounting, taxes, families): the engine joins them
        and hashes pictures through :meth:`read_picture`. Contacts are those of customers and prospects only.
        """
        return self.hook.read_snapshot(entity)

    def read_picture(self, path: str) -> bytes | None:
        """The bytes of the picture ``path`` (relative to the media folder), or None when it is missing.

        A path escaping the media folder (absolute, or with ``..``) counts as missing: the dossier's data must
        never make the sync read arbitrary files.
        """
        target = media_path(self.media_folder, path)
        if target is None:
            return None
        try:
            return target.read_bytes()
        except OSError:
            return None

    # --- writes --------------------------------------------------------------------------------------------

    def insert(self, entity: str, rows: list[dict[str, Any]]) -> list[ItemOutcome]:
        """Insert account or contact rows (canonical names, key included); one outcome per row, in order."""
        self._check_writable(entity)
        return self._write(entity, [dict(r) for r in rows], insert=True)

    def update(
        self, entity: str, keys: list[dict[str, Any]], rows: list[dict[str, Any]]
    ) -> list[ItemOutcome]:
        """Update the given fields of the rows identified by ``keys``; one outcome per row, in order.

        A key that matches no Sage row (deleted meanwhile) is an error outcome, not a silent success.
        """
        self._check_writable(entity)
        if len(keys) != len(rows):
            raise ValueError(f"{entity}: {len(keys)} keys for {len(rows)} rows")
        merged = [{**fields, **key} for key, fields in zip(keys, rows, strict=True)]
        return self._write(entity, merged, insert=False)

    @staticmethod
    def _check_writable(entity: str) -> None:
        if entity not in WRITABLE:
            raise ValueError(f"entity {entity!r} is never written to Sage; only {', '.join(WRITABLE)} are")

    def _write(self, entity: str, rows: list[dict[str, Any]], *, insert: bool) -> list[ItemOutcome]:
        if not rows:
            return []
        try:
            return self._write_batch(entity, rows, insert=insert)
        except RecordRejected as exc:
            log.warning(
                "Sage %s %s: the batch of %d row(s) was refused (%s); writing row by row",
                entity,
                "insert" if insert else "update",
                len(rows),
                "; ".join(exc.problems[:3]),
            )
        except FatalSyncError as exc:
            # A database refusal (duplicate key, constraint) rolled the whole batch back: find the culprit(s).
            log.warning(
                "Sage %s write of %d row(s) rolled back (%s); writing row by row", entity, len(rows), exc
            )
        return [self._write_one(entity, row, insert=insert) for row in rows]

    def _write_batch(self, entity: str, rows: list[dict[str, Any]], *, insert: bool) -> list[ItemOutcome]:
        result = self.hook.upsert(entity, inserts=rows if insert else (), updates=() if insert else rows)
        missing = set(result.missing)
        if not missing:
            return [ItemOutcome(True) for _ in rows]
        source = self.hook.mapping(entity).write
        outcomes = []
        for row in as_records(rows):
            label = record_label(source, row)
            if label in missing:
                outcomes.append(ItemOutcome(False, error=f"{source.table} {label}: no such row in Sage"))
            else:
                outcomes.append(ItemOutcome(True))
        return outcomes

    def _write_one(self, entity: str, row: dict[str, Any], *, insert: bool) -> ItemOutcome:
        try:
            return self._write_batch(entity, [row], insert=insert)[0]
        except RecordRejected as exc:
            return ItemOutcome(False, error="; ".join(exc.problems))
        except FatalSyncError as exc:
            return ItemOutcome(False, error=str(exc))
