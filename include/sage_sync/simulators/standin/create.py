"""Write a generated dossier to SQLite or PostgreSQL, with its media folder of article pictures.

Both paths create the schema with ``metadata.create_all`` and bulk-load the rows in chunks: SQLite through the raw
``sqlite3`` module (``executemany`` with journaling off while loading), PostgreSQL through ``COPY ... FROM STDIN``
in a single transaction on a WIN1252 connection. Heavy modules are imported here, not by the CLI at start-up.
"""

from __future__ import annotations

import csv
import io
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import OperationalError

from sage_sync.errors import ConfigurationError
from sage_sync.simulators.standin.generator import Dossier
from sage_sync.simulators.standin.pictures import write_pictures
from sage_sync.simulators.standin.schema import TABLES, metadata
from sage_sync.simulators.standin.tables import TableData

CHUNK_ROWS = 50_000
Progress = Callable[[str, int, int], None]
"""Called as ``progress(table, rows_done, rows_total)`` after each chunk (and with the table ``pictures``)."""


@dataclass(frozen=True)
class CreationResult:
    """What was created: where, how many rows per table, and the media folder with its picture count."""

    location: str
    counts: dict[str, int]
    media_dir: Path
    pictures: int


def default_media_dir(sqlite_path: Path) -> Path:
    """Return the default media folder of a SQLite dossier: ``<file stem>_media`` beside the file."""
    return sqlite_path.with_name(f"{sqlite_path.stem}_media")


def check_sqlite_target(path: Path, *, force: bool = False) -> None:
    """Refuse to replace an existing SQLite dossier without ``force`` (called before generating, too).

    Raises:
        ConfigurationError: ``path`` already exists and ``force`` is false.
    """
    if Path(path).exists() and not force:
        raise ConfigurationError(f"dossier {path} already exists; pass --force to replace it")


def create_sqlite_dossier(
    path: Path,
    dossier: Dossier,
    *,
    media_dir: Path | None = None,
    force: bool = False,
    progress: Progress | None = None,
) -> CreationResult:
    """Create the dossier as the SQLite file ``path`` and write its pictures under ``media_dir``.

    Raises:
        ConfigurationError: ``path`` already exists and ``force`` is false.
    """
    path = Path(path)
    media = Path(media_dir) if media_dir is not None else default_media_dir(path)
    check_sqlite_target(path, force=force)
    if path.exists():
        path.unlink()
        if media == default_media_dir(path) and media.is_dir():
            shutil.rmtree(media)  # the default media folder belongs to the dossier: no stale pictures
    for leftover in (path.with_name(path.name + "-journal"), path.with_name(path.name + "-wal")):
        leftover.unlink(missing_ok=True)
    path.parent.mkdir(parents=True, exist_ok=True)

    engine = create_engine(f"sqlite:///{path}")
    try:
        metadata.create_all(engine)
    finally:
        engine.dispose()

    connection = sqlite3.connect(path)
    try:
        # Nothing to protect while the file is being built: a failed build is simply rebuilt.
        connection.execute("PRAGMA journal_mode=OFF")
        connection.execute("PRAGMA synchronous=OFF")
        connection.execute("PRAGMA cache_size=-262144")
        for name, data in dossier.tables.items():
            sql = f"INSERT INTO {name} ({', '.join(data.columns)}) VALUES ({', '.join('?' * len(data.columns))})"
            for start, stop in _chunks(len(data), progress, name):
                connection.executemany(sql, data.rows(start, stop))
        connection.commit()
        connection.execute("PRAGMA journal_mode=DELETE")  # back to SQLite's normal rollback journal
        connection.execute("PRAGMA synchronous=FULL")
    finally:
        connection.close()
    pictures = _write_media(media, dossier, progress)
    return CreationResult(str(path), dossier.counts(), media, pictures)


def _postgres_engine(url: str) -> tuple[Engine, str]:
    """An engine on ``url`` speaking WIN1252, and the URL as shown to people (no password)."""
    sa_url = make_url(url)
    if sa_url.drivername in ("postgresql", "postgres"):
        sa_url = sa_url.set(drivername="postgresql+psycopg2")
    engine = create_engine(sa_url, connect_args={"client_encoding": "WIN1252"})
    return engine, sa_url.render_as_string(hide_password=True)


def _check_postgres(engine: Engine, shown: str, *, force: bool) -> list[str]:
    """Check the server answers, the database is WIN1252, and holds no dossier unless ``force``.

    Returns the stand-in tables already there (to drop). Raises ``ConfigurationError`` otherwise.
    """
    try:
        with engine.connect() as conn:
            encoding = conn.execute(text("SHOW server_encoding")).scalar_one()
    except OperationalError as error:
        reason = str(error.orig).strip().splitlines()[0] if error.orig else str(error)
        raise ConfigurationError(f"cannot connect to {shown}: {reason}") from error
    if str(encoding).upper() != "WIN1252":
        raise ConfigurationError(
            f"database {shown} has encoding {encoding}; the stand-in needs WIN1252: create it with "
            "CREATE DATABASE ... ENCODING 'WIN1252' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0"
        )
    existing = {name.lower() for name in inspect(engine).get_table_names()}
    ours = sorted(name for name in TABLES if name.lower() in existing)
    if ours and not force:
        raise ConfigurationError(
            f"database {shown} already holds a dossier ({', '.join(ours)}); pass --force to replace it"
        )
    return ours


def check_postgres_target(url: str, *, force: bool = False) -> None:
    """The checks :func:`create_postgres_dossier` makes first, to run them before generating the data.

    Raises:
        ConfigurationError: the server is unreachable, the database is not WIN1252, or it already holds
            stand-in tables and ``force`` is false.
    """
    engine, shown = _postgres_engine(url)
    try:
        _check_postgres(engine, shown, force=force)
    finally:
        engine.dispose()


def create_postgres_dossier(
    url: str,
    dossier: Dossier,
    *,
    media_dir: Path,
    force: bool = False,
    progress: Progress | None = None,
) -> CreationResult:
    """Create the dossier in the (existing, WIN1252-encoded) PostgreSQL database at ``url``.

    Raises:
        ConfigurationError: the server is unreachable, the database is not WIN1252, or it already holds
            stand-in tables and ``force`` is false.
    """
    engine, shown = _postgres_engine(url)
    try:
        ours = _check_postgres(engine, shown, force=force)
        # One transaction for drop, create and load: a failed load leaves the database as it was.
        with engine.begin() as conn:
            if ours:
                # Drop by plain (case-folded) names: SQLAlchemy looks the mixed-case names up as quoted
                # identifiers, does not find them, and would skip the drop.
                for table_name in reversed(list(TABLES)):
                    conn.execute(text(f"DROP TABLE IF EXISTS {table_name} CASCADE"))
            metadata.create_all(conn, checkfirst=False)
            cursor = cast(Any, conn.connection.dbapi_connection).cursor()
            for name, data in dossier.tables.items():
                copy = f"COPY {name} ({', '.join(data.columns)}) FROM STDIN WITH (FORMAT csv)"
                for start, stop in _chunks(len(data), progress, name):
                    cursor.copy_expert(copy, _csv_chunk(data, start, stop))
    finally:
        engine.dispose()
    pictures = _write_media(Path(media_dir), dossier, progress)
    return CreationResult(shown, dossier.counts(), Path(media_dir), pictures)


def _chunks(total: int, progress: Progress | None, name: str) -> Iterator[tuple[int, int]]:
    """Yield insert chunk bounds; each chunk is reported to ``progress`` once the caller has loaded it."""
    for start in range(0, total, CHUNK_ROWS):
        stop = min(start + CHUNK_ROWS, total)
        yield start, stop
        if progress is not None:
            progress(name, stop, total)
    if total == 0 and progress is not None:
        progress(name, 0, 0)


def _csv_chunk(table: TableData, start: int, stop: int) -> io.StringIO:
    # Unquoted empty fields are NULL in PostgreSQL's CSV format; the generator never produces empty strings.
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(table.rows(start, stop))
    buffer.seek(0)
    return buffer


def _write_media(media: Path, dossier: Dossier, progress: Progress | None) -> int:
    written = write_pictures(media, dossier.pictures)
    if progress is not None:
        progress("pictures", written, len(dossier.pictures))
    return written
