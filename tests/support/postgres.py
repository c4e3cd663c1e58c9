"""A throw-away PostgreSQL 15 server for integration tests (session scope).

The server runs from the Debian binaries (initdb/pg_ctl) in a temporary directory, as the unprivileged user
``sagesync`` when the tests run as root (PostgreSQL refuses to run as root) or as the current user otherwise.
It listens on a free 127.0.0.1 port with trust authentication and durability switched off for speed.

Usage::

    from tests.support.postgres import postgres_server  # noqa: F401

    def test_something(postgres_server):
        url = postgres_server.create_database("dossier_a")  # WIN1252, C collation
"""

from __future__ import annotations

import getpass
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psycopg2
import pytest


def _find_pg_bin() -> Path:
    """The newest Debian PostgreSQL server binaries, unless SAGE_SYNC_PG_BIN names another folder."""
    if "SAGE_SYNC_PG_BIN" in os.environ:
        return Path(os.environ["SAGE_SYNC_PG_BIN"])
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0,
    )
    return found[-1].parent if found else Path("/usr/lib/postgresql/15/bin")


PG_BIN = _find_pg_bin()
SERVICE_USER = "sagesync"
_DATABASE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


@dataclass
class PostgresServer:
    """A running test server: where it listens, who is superuser, and helpers to make databases."""

    host: str
    port: int
    user: str
    data_dir: Path
    log_file: Path
    databases: list[str] = field(default_factory=list)

    def url(self, database: str = "postgres") -> str:
        """Return the SQLAlchemy URL (psycopg2 driver, no password: trust auth) of ``database``."""
        return f"postgresql+psycopg2://{self.user}@{self.host}:{self.port}/{database}"

    def connect(self, database: str = "postgres", **kwargs: object) -> psycopg2.extensions.connection:
        """Open a psycopg2 connection to ``database`` (extra keyword arguments go to ``psycopg2.connect``)."""
        return psycopg2.connect(host=self.host, port=self.port, user=self.user, dbname=database, **kwargs)

    def create_database(self, name: str) -> str:
        """Create the database ``name`` as WIN1252 with C collation and return its SQLAlchemy URL."""
        if not _DATABASE_NAME.match(name):
            raise ValueError(f"database name {name!r} must match {_DATABASE_NAME.pattern}")
        self._admin(
            f"CREATE DATABASE {name} ENCODING 'WIN1252' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0"
        )
        self.databases.append(name)
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drop the database ``name`` (closing its sessions first)."""
        if not _DATABASE_NAME.match(name):
            raise ValueError(f"database name {name!r} must match {_DATABASE_NAME.pattern}")
        self._admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        if name in self.databases:
            self.databases.remove(name)

    def _admin(self, statement: str) -> None:
        connection = self.connect()
        try:
            connection.autocommit = True  # CREATE/DROP DATABASE cannot run inside a transaction
            with connection.cursor() as cursor:
                cursor.execute(statement)
        finally:
            connection.close()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _service_user() -> str | None:
    """Return the OS user to switch to (``sagesync``, created if missing) when running as root, else ``None``."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(SERVICE_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", SERVICE_USER], check=True)
    return SERVICE_USER


def _run(
    args: list[str], *, base: Path, user: str | None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LC_ALL": "C", "LANG": "C", "HOME": str(base)}
    result = subprocess.run(
        args, cwd=base, env=env, capture_output=True, text=True, user=user, group=user, check=False
    )
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({result.returncode}):\n{result.stdout}{result.stderr}")
    return result


@contextmanager
def running_postgres_server() -> Iterator[PostgresServer]:
    """Start a fresh PostgreSQL server, yield it, then stop it and delete its files."""
    if not (PG_BIN / "initdb").exists():
        raise RuntimeError(f"PostgreSQL binaries not found in {PG_BIN} (set SAGE_SYNC_PG_BIN)")
    switch_to = _service_user()
    role = switch_to or getpass.getuser()
    base = Path(tempfile.mkdtemp(prefix="sage-sync-pg-"))
    if switch_to:
        shutil.chown(base, user=switch_to, group=switch_to)
    data_dir, log_file = base / "data", base / "server.log"
    started = False
    try:
        _run(
            [str(PG_BIN / "initdb"), "-D", str(data_dir), "-U", role, "-A", "trust", "-E", "UTF8",
             "--locale=C", "--no-sync", "--no-instructions"],
            base=base, user=switch_to,
        )  # fmt: skip
        port = 0
        for _attempt in range(3):  # another process may grab the free port before the server binds it
            port = _free_port()
            options = (
                f"-p {port} -h 127.0.0.1 -k {base} -c fsync=off -c synchronous_commit=off "
                "-c full_page_writes=off -c max_connections=50"
            )
            result = _run(
                [str(PG_BIN / "pg_ctl"), "-D", str(data_dir), "-l", str(log_file), "-w", "-t", "60",
                 "-o", options, "start"],
                base=base, user=switch_to, check=False,
            )  # fmt: skip
            if result.returncode == 0:
                started = True
                break
        if not started:
            log = log_file.read_text(errors="replace") if log_file.exists() else ""
            raise RuntimeError(f"PostgreSQL test server did not start:\n{log[-2000:]}")
        yield PostgresServer(host="127.0.0.1", port=port, user=role, data_dir=data_dir, log_file=log_file)
    finally:
        if started:
            _run(
                [str(PG_BIN / "pg_ctl"), "-D", str(data_dir), "-m", "fast", "-w", "stop"],
                base=base, user=switch_to, check=False,
            )  # fmt: skip
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL 15 server shared by the whole test session; see :class:`PostgresServer`."""
    with running_postgres_server() as server:
        yield server
