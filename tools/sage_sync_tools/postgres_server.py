"""A local PostgreSQL server from the Debian binaries, for the native stack and the integration tests.

The server runs from ``initdb``/``pg_ctl`` in a folder of its own, as the unprivileged user ``sagesync`` when the
caller is root (PostgreSQL refuses to run as root) or as the current user otherwise. It listens on a free
127.0.0.1 port with trust authentication (local, throw-away data) and durability switched off for speed.
``pg_ctl start`` detaches the server, so it outlives the command that started it until :func:`stop_server`.
"""

from __future__ import annotations

import getpass
import os
import pwd
import re
import shutil
import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import psycopg2


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
    """A running server: where it listens, who is superuser, and helpers to make databases."""

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

    def create_database(self, name: str, encoding: str = "WIN1252") -> str:
        """Create the database ``name`` (WIN1252 like a Sage dossier by default, C collation); its URL."""
        if not _DATABASE_NAME.match(name):
            raise ValueError(f"database name {name!r} must match {_DATABASE_NAME.pattern}")
        self._admin(
            f"CREATE DATABASE {name} ENCODING '{encoding}' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0"
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


def service_user() -> str | None:
    """The OS user to switch to (``sagesync``, created if missing) when running as root, else ``None``."""
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


def start_server(base: Path, max_connections: int = 50) -> PostgresServer:
    """Create a cluster in ``base`` (an empty or new folder) and start it on a free port; the running server."""
    if not (PG_BIN / "initdb").exists():
        raise RuntimeError(f"PostgreSQL binaries not found in {PG_BIN} (set SAGE_SYNC_PG_BIN)")
    switch_to = service_user()
    role = switch_to or getpass.getuser()
    base.mkdir(parents=True, exist_ok=True)
    if switch_to:
        shutil.chown(base, user=switch_to, group=switch_to)
    data_dir, log_file = base / "data", base / "server.log"
    _run(
        [str(PG_BIN / "initdb"), "-D", str(data_dir), "-U", role, "-A", "trust", "-E", "UTF8",
         "--locale=C", "--no-sync", "--no-instructions"],
        base=base, user=switch_to,
    )  # fmt: skip
    for _attempt in range(3):  # another process may grab the free port before the server binds it
        port = _free_port()
        options = (
            f"-p {port} -h 127.0.0.1 -k {base} -c fsync=off -c synchronous_commit=off "
            f"-c full_page_writes=off -c max_connections={max_connections}"
        )
        result = _run(
            [str(PG_BIN / "pg_ctl"), "-D", str(data_dir), "-l", str(log_file), "-w", "-t", "60",
             "-o", options, "start"],
            base=base, user=switch_to, check=False,
        )  # fmt: skip
        if result.returncode == 0:
            return PostgresServer(
                host="127.0.0.1", port=port, user=role, data_dir=data_dir, log_file=log_file
            )
    log = log_file.read_text(errors="replace") if log_file.exists() else ""
    raise RuntimeError(f"PostgreSQL server did not start:\n{log[-2000:]}")


def server_pid(data_dir: Path) -> int | None:
    """The postmaster's pid (first line of ``postmaster.pid``), or None when the server is not running."""
    try:
        return int((data_dir / "postmaster.pid").read_text().split()[0])
    except (OSError, IndexError, ValueError):
        return None


def stop_server(data_dir: Path) -> None:
    """Stop the server of ``data_dir`` (fast shutdown, waiting for it); nothing when it is not running."""
    if server_pid(data_dir) is None:
        return
    _run(
        [str(PG_BIN / "pg_ctl"), "-D", str(data_dir), "-m", "fast", "-w", "stop"],
        base=data_dir.parent, user=service_user(), check=False,
    )  # fmt: skip
