"""The simulator's persistent store: every record in memory, written through to one SQLite file.

Reads never touch SQLite (lists must serve tens of thousands of records per second); writes are queued and
flushed in one transaction per HTTP request by :meth:`Store.commit`.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sage_sync.simulators.ssm.entities import ALL_ENTITIES

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    entity TEXT NOT NULL,
    id INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (entity, id)
);
CREATE TABLE IF NOT EXISTS documents (
    id TEXT PRIMARY KEY,
    product_id INTEGER NOT NULL,
    name TEXT NOT NULL,
    is_carrousel INTEGER NOT NULL,
    folder_id TEXT,
    secret TEXT NOT NULL UNIQUE,
    size INTEGER,
    sha256 TEXT,
    content BLOB,
    date_created TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


@dataclass
class Document:
    """A product document's metadata (the bytes stay in SQLite)."""

    id: str
    product_id: int
    name: str
    is_carrousel: bool
    folder_id: str | None
    secret: str
    size: int | None
    sha256: str | None
    date_created: str

    def to_json(self) -> dict[str, Any]:
        """The document as ``GET /products/{id}/documents`` lists it."""
        return {
            "id": self.id,
            "name": self.name,
            "size": self.size,
            "sha256": self.sha256,
            "isCarrousel": self.is_carrousel,
            "folderId": self.folder_id,
            "dateCreated": self.date_created,
        }


class Store:
    """In-memory tables keyed by entity and id, persisted to SQLite."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(_SCHEMA)
        self.tables: dict[str, dict[int, dict[str, Any]]] = {name: {} for name in ALL_ENTITIES}
        self.versions: dict[str, int] = dict.fromkeys(ALL_ENTITIES, 0)
        self.next_ids: dict[str, int] = dict.fromkeys(ALL_ENTITIES, 1)
        self.documents: dict[str, Document] = {}
        self._pending: dict[tuple[str, int], dict[str, Any]] = {}
        self._load()

    # ------------------------------------------------------------------------------------ loading

    def _load(self) -> None:
        for entity, rid, body in self.db.execute("SELECT entity, id, body FROM records ORDER BY entity, id"):
            if entity in self.tables:
                self.tables[entity][rid] = json.loads(body)
        for entity, table in self.tables.items():
            self.next_ids[entity] = max(table, default=0) + 1
        for row in self.db.execute(
            "SELECT id, product_id, name, is_carrousel, folder_id, secret, size, sha256, date_created FROM documents"
        ):
            doc = Document(row[0], row[1], row[2], bool(row[3]), row[4], row[5], row[6], row[7], row[8])
            self.documents[doc.id] = doc

    def get_meta(self, key: str) -> str | None:
        """A persisted setting (e.g. which seed built the tenant)."""
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        """Persist a setting immediately."""
        self.db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))

    @property
    def is_empty(self) -> bool:
        """True when nothing was ever seeded in this file."""
        return not any(self.tables.values())

    # ------------------------------------------------------------------------------------ writes

    def new_id(self, entity: str) -> int:
        """Allocate the next id of an entity."""
        rid = self.next_ids[entity]
        self.next_ids[entity] = rid + 1
        return rid

    def put(self, entity: str, record: dict[str, Any]) -> None:
        """Insert or replace a record (queued for the request's commit)."""
        self.tables[entity][record["id"]] = record
        self.versions[entity] += 1
        self._pending[(entity, record["id"])] = record

    def commit(self) -> None:
        """Flush every queued write in one SQLite transaction."""
        if not self._pending:
            return
        rows = [(e, rid, json.dumps(rec, ensure_ascii=False)) for (e, rid), rec in self._pending.items()]
        self._pending.clear()
        with self._transaction():
            self.db.executemany("INSERT OR REPLACE INTO records(entity, id, body) VALUES (?, ?, ?)", rows)

    def wipe(self) -> None:
        """Delete every record and document (the tenant is re-seeded afterwards)."""
        self._pending.clear()
        with self._transaction():
            self.db.execute("DELETE FROM records")
            self.db.execute("DELETE FROM documents")
            self.db.execute("DELETE FROM meta WHERE key = 'last_document_id'")
        for entity in self.tables:
            self.tables[entity] = {}
            self.versions[entity] += 1
            self.next_ids[entity] = 1
        self.documents.clear()

    def _transaction(self) -> _Tx:
        return _Tx(self.db)

    # ------------------------------------------------------------------------------------ documents

    def add_document(self, doc: Document) -> None:
        """Persist a new document's metadata."""
        self.documents[doc.id] = doc
        self.db.execute(
            "INSERT INTO documents(id, product_id, name, is_carrousel, folder_id, secret, date_created)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                doc.id,
                doc.product_id,
                doc.name,
                int(doc.is_carrousel),
                doc.folder_id,
                doc.secret,
                doc.date_created,
            ),
        )

    def upload_document(self, doc: Document, content: bytes, sha256: str) -> None:
        """Store a document's bytes (a re-upload replaces them)."""
        doc.size = len(content)
        doc.sha256 = sha256
        self.db.execute(
            "UPDATE documents SET size = ?, sha256 = ?, content = ? WHERE id = ?",
            (doc.size, sha256, content, doc.id),
        )

    def new_document_id(self) -> int:
        """Allocate a document id; ids are never reused, even after a deletion."""
        known = max((int(d) for d in self.documents), default=0)
        next_id = max(known, int(self.get_meta("last_document_id") or 0)) + 1
        self.set_meta("last_document_id", str(next_id))
        return next_id

    def delete_document(self, doc_id: str) -> None:
        """Remove a document and its bytes."""
        self.documents.pop(doc_id, None)
        self.db.execute("DELETE FROM documents WHERE id = ?", (doc_id,))

    def document_content(self, doc_id: str) -> bytes | None:
        """The stored bytes of a document, if uploaded."""
        row = self.db.execute("SELECT content FROM documents WHERE id = ?", (doc_id,)).fetchone()
        return None if row is None else row[0]

    def close(self) -> None:
        """Flush and close the SQLite connection."""
        self.commit()
        self.db.close()


class _Tx:
    """``BEGIN``/``COMMIT`` around a block on an autocommit connection."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self.db.execute("ROLLBACK" if exc_type else "COMMIT")
