"""``Sage50Hook``: reads and writes a Sage 50 FR dossier through a real ODBC driver.

The connection is a standard Airflow ODBC connection (``sage50_default``)::

    AIRFLOW__PROVIDERS_ODBC__ALLOW_DRIVER_IN_EXTRA=True
    AIRFLOW_CONN_SAGE50_DEFAULT='{"conn_type": "odbc", "schema": "/data/dossier.db",
                                  "extra": {"driver": "SQLite3"}}'
    AIRFLOW_CONN_SAGE50_DEFAULT='{"conn_type": "odbc", "host": "db", "port": 5432, "schema": "dossier",
                                  "login": "sage", "password": "...", "extra": {"driver": "PostgreSQL ANSI"}}'

``schema`` is the database (the SQLite file path, or the PostgreSQL database); ``extra.driver`` the unixODBC
driver name. Extras read by this hook (argument > connection extra > default):

* ``encoding``: ``cp1252`` or ``utf-8``, overriding the rule of :mod:`sage_sync.hooks.odbc_text`
  (cp1252 for psqlODBC ANSI, Unicode otherwise);
* ``fetch_path``: ``arrow`` (default, arrow-odbc batches) or ``pyodbc`` (chunked ``fetchmany``); see
  docs/adr/0004-odbc-fetch-path.md for the measurements behind the default;
* ``chunk_size``: rows per fetch (default 50,000).

Any other extra is passed to the driver as a connection-string attribute, as ``OdbcHook`` does.

Physical names come from the entity mappings only (``sage_sync/mapping/entities/*.yaml``); this module holds no
Sage table or column name.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import pyodbc
from airflow.providers.odbc.hooks.odbc import OdbcHook

from sage_sync.errors import ConfigurationError, FatalSyncError, RecordRejected, RetriableSyncError
from sage_sync.hooks.odbc_text import (
    TextEncoding,
    build_connection_string,
    configure_pyodbc,
    resolve_text_encoding,
)
from sage_sync.hooks.sage50_frames import arrow_fetch_schema, arrow_to_frame, empty_frame, rows_to_frame
from sage_sync.hooks.sage50_sql import FilterValue, SelectStatement, build_select
from sage_sync.hooks.sage50_writes import (
    Rows,
    WritePlan,
    WriteProblem,
    account_codes,
    as_records,
    parent_account_problems,
    plan_writes,
    validate_writes,
)
from sage_sync.mapping.loader import load_mapping
from sage_sync.mapping.model import EntityMapping
from sage_sync.mapping.sage_snapshot import rows_within

FetchPath = Literal["pyodbc", "arrow"]
FETCH_PATHS: tuple[FetchPath, ...] = ("pyodbc", "arrow")
DEFAULT_FETCH_PATH: FetchPath = "arrow"
DEFAULT_CHUNK_SIZE = 50_000
# Account codes looked up per SELECT when checking contacts' owners: well under every driver's bound-parameter limit.
_LOOKUP_CHUNK = 500

# Extras this hook consumes itself; OdbcHook's own are excluded too, everything else goes to the driver.
_OWN_EXTRAS = {"driver", "dsn", "connect_kwargs", "sqlalchemy_scheme", "placeholder", "encoding", "fetch_path",
               "chunk_size"}  # fmt: skip


@dataclass(frozen=True)
class WriteResult:
    """What a write-back did: rows inserted, rows updated, and update keys that matched no Sage row."""

    inserted: int
    updated: int
    missing: tuple[str, ...] = ()


class Sage50Hook(OdbcHook):
    """Read entity snapshots from, and write customers/prospects/contacts back to, a Sage 50 FR dossier.

    Args:
        sage50_conn_id: the Airflow connection (default ``sage50_default``).
        fetch_path: ``pyodbc`` or ``arrow`` (overrides ``extra.fetch_path``).
        chunk_size: rows per fetch (overrides ``extra.chunk_size``).
        encoding: ``cp1252`` or ``utf-8`` (overrides ``extra.encoding`` and the driver rule).
        mapping_folder: a deployment's own entity mappings (default: the packaged ones).
        connection: an Airflow ``Connection`` object to use instead of looking ``sage50_conn_id`` up.
        args, kwargs: passed to ``OdbcHook`` (``driver``, ``database``, ``connect_kwargs``...).
    """

    conn_name_attr = "sage50_conn_id"
    default_conn_name = "sage50_default"
    conn_type = "sage50"  # the form of provider_info.py; an "odbc" connection works too
    hook_name = "Sage 50 FR (ODBC)"
    _test_connection_sql = "SELECT 1"

    def __init__(
        self,
        *args: Any,
        fetch_path: FetchPath | None = None,
        chunk_size: int | None = None,
        encoding: str | None = None,
        mapping_folder: Path | None = None,
        **kwargs: Any,
    ) -> None:
        connection = kwargs.pop("connection", None)
        super().__init__(*args, **kwargs)
        if connection is not None:
            # OdbcHook.__init__ resets the connection DbApiHook accepts as ``connection=``; keep it.
            self._connection = connection
        if fetch_path is not None and fetch_path not in FETCH_PATHS:
            raise ConfigurationError(
                f"fetch_path is {fetch_path!r}; expected one of {', '.join(FETCH_PATHS)}"
            )
        if chunk_size is not None and chunk_size < 1:
            raise ConfigurationError(f"chunk_size is {chunk_size}; it must be at least 1")
        self._fetch_path = fetch_path
        self._chunk_size = chunk_size
        self._encoding_override = encoding
        self._mapping_folder = mapping_folder

    # --- settings ------------------------------------------------------------------------------------------

    @property
    def fetch_path(self) -> FetchPath:
        """The fetch path in use: argument > ``extra.fetch_path`` > :data:`DEFAULT_FETCH_PATH`."""
        value = self._fetch_path or self.connection_extra_lower.get("fetch_path") or DEFAULT_FETCH_PATH
        if value not in FETCH_PATHS:
            raise ConfigurationError(
                f"extra fetch_path is {value!r}; expected one of {', '.join(FETCH_PATHS)}"
            )
        return value  # type: ignore[no-any-return]

    @property
    def chunk_size(self) -> int:
        """Rows per fetch: argument > ``extra.chunk_size`` > :data:`DEFAULT_CHUNK_SIZE`."""
        raw = self._chunk_size or self.connection_extra_lower.get("chunk_size") or DEFAULT_CHUNK_SIZE
        try:
            value = int(raw)
        except (TypeError, ValueError) as exc:
            raise ConfigurationError(f"extra chunk_size is {raw!r}, not an integer") from exc
        if value < 1:
            raise ConfigurationError(f"chunk_size is {value}; it must be at least 1")
        return value

    @property
    def driver(self) -> str | None:
        """The ODBC driver: ``driver`` argument, else ``extra.driver`` when the ODBC provider allows it.

        Same precedence as ``OdbcHook.driver``, which however logs its "driver in extra will not be used"
        warning on every call even when no driver is in the extra; this one warns only when it applies.
        """
        extra_driver = self.connection_extra_lower.get("driver")
        if extra_driver and not self._driver:
            from airflow.providers.common.compat.sdk import conf

            if conf.getboolean("providers.odbc", "allow_driver_in_extra", fallback=False):
                self._driver = str(extra_driver)
            else:
                self.log.warning(
                    "Connection %s names an ODBC driver in its extra, which is ignored unless "
                    "AIRFLOW__PROVIDERS_ODBC__ALLOW_DRIVER_IN_EXTRA=True",
                    self.get_conn_id(),
                )
        driver = self._driver or self.default_driver
        return driver.strip().lstrip("{").rstrip("}").strip() if driver else None

    @property
    def text_encoding(self) -> TextEncoding:
        """The session's text encoding: argument > ``extra.encoding`` > the driver rule (see ``odbc_text``)."""
        override = self._encoding_override or self.connection_extra_lower.get("encoding")
        try:
            return resolve_text_encoding(self.driver, override)
        except ValueError as exc:
            raise ConfigurationError(str(exc)) from exc

    def mapping(self, entity: str | EntityMapping) -> EntityMapping:
        """The mapping of ``entity`` (from the deployment's folder when one was given)."""
        if isinstance(entity, EntityMapping):
            return entity
        return load_mapping(entity, self._mapping_folder)

    # --- connection ----------------------------------------------------------------------------------------

    def _connection_string(self, *, utf8_session: bool = False) -> str:
        """Build the ODBC connection string, quoting values and adding the encoding settings.

        ``OdbcHook`` pastes values unquoted (a ``;`` in a path or password breaks it) and sends every extra to
        the driver; this version quotes values with ``{...}`` (refusing them for the SQLite3 driver, which reads
        braces literally), keeps this hook's own extras out, and tells
        psqlODBC the session encoding through ``ConnSettings``. Keywords are those both drivers read:
        the SQLite3 driver reads ``Database`` (the file path) and ignores the server ones; psqlODBC reads
        ``Server``/``Port``/``Database``/``UID``/``PWD``.
        """
        conn = self.connection
        pairs: list[tuple[str, str | int | None]] = [
            ("DRIVER", self.driver),
            ("DSN", self.dsn),
            ("Server", conn.host),
            ("Port", conn.port),
            ("Database", self.database),
            ("UID", conn.login),
            ("PWD", conn.password),
        ]
        extras = {k: v for k, v in self.connection_extra.items() if k.lower() not in _OWN_EXTRAS}
        encoding = self.text_encoding
        if encoding.engine == "postgresql" and not any(k.lower() == "connsettings" for k in extras):
            settings = "SET client_encoding TO 'UTF8'" if utf8_session else encoding.connection_settings()
            pairs.append(("ConnSettings", settings))
        pairs.extend((str(k), None if v is None else str(v)) for k, v in extras.items())
        try:
            return build_connection_string(pairs, braces=encoding.engine != "sqlite")
        except ValueError as exc:
            raise ConfigurationError(f"connection {self.get_conn_id()}: {exc}") from None

    @property
    def odbc_connection_string(self) -> str:
        """The ODBC connection string of pyodbc sessions (see :meth:`_connection_string`)."""
        if not self._conn_str:
            self._conn_str = self._connection_string()  # type: ignore[assignment]
        return self._conn_str  # type: ignore[return-value]

    def get_conn(self) -> pyodbc.Connection:
        """Open a pyodbc connection (autocommit off) that encodes text as :attr:`text_encoding` says."""
        try:
            conn = pyodbc.connect(self.odbc_connection_string, **self.connect_kwargs)
        except pyodbc.Error as exc:
            raise RetriableSyncError(f"cannot connect to the Sage dossier: {self._scrub(exc)}") from None
        configure_pyodbc(conn, self.text_encoding)
        return conn

    def _scrub(self, error: BaseException | str) -> str:
        """The error text without the connection's password."""
        text = str(error)
        password = self.connection.password
        return text.replace(password, "***") if password else text

    def test_connection(self) -> tuple[bool, str]:  # type: ignore[override]  # DbApiHook's stub says None
        """Open a session and run ``SELECT 1``; the message never contains the password."""
        try:
            with closing(self.get_conn()) as conn:
                conn.cursor().execute(self._test_connection_sql).fetchall()
        except (RetriableSyncError, pyodbc.Error) as exc:
            return False, self._scrub(exc)
        return True, f"Connection successfully tested ({self.driver or 'DSN'}, {self.text_encoding.codec})"

    # --- reads ---------------------------------------------------------------------------------------------

    def iter_source(
        self,
        mapping: str | EntityMapping,
        source_name: str,
        *,
        columns: Sequence[str] | None = None,
        filters: Mapping[str, Sequence[FilterValue]] | None = None,
    ) -> Iterator[pd.DataFrame]:
        """Yield typed chunks (canonical column names, mapping dtypes) of one mapped Sage source."""
        entity = self.mapping(mapping)
        try:
            source = entity.sources[source_name]
        except KeyError:
            raise ConfigurationError(f"entity {entity.entity!r} has no Sage source {source_name!r}") from None
        try:
            statement = build_select(source, columns, filters)
        except (KeyError, ValueError) as exc:
            raise ConfigurationError(f"{entity.entity}.{source_name}: {exc}") from exc
        if self.fetch_path == "arrow":
            yield from self._iter_arrow(statement)
        else:
            yield from self._iter_pyodbc(statement)

    def _iter_pyodbc(self, statement: SelectStatement) -> Iterator[pd.DataFrame]:
        with closing(self.get_conn()) as conn:
            try:
                cursor = conn.cursor()
                cursor.execute(statement.sql, *statement.params)
                while rows := cursor.fetchmany(self.chunk_size):
                    yield rows_to_frame(rows, statement.fields)
            except pyodbc.Error as exc:
                raise _read_error(statement, self._scrub(exc), exc) from None

    def _iter_arrow(self, statement: SelectStatement) -> Iterator[pd.DataFrame]:
        from arrow_odbc import Error as ArrowOdbcError
        from arrow_odbc import read_arrow_batches_from_odbc

        yielded = False
        # arrow-odbc decodes narrow text as UTF-8 on Linux, so its psqlODBC session asks the server for UTF-8
        # (the server converts from WIN1252); the SQLite3 driver stores UTF-8 already.
        try:
            reader = read_arrow_batches_from_odbc(
                query=statement.sql,
                connection_string=self._connection_string(utf8_session=True),
                batch_size=self.chunk_size,
                parameters=[str(p) for p in statement.params],  # arrow-odbc binds every parameter as VARCHAR
                map_schema=arrow_fetch_schema(statement.fields),
            )
            for batch in reader:
                yield arrow_to_frame(batch, statement.fields)
                yielded = True
        except ArrowOdbcError as exc:
            message = self._scrub(exc)
            if _TRUNCATED in message:
                # arrow-odbc sizes its buffers from the declared column length, which SQLite does not enforce:
                # a longer value stops the batch. pyodbc reads any length, so fall back to it for this source.
                if not yielded:
                    self.log.warning(
                        "%s: a value exceeds its declared column length; reading with pyodbc", statement.sql
                    )
                    yield from self._iter_pyodbc(statement)
                    return
                raise _ArrowTruncated(
                    f"reading {statement.sql!r}: a value exceeds its declared column length (SQLite does not "
                    "enforce lengths); read this dossier with fetch_path 'pyodbc'"
                ) from None
            text = f"reading {statement.sql!r} failed: {message}"
            if _CONNECTION_STATE.search(message):
                raise RetriableSyncError(text) from None
            raise FatalSyncError(text) from None

    def read_source(
        self,
        mapping: str | EntityMapping,
        source_name: str,
        *,
        columns: Sequence[str] | None = None,
        filters: Mapping[str, Sequence[FilterValue]] | None = None,
    ) -> pd.DataFrame:
        """Read one mapped Sage source into a typed frame (canonical names, mapping dtypes), in chunks.

        Only the mapped columns are selected, with the mapping's equality filters (plus ``filters``) bound as
        ``IN (?, ...)`` parameters.
        """
        entity = self.mapping(mapping)
        try:
            chunks = list(self.iter_source(entity, source_name, columns=columns, filters=filters))
        except _ArrowTruncated as exc:
            self.log.warning("%s; reading it again with pyodbc", exc)
            fallback = Sage50Hook(
                connection=self.connection,
                driver=self.driver,
                fetch_path="pyodbc",
                chunk_size=self.chunk_size,
                encoding=self._encoding_override,
                mapping_folder=self._mapping_folder,
            )
            chunks = list(fallback.iter_source(entity, source_name, columns=columns, filters=filters))
        if not chunks:
            source = entity.sources[source_name]
            fields = source.fields if columns is None else tuple(source.field(c) for c in columns)
            return empty_frame([f for f in fields if f.sage])
        if len(chunks) == 1:
            return chunks[0]
        return pd.concat(chunks, ignore_index=True)

    def read_snapshot(self, entity: str) -> dict[str, pd.DataFrame]:
        """Every source of ``entity`` as a typed frame with canonical names, by source name.

        A source the mapping reads ``within`` another entity keeps only the rows of that entity's records: contacts
        are the people of customers and prospects (the accounts' ``CT_Type=0`` filter), never of suppliers.
        Delivery addresses are never read. The engine assembles the frames (products' joins, invoices' lines).
        """
        mapping = self.mapping(entity)
        frames: dict[str, pd.DataFrame] = {}
        for name, source in mapping.sources.items():
            frame = self.read_source(mapping, name)
            if source.within is not None:
                owner = self.mapping(source.within)
                keys = self.read_source(owner, owner.main.name, columns=list(owner.main.key))
                frame = rows_within(frame, source.key[0], keys[owner.main.key[0]])
            frames[name] = frame
        return frames

    # --- write-back ----------------------------------------------------------------------------------------

    def validate_writes(self, entity: str | EntityMapping, rows: Rows, *, insert: bool) -> list[WriteProblem]:
        """Problems that would stop ``rows`` from being written (see :func:`sage50_writes.validate_writes`)."""
        return validate_writes(self.mapping(entity), rows, insert=insert)

    def upsert(self, entity: str | EntityMapping, inserts: Rows = (), updates: Rows = ()) -> WriteResult:
        """Insert and update rows of ``entity``'s write source in ONE transaction.

        Every value is validated first; any problem refuses the whole batch with ``RecordRejected`` and nothing
        is written. Records that belong to an account (contacts) are refused the same way unless that account is
        a customer/prospect (``CT_Type = 0``), checked with one bound ``SELECT`` before the first write. Any
        database error rolls the whole transaction back.
        """
        mapping = self.mapping(entity)
        insert_rows, update_rows = as_records(inserts), as_records(updates)  # read once: iterators allowed
        plan = plan_writes(mapping, insert_rows, update_rows)
        if not plan.statements:
            return WriteResult(inserted=0, updated=0)
        codes = account_codes(mapping, insert_rows, update_rows)
        owners = self.mapping("accounts") if codes else None

        def check_owners(cursor: pyodbc.Cursor) -> None:
            if owners is None:
                return
            found = self._account_types(cursor, owners, codes)
            problems = parent_account_problems(mapping, owners, found, insert_rows, update_rows)
            if problems:
                raise RecordRejected([str(p) for p in problems])

        return self._execute(plan, check_owners)

    def _account_types(
        self, cursor: pyodbc.Cursor, accounts: EntityMapping, codes: list[str]
    ) -> dict[str, Any]:
        """Account code -> type column value, for the ``codes`` that exist (any type: suppliers too)."""
        source = dataclasses.replace(accounts.write, filter={})  # every type, to tell suppliers from unknowns
        key = source.key[0]
        type_name = next(iter(accounts.write_fixed))
        found: dict[str, Any] = {}
        for start in range(0, len(codes), _LOOKUP_CHUNK):
            chunk = codes[start : start + _LOOKUP_CHUNK]
            statement = build_select(source, columns=[key, type_name], filters={key: chunk})
            cursor.execute(statement.sql, *statement.params)
            for code, account_type in cursor.fetchall():
                found[str(code).rstrip()] = account_type
        return found

    def _execute(self, plan: WritePlan, before_writes: Callable[[pyodbc.Cursor], None]) -> WriteResult:
        inserted = updated = 0
        missing: list[str] = []
        with closing(self.get_conn()) as conn:
            conn.autocommit = False
            cursor = conn.cursor()
            current = ""
            try:
                before_writes(
                    cursor
                )  # inside the transaction, so the checked rows are the ones written under
                for statement in plan.statements:
                    current = statement.sql
                    if statement.kind == "insert":
                        cursor.executemany(statement.sql, statement.params)
                        inserted += len(statement.params)
                        continue
                    # One execute per row (the prepared statement is reused) so each row's count tells
                    # whether its record still exists in Sage.
                    for params, key in zip(statement.params, statement.keys, strict=True):
                        cursor.execute(statement.sql, *params)
                        if cursor.rowcount == 0:
                            missing.append(key)
                        else:
                            updated += cursor.rowcount
                conn.commit()
            except pyodbc.Error as exc:
                conn.rollback()
                message = f"Sage write-back rolled back, nothing was written ({current}): {self._scrub(exc)}"
                if isinstance(exc, pyodbc.OperationalError | pyodbc.InterfaceError):
                    raise RetriableSyncError(message) from None
                raise FatalSyncError(message) from None
            except BaseException:
                conn.rollback()
                raise
        return WriteResult(inserted=inserted, updated=updated, missing=tuple(missing))


class _ArrowTruncated(FatalSyncError):
    """arrow-odbc met a value longer than its column's declared length after batches were already yielded."""


_TRUNCATED = "too large to be written into the allocated buffer"
# ODBC SQLSTATE classes of connection trouble (08xxx) and timeouts (HYT00/HYT01): worth a retry.
_CONNECTION_STATE = re.compile(r"\b(08[0-9A-Z]{3}|HYT0[01])\b")


def _read_error(statement: SelectStatement, message: str, exc: pyodbc.Error) -> Exception:
    """Connection-level failures may pass on retry; a bad query or schema will not."""
    text = f"reading {statement.sql!r} failed: {message}"
    if isinstance(exc, pyodbc.OperationalError | pyodbc.InterfaceError):
        return RetriableSyncError(text)
    return FatalSyncError(text)
