"""The sync state store (SQLAlchemy Core): SQLite file by default, PostgreSQL by URL.

What it keeps (see docs/adr/0005-engine-plans-and-state.md):
bindings Sage key <-> SSM id with the last synced values (the three-way merge base) and per-record status;
the committed Sage snapshot per entity (key, row hash, values JSON); SSM watermarks and the id ranges of our own
confirmed creates that incremental reads skip; SSM records waiting for a later run (deferred or failed); codes
reserved for companies created in SSM (C4); quarantine; conflicts; the run ledger with counts per entity and a
per-record log.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from sage_sync.engine.bindings import DEAD, Binding, BindingScope, Status
from sage_sync.engine.own_creates import CreatedRange
from sage_sync.engine.snapshot import CommittedSnapshot

SCHEMA_VERSION = 1

metadata = sa.MetaData()

schema_version = sa.Table("schema_version", metadata, sa.Column("version", sa.Integer, nullable=False))

bindings = sa.Table(
    "bindings",
    metadata,
    sa.Column("entity", sa.String(32), primary_key=True),
    sa.Column("key", sa.String(80), primary_key=True),
    sa.Column("ssm_id", sa.BigInteger, nullable=True),
    sa.Column("synced_json", sa.Text, nullable=True),
    sa.Column("ssm_date_updated", sa.String(40), nullable=True),
    sa.Column("status", sa.String(20), nullable=False, default="ok"),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("updated_at", sa.String(40), nullable=False),
    sa.Index("ix_bindings_ssm", "entity", "ssm_id"),
)

snapshot_rows = sa.Table(
    "snapshot_rows",
    metadata,
    sa.Column("entity", sa.String(32), primary_key=True),
    sa.Column("key", sa.String(80), primary_key=True),
    sa.Column("row_hash", sa.String(40), nullable=False),
    sa.Column("values_json", sa.Text, nullable=False),
)

watermarks = sa.Table(
    "watermarks",
    metadata,
    sa.Column("entity", sa.String(32), primary_key=True),
    sa.Column("value", sa.String(40), nullable=False),
)

own_creates = sa.Table(
    "own_creates",
    metadata,
    sa.Column("entity", sa.String(32), primary_key=True),
    sa.Column("lo", sa.BigInteger, primary_key=True),
    sa.Column("hi", sa.BigInteger, nullable=False),
    sa.Column("until", sa.String(40), nullable=True),
)

pending = sa.Table(
    "pending",
    metadata,
    sa.Column("entity", sa.String(32), primary_key=True),
    sa.Column("ssm_id", sa.BigInteger, primary_key=True),
    sa.Column("rule", sa.String(8), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, default=1),
    sa.Column("updated_at", sa.String(40), nullable=False),
)

reserved_codes = sa.Table(
    "reserved_codes",
    metadata,
    sa.Column("entity", sa.String(32), primary_key=True),
    sa.Column("ssm_id", sa.BigInteger, primary_key=True),
    sa.Column("code", sa.String(80), nullable=False),
    sa.Column("reserved_at", sa.String(40), nullable=False),
    sa.UniqueConstraint("entity", "code", name="uq_reserved_code"),
)

sequences = sa.Table(
    "sequences",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("value", sa.BigInteger, nullable=False),
)

quarantine = sa.Table(
    "quarantine",
    metadata,
    sa.Column("entity", sa.String(32), primary_key=True),
    sa.Column("key", sa.String(80), primary_key=True),
    sa.Column("severity", sa.String(10), primary_key=True),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, default=1),
    sa.Column("first_seen", sa.String(40), nullable=False),
    sa.Column("last_seen", sa.String(40), nullable=False),
    sa.Column("released_at", sa.String(40), nullable=True),
)

conflicts = sa.Table(
    "conflicts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(40), nullable=True),
    sa.Column("entity", sa.String(32), nullable=False),
    sa.Column("key", sa.String(80), nullable=False),
    sa.Column("field", sa.String(64), nullable=False),
    sa.Column("sage_value", sa.Text, nullable=True),
    sa.Column("ssm_value", sa.Text, nullable=True),
    sa.Column("winner", sa.String(8), nullable=False),
    sa.Column("at", sa.String(40), nullable=False),
)

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("run_id", sa.String(40), primary_key=True),
    sa.Column("started_at", sa.String(40), nullable=False),
    sa.Column("finished_at", sa.String(40), nullable=True),
    sa.Column("dry_run", sa.Boolean, nullable=False, default=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("api_calls", sa.Integer, nullable=False, default=0),
    sa.Column("duration_s", sa.Float, nullable=True),
)

run_entities = sa.Table(
    "run_entities",
    metadata,
    sa.Column("run_id", sa.String(40), primary_key=True),
    sa.Column("entity", sa.String(32), primary_key=True),
    sa.Column("counts_json", sa.Text, nullable=False),
    sa.Column("api_calls", sa.Integer, nullable=False, default=0),
    sa.Column("duration_s", sa.Float, nullable=False, default=0.0),
)

leases = sa.Table(
    "leases",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("holder", sa.String(250), nullable=False),
    sa.Column("acquired_at", sa.String(40), nullable=False),
    sa.Column("expires_at", sa.String(40), nullable=False),
)

record_log = sa.Table(
    "record_log",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(40), nullable=False),
    sa.Column("entity", sa.String(32), nullable=False),
    sa.Column("key", sa.String(80), nullable=False),
    sa.Column("action", sa.String(20), nullable=False),
    sa.Column("rule", sa.String(8), nullable=False),
    sa.Column("outcome", sa.String(12), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
)


def now_iso() -> str:
    """The current UTC time as ISO-8601 text."""
    return _iso(datetime.now(UTC))


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Lease:
    """Who holds a lease, since when, until when (ISO-8601 UTC)."""

    name: str
    holder: str
    acquired_at: str
    expires_at: str

    def held_by(self, holder: str) -> bool:
        """True when ``holder`` holds it (expired or not: only another holder's take ends it)."""
        return self.holder == holder


def _chunks(items: list[Any], size: int = 500) -> Iterator[list[Any]]:
    """``items`` in parts of ``size``: SQLite caps the variables of one statement."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


#: The most texts a :class:`BindingScope` names for the database to select by (SQLite takes 32,766 variables).
_SCOPE_TEXTS = 20_000


def _json_valid(dialect: str, column: sa.Column[Any]) -> sa.ColumnElement[bool]:
    """Whether the database can read ``column`` as JSON: the standard library may have written ``NaN``."""
    if dialect == "postgresql":
        readable = sa.not_(column.regexp_match("NaN|Infinity"))  # a text holding either is read here instead
    else:
        readable = sa.func.json_valid(column) == 1
    return sa.or_(column.is_(None), readable)


def _json_field(
    dialect: str, column: sa.Column[Any], name: str, *, text: bool = False
) -> sa.ColumnElement[Any]:
    """A field of stored JSON values, None where :func:`_json_valid` is false.

    As JSON holds it (SQLite); as a value, or as text with ``text`` (PostgreSQL).
    """
    field: sa.ColumnElement[Any]
    if dialect == "postgresql":
        element = sa.cast(column, postgresql.JSONB)[name]
        field = element.astext if text else element
    else:
        field = sa.func.json_extract(column, f'$."{name}"')
    return sa.case((_json_valid(dialect, column), field), else_=None)


def _in_scope(dialect: str, scope: BindingScope) -> sa.ColumnElement[bool]:
    """The bindings a :class:`BindingScope` selects, as one condition (values the database cannot read, too)."""
    others = bindings.alias("linked")
    conditions: list[sa.ColumnElement[bool]] = [
        bindings.c.key.in_(sorted(scope.keys)),
        sa.not_(_json_valid(dialect, bindings.c.synced_json)),
    ]
    for name, texts in scope.values:
        field = _json_field(dialect, bindings.c.synced_json, name, text=True)
        conditions.append(sa.cast(field, sa.Text).in_(sorted(texts)))
    for name, target in scope.links:
        field = _json_field(dialect, bindings.c.synced_json, name, text=True)
        live_id = others.c.ssm_id if dialect != "postgresql" else sa.cast(others.c.ssm_id, sa.Text)
        live = sa.select(live_id).where(
            others.c.entity == target,
            others.c.ssm_id.is_not(None),
            others.c.status.not_in([str(s) for s in DEAD]),
        )
        conditions.append(sa.or_(field.is_(None), field.not_in(live)))
    if scope.failed_creates:
        conditions.append(sa.and_(bindings.c.status == str(Status.FAILED), bindings.c.ssm_id.is_(None)))
    return sa.or_(*conditions)


#: From this many rows, a SQLite executemany is handed to the driver directly (:func:`_execute_many`).
DRIVER_ROWS = 100


def _execute_many(conn: sa.Connection, stmt: Any, rows: list[dict[str, Any]]) -> None:
    """Execute ``stmt`` once per row of ``rows`` (rows with the same columns) in one executemany.

    On SQLite, for :data:`DRIVER_ROWS` rows or more, the statement is compiled here and handed to the driver with
    each row as a plain tuple: SQLAlchemy's own executemany prepares every row's parameters in Python, a fifth of a
    first load's commit of a million records (ADR 0018). Fewer rows (one pending record, one watermark) go through
    SQLAlchemy, whose cached compilation is cheaper than compiling again. So does a statement that needs a value
    a row does not give (a column default), and every statement elsewhere.
    """
    if conn.dialect.name == "sqlite" and len(rows) >= DRIVER_ROWS:
        compiled = stmt.compile(dialect=conn.dialect, column_keys=list(rows[0]))
        order = compiled.positiontup or []
        if set(order) <= rows[0].keys():
            conn.exec_driver_sql(compiled.string, [tuple(row[name] for name in order) for row in rows])
            return
    conn.execute(stmt, rows)


def _loads(text: str) -> Any:
    """Stored JSON back as values (orjson; the standard library for the ``NaN`` it may have written)."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


#: orjson writing what ``json.dumps(sort_keys=True, default=str)`` wrote, compactly (see :func:`_as_json`).
_DUMPS_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME


def _as_json(value: Any) -> Any:
    """What the standard library made of a value orjson does not know.

    A float's subclass (numpy's ``float64``) as a float; anything else (a date, a decimal, another numpy scalar) as
    its ``str()``.
    """
    return float(value) if isinstance(value, float) else str(value)


def dumps(value: Any) -> str:
    """Canonical JSON for stored values (sorted keys, dates as text).

    Written by orjson, several times faster than the standard library (a first load stores a million bindings);
    the standard library writes what orjson refuses (an integer beyond 64 bits, a lone surrogate in a text). A
    float that is not finite is written ``null`` (JSON has no such number; cleaned values hold none).
    """
    try:
        return orjson.dumps(value, default=_as_json, option=_DUMPS_OPTIONS).decode()
    except TypeError:
        return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


@dataclass(frozen=True)
class BindRow:
    """One binding to record with :meth:`StateStore.bind_many`."""

    entity: str
    key: str
    ssm_id: int | None
    synced: dict[str, Any] | None
    ssm_date_updated: str | None = None
    status: str = "ok"


#: How long a write to a SQLite state store waits for another task's transaction (an entity's whole commit step
#: is one: about a minute for the invoices of a large first load) before it fails.
SQLITE_WAIT_SECONDS = 300


def _write_ahead_log(dbapi_connection: Any, _: Any) -> None:
    """Put a SQLite state store in write-ahead-log mode: reads go on while another task's commit step writes.

    In SQLite's default mode a transaction that has written more than its page cache locks the whole file: under
    an executor running tasks side by side, a step that reads the state while another entity commits failed with
    "database is locked" and waited for its retry (ADR 0018, decision 41). With the log, one writer at a time
    still waits for the other (:data:`SQLITE_WAIT_SECONDS`), and readers never do.
    """
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
    finally:
        cursor.close()


class StateStore:
    """Access to the state database; every method is one short transaction."""

    def __init__(self, url: str = "sqlite:///sage_sync_state.db") -> None:
        """Open (lazily) the database at ``url``; call :meth:`migrate` before use."""
        self.url = url
        on_sqlite = sa.make_url(url).get_backend_name() == "sqlite"
        self.engine = sa.create_engine(
            url, future=True, connect_args={"timeout": SQLITE_WAIT_SECONDS} if on_sqlite else {}
        )
        if on_sqlite:
            sa.event.listen(self.engine, "connect", _write_ahead_log)
        self._conn: sa.Connection | None = None

    @contextmanager
    def _tx(self) -> Iterator[sa.Connection]:
        """The batch's connection when inside :meth:`batch`, else a new short transaction."""
        if self._conn is not None:
            yield self._conn
            return
        with self.engine.begin() as conn:
            yield conn

    @contextmanager
    def batch(self) -> Iterator[StateStore]:
        """Run several calls in one transaction (one commit, one fsync), e.g. an entity's whole commit step."""
        if self._conn is not None:
            yield self
            return
        with self.engine.begin() as conn:
            self._conn = conn
            try:
                yield self
            finally:
                self._conn = None

    # --- schema -----------------------------------------------------------------------------------------------

    def migrate(self) -> int:
        """Create missing tables and record the schema version; safe to call on every start."""
        metadata.create_all(self.engine)
        with self._tx() as conn:
            current = conn.execute(sa.select(sa.func.max(schema_version.c.version))).scalar()
            if current is None:
                conn.execute(schema_version.insert().values(version=SCHEMA_VERSION))
                current = SCHEMA_VERSION
            elif current > SCHEMA_VERSION:
                raise RuntimeError(
                    f"state schema version {current} is newer than this code ({SCHEMA_VERSION})"
                )
        return int(current)

    def version(self) -> int | None:
        """The recorded schema version (None before the first migrate)."""
        if not sa.inspect(self.engine).has_table("schema_version"):
            return None
        with self._tx() as conn:
            value = conn.execute(sa.select(sa.func.max(schema_version.c.version))).scalar()
        return None if value is None else int(value)

    def _upsert(self, conn: sa.Connection, table: sa.Table, row: dict[str, Any]) -> None:
        self._upsert_many(conn, table, [row])

    def _upsert_many(self, conn: sa.Connection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
        """Insert or update ``rows`` (all with the same columns, distinct primary keys) in one executemany."""
        if not rows:
            return
        keys = [c.name for c in table.primary_key.columns]
        insert: Any
        if conn.dialect.name == "postgresql":
            insert = postgresql.insert(table)
        elif conn.dialect.name == "sqlite":
            insert = sqlite.insert(table)
        else:  # pragma: no cover - only the two supported databases
            raise RuntimeError(f"unsupported state database {conn.dialect.name!r}")
        updates = {c: insert.excluded[c] for c in rows[0] if c not in keys}
        stmt = insert.on_conflict_do_update(index_elements=keys, set_=updates) if updates else insert
        _execute_many(conn, stmt, rows)

    # --- bindings and last synced values ---------------------------------------------------------------------

    def bindings(
        self,
        entity: str,
        keep: Callable[[str, dict[str, Any] | None], bool] | None = None,
        scope: BindingScope | None = None,
    ) -> dict[str, Binding]:
        """The bindings of ``entity`` by Sage key: every one, or those ``keep(key, synced values)`` accepts.

        ``scope`` selects in the database the bindings ``keep`` may accept (every one when it names more texts
        than one statement takes). A million invoice lines are read in seconds: plain rows, values parsed with
        orjson, and only the kept ones become :class:`Binding` objects (ADR 0018).
        """
        columns = (
            bindings.c.key,
            bindings.c.ssm_id,
            bindings.c.synced_json,
            bindings.c.status,
            bindings.c.ssm_date_updated,
            bindings.c.attempts,
        )
        with self._tx() as conn:
            query = sa.select(*columns).where(bindings.c.entity == entity)
            if scope is not None and scope.size() <= _SCOPE_TEXTS:
                query = query.where(_in_scope(conn.dialect.name, scope))
            rows = conn.execute(query).all()
        statuses = {str(s): s for s in Status}
        out: dict[str, Binding] = {}
        for key, ssm_id, synced_json, status, date_updated, attempts in rows:
            synced = _loads(synced_json) if synced_json else None
            if keep is not None and not keep(key, synced):
                continue
            out[key] = Binding(
                ssm_id=None if ssm_id is None else int(ssm_id),
                synced=synced,
                status=statuses.get(status) or Status(status),
                ssm_date_updated=date_updated,
                attempts=int(attempts),
            )
        return out

    def binding_states(self, entity: str) -> dict[str, tuple[int | None, bool]]:
        """Sage key -> (SSM id, whether that SSM record is live) of every binding of ``entity``, values unread."""
        with self._tx() as conn:
            rows = conn.execute(
                sa.select(bindings.c.key, bindings.c.ssm_id, bindings.c.status).where(
                    bindings.c.entity == entity
                )
            ).all()
        dead = {str(s) for s in DEAD}
        return {
            r.key: (None, False) if r.ssm_id is None else (int(r.ssm_id), r.status not in dead) for r in rows
        }

    def live_ssm_ids(self, entity: str) -> dict[str, int]:
        """Sage key -> SSM id of every binding of ``entity`` whose SSM record is live (references at load time)."""
        dead = [str(s) for s in DEAD]
        with self._tx() as conn:
            rows = conn.execute(
                sa.select(bindings.c.key, bindings.c.ssm_id).where(
                    bindings.c.entity == entity,
                    bindings.c.ssm_id.is_not(None),
                    bindings.c.status.not_in(dead),
                )
            ).all()
        return {r.key: int(r.ssm_id) for r in rows}

    def bind(
        self,
        entity: str,
        key: str,
        ssm_id: int | None,
        synced: dict[str, Any] | None,
        ssm_date_updated: str | None = None,
        status: str = "ok",
    ) -> None:
        """Record (or move) the binding of ``key`` with its new base values, after a confirmed write."""
        self.bind_many([BindRow(entity, key, ssm_id, synced, ssm_date_updated, status)])

    def bind_many(self, rows: Iterable[BindRow]) -> None:
        """:meth:`bind` for many records in one statement (a first load commits ~100k of them).

        When a key appears more than once, the last row wins, as with one :meth:`bind` call per row.
        """
        stamp = now_iso()
        latest = {
            (r.entity, r.key): {
                "entity": r.entity,
                "key": r.key,
                "ssm_id": r.ssm_id,
                "synced_json": dumps(r.synced) if r.synced is not None else None,
                "ssm_date_updated": r.ssm_date_updated,
                "status": r.status,
                "attempts": 0,
                "last_error": None,
                "updated_at": stamp,
            }
            for r in rows
        }
        if latest:
            with self._tx() as conn:
                self._upsert_many(conn, bindings, list(latest.values()))

    def mark_failed(self, entity: str, key: str, error: str) -> None:
        """Count one more failed attempt on ``key`` (its values and snapshot stay where they were, G5)."""
        with self._tx() as conn:
            done = conn.execute(
                bindings.update()
                .where(bindings.c.entity == entity, bindings.c.key == key)
                .values(
                    status="failed", attempts=bindings.c.attempts + 1, last_error=error, updated_at=now_iso()
                )
            )
            if done.rowcount == 0:
                conn.execute(
                    bindings.insert().values(
                        entity=entity,
                        key=key,
                        ssm_id=None,
                        synced_json=None,
                        status="failed",
                        attempts=1,
                        last_error=error,
                        updated_at=now_iso(),
                    )
                )

    # --- committed snapshot ----------------------------------------------------------------------------------

    def snapshot(self, entity: str) -> dict[str, tuple[str, dict[str, Any]]]:
        """The committed snapshot of ``entity``: key -> (digest with key and row hash, values)."""
        with self._tx() as conn:
            rows = conn.execute(sa.select(snapshot_rows).where(snapshot_rows.c.entity == entity)).all()
        return {r.key: (r.row_hash, _loads(r.values_json)) for r in rows}

    def snapshot_field(self, entity: str, name: str) -> dict[str, Any]:
        """Key -> one field of the committed values of ``entity``, read by the database, not parsed here."""
        with self._tx() as conn:
            column = snapshot_rows.c.values_json
            valid = _json_valid(conn.dialect.name, column)
            unread = sa.case((valid, None), else_=column)  # parsed here when the database cannot read it
            field = _json_field(conn.dialect.name, column, name)
            rows = conn.execute(
                sa.select(snapshot_rows.c.key, field, unread).where(snapshot_rows.c.entity == entity)
            ).all()
        return {key: value if raw is None else _loads(raw).get(name) for key, value, raw in rows}

    def committed(self, entity: str) -> CommittedSnapshot:
        """The committed snapshot of ``entity`` for the diff: every digest now, the values of given keys on demand."""
        with self._tx() as conn:
            rows = conn.execute(
                sa.select(snapshot_rows.c.key, snapshot_rows.c.row_hash).where(
                    snapshot_rows.c.entity == entity
                )
            ).all()
        return CommittedSnapshot(
            {r.key: r.row_hash for r in rows}, lambda keys: self.snapshot_values(entity, keys)
        )

    def snapshot_values(self, entity: str, keys: list[str]) -> dict[str, dict[str, Any]]:
        """The committed values of ``keys`` of ``entity`` (keys not in the snapshot are left out)."""
        out: dict[str, dict[str, Any]] = {}
        with self._tx() as conn:
            for part in _chunks(keys):
                rows = conn.execute(
                    sa.select(snapshot_rows.c.key, snapshot_rows.c.values_json).where(
                        snapshot_rows.c.entity == entity, snapshot_rows.c.key.in_(part)
                    )
                ).all()
                out.update((r.key, _loads(r.values_json)) for r in rows)
        return out

    def snapshot_keys(self, entity: str) -> set[str]:
        """The keys of the committed snapshot of ``entity`` (without reading the values)."""
        with self._tx() as conn:
            rows = conn.execute(sa.select(snapshot_rows.c.key).where(snapshot_rows.c.entity == entity)).all()
        return {r.key for r in rows}

    def token(self, entity: str) -> str:
        """A marker of how far the state of ``entity`` has moved: watermark, snapshot size, last logged record.

        The load step compares it with the one taken at extract time: when another run committed in between, the
        staged plan is stale and must not be applied (a re-run of an old interval never writes older data over
        newer).
        """
        with self._tx() as conn:
            size = conn.execute(
                sa.select(sa.func.count()).select_from(snapshot_rows).where(snapshot_rows.c.entity == entity)
            ).scalar()
            last = conn.execute(
                sa.select(sa.func.max(record_log.c.id)).where(record_log.c.entity == entity)
            ).scalar()
        return f"{self.watermark(entity)}|{int(size or 0)}|{int(last or 0)}"

    def snapshot_size(self, entity: str) -> int:
        """How many rows the committed snapshot of ``entity`` holds."""
        with self._tx() as conn:
            value = conn.execute(
                sa.select(sa.func.count()).select_from(snapshot_rows).where(snapshot_rows.c.entity == entity)
            ).scalar()
        return int(value or 0)

    def commit_rows(self, entity: str, rows: dict[str, tuple[str, dict[str, Any]] | None]) -> None:
        """Advance the committed snapshot for confirmed rows only; ``None`` removes a confirmed deletion."""
        if not rows:
            return
        deleted = [key for key, value in rows.items() if value is None]
        kept = [
            {"entity": entity, "key": key, "row_hash": value[0], "values_json": dumps(value[1])}
            for key, value in rows.items()
            if value is not None
        ]
        with self._tx() as conn:
            # One statement per chunk rather than per row: a run's commit touches every confirmed row.
            for part in _chunks(deleted):
                conn.execute(
                    snapshot_rows.delete().where(
                        snapshot_rows.c.entity == entity, snapshot_rows.c.key.in_(part)
                    )
                )
            if kept:
                insert: Any = (postgresql if conn.dialect.name == "postgresql" else sqlite).insert(
                    snapshot_rows
                )
                _execute_many(
                    conn,
                    insert.on_conflict_do_update(
                        index_elements=["entity", "key"],
                        set_={
                            "row_hash": insert.excluded.row_hash,
                            "values_json": insert.excluded.values_json,
                        },
                    ),
                    kept,
                )

    # --- watermarks and pending SSM records ------------------------------------------------------------------

    def watermark(self, entity: str) -> str | None:
        """The highest SSM ``dateUpdated`` fully processed for ``entity``."""
        with self._tx() as conn:
            return conn.execute(sa.select(watermarks.c.value).where(watermarks.c.entity == entity)).scalar()

    def set_watermark(self, entity: str, value: str) -> None:
        """Advance the watermark of ``entity`` (never backwards)."""
        current = self.watermark(entity)
        if current is not None and current >= value:
            return
        with self._tx() as conn:
            self._upsert(conn, watermarks, {"entity": entity, "value": value})

    def own_creates(self, entity: str) -> list[CreatedRange]:
        """The id ranges of our confirmed creates that incremental reads of ``entity`` skip (oldest first)."""
        with self._tx() as conn:
            rows = conn.execute(
                sa.select(own_creates.c.lo, own_creates.c.hi, own_creates.c.until)
                .where(own_creates.c.entity == entity)
                .order_by(own_creates.c.lo)
            ).all()
        return [CreatedRange(int(lo), int(hi), until) for lo, hi, until in rows]

    def set_own_creates(self, entity: str, ranges: Iterable[CreatedRange]) -> None:
        """Replace the id ranges of our own creates of ``entity``."""
        with self._tx() as conn:
            conn.execute(own_creates.delete().where(own_creates.c.entity == entity))
            rows = [{"entity": entity, "lo": r.lo, "hi": r.hi, "until": r.until} for r in ranges]
            if rows:
                conn.execute(own_creates.insert(), rows)

    def pending(self, entity: str) -> dict[int, str]:
        """SSM ids of ``entity`` to fetch again next run (deferred or failed), with the reason."""
        with self._tx() as conn:
            rows = conn.execute(sa.select(pending).where(pending.c.entity == entity)).all()
        return {int(r.ssm_id): r.reason for r in rows}

    def set_pending(self, entity: str, ssm_id: int, rule: str, reason: str) -> None:
        """Remember an SSM record that must be looked at again next run."""
        with self._tx() as conn:
            old = conn.execute(
                sa.select(pending.c.attempts).where(pending.c.entity == entity, pending.c.ssm_id == ssm_id)
            ).scalar()
            self._upsert(
                conn,
                pending,
                {
                    "entity": entity,
                    "ssm_id": ssm_id,
                    "rule": rule,
                    "reason": reason,
                    "attempts": int(old or 0) + 1,
                    "updated_at": now_iso(),
                },
            )

    def clear_pending(self, entity: str, ssm_ids: Iterable[int]) -> None:
        """Forget pending SSM records once handled."""
        ids = list(ssm_ids)
        if not ids:
            return
        with self._tx() as conn:
            for part in _chunks(ids):
                conn.execute(pending.delete().where(pending.c.entity == entity, pending.c.ssm_id.in_(part)))

    # --- C4 code reservation ---------------------------------------------------------------------------------

    def reserved(self, entity: str) -> dict[int, str]:
        """Codes reserved for records created in SSM: SSM id -> Sage key."""
        with self._tx() as conn:
            rows = conn.execute(sa.select(reserved_codes).where(reserved_codes.c.entity == entity)).all()
        return {int(r.ssm_id): r.code for r in rows}

    def reserve(self, entity: str, ssm_id: int, code: str) -> str:
        """Reserve ``code`` for SSM record ``ssm_id`` BEFORE the Sage insert; returns the code held for it."""
        with self._tx() as conn:
            held = conn.execute(
                sa.select(reserved_codes.c.code).where(
                    reserved_codes.c.entity == entity, reserved_codes.c.ssm_id == ssm_id
                )
            ).scalar()
            if held is not None:
                return str(held)
            conn.execute(
                reserved_codes.insert().values(entity=entity, ssm_id=ssm_id, code=code, reserved_at=now_iso())
            )
        return code

    def next_sequence(self, name: str) -> int:
        """The next value of a named counter (for sequence-based code templates)."""
        with self._tx() as conn:
            value = conn.execute(sa.select(sequences.c.value).where(sequences.c.name == name)).scalar()
            new = int(value or 0) + 1
            self._upsert(conn, sequences, {"name": name, "value": new})
        return new

    # --- the run lease (G1, G5) ------------------------------------------------------------------------------

    def acquire_lease(self, name: str, holder: str, ttl_seconds: float) -> Lease:
        """Take the lease ``name`` for ``holder`` unless another holder has it and it has not expired.

        One atomic statement (an upsert whose update only applies to an expired lease or to the same holder), so
        two runs starting at the same instant, in two processes or on two machines, cannot both get it. Taking
        it again as the same holder renews it. Returns the lease as it now stands: compare its ``holder``.
        """
        now = datetime.now(UTC)
        row = {
            "name": name,
            "holder": holder,
            "acquired_at": _iso(now),
            "expires_at": _iso(now + timedelta(seconds=ttl_seconds)),
        }
        with self._tx() as conn:
            insert: Any = (postgresql if conn.dialect.name == "postgresql" else sqlite).insert(leases)
            conn.execute(
                insert.on_conflict_do_update(
                    index_elements=["name"],
                    set_={
                        "holder": insert.excluded.holder,
                        "acquired_at": sa.case(
                            (leases.c.holder == insert.excluded.holder, leases.c.acquired_at),
                            else_=insert.excluded.acquired_at,
                        ),
                        "expires_at": insert.excluded.expires_at,
                    },
                    where=sa.or_(leases.c.expires_at < row["acquired_at"], leases.c.holder == holder),
                ),
                row,
            )
            held = conn.execute(sa.select(leases).where(leases.c.name == name)).mappings().one()
        return Lease(name, held["holder"], held["acquired_at"], held["expires_at"])

    def release_lease(self, name: str, holder: str) -> bool:
        """Give the lease back (only its holder can); True when it was held by ``holder``."""
        with self._tx() as conn:
            done = conn.execute(leases.delete().where(leases.c.name == name, leases.c.holder == holder))
        return bool(done.rowcount)

    def lease(self, name: str) -> Lease | None:
        """The lease ``name`` as it stands (expired or not), or None."""
        with self._tx() as conn:
            held = conn.execute(sa.select(leases).where(leases.c.name == name)).mappings().first()
        return Lease(name, held["holder"], held["acquired_at"], held["expires_at"]) if held else None

    # --- quarantine, conflicts, ledger ------------------------------------------------------------------------

    def quarantine_rows(self, entity: str, severity: str, rows: dict[str, str]) -> None:
        """Record (or refresh) quarantine entries ``key -> reason`` of ``severity`` (G3)."""
        if not rows:
            return
        stamp = now_iso()
        with self._tx() as conn:
            known: dict[str, Any] = {}
            for part in _chunks(sorted(rows)):
                found = conn.execute(
                    sa.select(quarantine.c.key, quarantine.c.attempts, quarantine.c.first_seen).where(
                        quarantine.c.entity == entity,
                        quarantine.c.severity == severity,
                        quarantine.c.released_at.is_(None),
                        quarantine.c.key.in_(part),
                    )
                ).all()
                known.update((r.key, r) for r in found)
            entries = []
            for key, reason in rows.items():
                old = known.get(key)
                entries.append(
                    {
                        "entity": entity,
                        "key": key,
                        "severity": severity,
                        "reason": reason,
                        "attempts": old.attempts + 1 if old is not None else 1,
                        "first_seen": old.first_seen if old is not None else stamp,
                        "last_seen": stamp,
                        "released_at": None,
                    }
                )
            self._upsert_many(conn, quarantine, entries)

    def release_quarantine(self, entity: str, keys: Iterable[str]) -> None:
        """Release the quarantine entries of rows that now pass.

        ``keys`` may be every row a run confirmed (hundreds of thousands on a first sync): only those with a live
        entry are touched, in statements of at most 500 keys (SQLite caps the variables of one statement).
        """
        with self._tx() as conn:
            live = set(
                conn.scalars(
                    sa.select(quarantine.c.key).where(
                        quarantine.c.entity == entity, quarantine.c.released_at.is_(None)
                    )
                )
            )
            wanted = sorted(live.intersection(keys)) if live else []
            stamp = now_iso()
            for part in _chunks(wanted):
                conn.execute(
                    quarantine.update()
                    .where(
                        quarantine.c.entity == entity,
                        quarantine.c.key.in_(part),
                        quarantine.c.released_at.is_(None),
                    )
                    .values(released_at=stamp)
                )

    def quarantined(self, entity: str) -> dict[str, str]:
        """Live quarantine entries of ``entity``: key -> reason (both severities)."""
        with self._tx() as conn:
            rows = conn.execute(
                sa.select(quarantine).where(quarantine.c.entity == entity, quarantine.c.released_at.is_(None))
            ).all()
        return {r.key: f"{r.severity}: {r.reason}" for r in rows}

    def record_conflicts(self, run_id: str, items: list[dict[str, Any]]) -> None:
        """Store G2 conflicts with both values and the winner."""
        if not items:
            return
        stamp = now_iso()
        with self._tx() as conn:
            conn.execute(
                conflicts.insert(),
                [
                    {
                        "run_id": run_id,
                        "entity": c["entity"],
                        "key": c["key"],
                        "field": c["field"],
                        "sage_value": dumps(c["sage_value"]),
                        "ssm_value": dumps(c["ssm_value"]),
                        "winner": c["winner"],
                        "at": stamp,
                    }
                    for c in items
                ],
            )

    def conflicts(self, entity: str | None = None) -> list[dict[str, Any]]:
        """Recorded conflicts, oldest first; ``sage_value`` and ``ssm_value`` as the values they were (any type)."""
        query = sa.select(conflicts).order_by(conflicts.c.id)
        if entity:
            query = query.where(conflicts.c.entity == entity)
        with self._tx() as conn:
            rows = [dict(r) for r in conn.execute(query).mappings().all()]
        for row in rows:
            for name in ("sage_value", "ssm_value"):
                row[name] = json.loads(row[name]) if row[name] is not None else None
        return rows

    def start_run(self, run_id: str, dry_run: bool, started_at: str | None = None) -> None:
        """Open a ledger entry for a run (once: a run already in the ledger is left as it is)."""
        with self._tx() as conn:
            known = conn.execute(sa.select(runs.c.run_id).where(runs.c.run_id == run_id)).first()
            if known is None:
                conn.execute(
                    runs.insert().values(
                        run_id=run_id, started_at=started_at or now_iso(), dry_run=dry_run, status="running"
                    )
                )

    def finish_run(self, run_id: str, status: str, api_calls: int, duration_s: float) -> None:
        """Close a run's ledger entry."""
        with self._tx() as conn:
            conn.execute(
                runs.update()
                .where(runs.c.run_id == run_id)
                .values(finished_at=now_iso(), status=status, api_calls=api_calls, duration_s=duration_s)
            )

    def record_entity(
        self, run_id: str, entity: str, counts: dict[str, int], api_calls: int, duration_s: float
    ) -> None:
        """Store one entity's counts for a run (G7)."""
        with self._tx() as conn:
            self._upsert(
                conn,
                run_entities,
                {
                    "run_id": run_id,
                    "entity": entity,
                    "counts_json": dumps(counts),
                    "api_calls": api_calls,
                    "duration_s": duration_s,
                },
            )

    def log_records(self, run_id: str, entries: list[dict[str, str]]) -> None:
        """Store what happened to each record and why (G7)."""
        if not entries:
            return
        with self._tx() as conn:
            _execute_many(conn, record_log.insert(), [{"run_id": run_id, **e} for e in entries])

    def runs(self) -> list[dict[str, Any]]:
        """Every run's ledger entry, oldest first, with its per-entity counts."""
        with self._tx() as conn:
            heads = conn.execute(sa.select(runs).order_by(runs.c.started_at)).mappings().all()
            per = conn.execute(sa.select(run_entities)).mappings().all()
        out = []
        for h in heads:
            item = dict(h)
            item["entities"] = {
                p["entity"]: json.loads(p["counts_json"]) for p in per if p["run_id"] == h["run_id"]
            }
            out.append(item)
        return out

    def record_log(self, run_id: str) -> list[dict[str, Any]]:
        """The per-record log of one run."""
        with self._tx() as conn:
            rows = conn.execute(
                sa.select(record_log).where(record_log.c.run_id == run_id).order_by(record_log.c.id)
            ).mappings()
            return [dict(r) for r in rows]
