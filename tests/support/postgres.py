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

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from sage_sync_tools.postgres_server import PostgresServer, start_server, stop_server

__all__ = ["PostgresServer", "postgres_server", "running_postgres_server"]


@contextmanager
def running_postgres_server() -> Iterator[PostgresServer]:
    """Start a fresh PostgreSQL server, yield it, then stop it and delete its files."""
    base = Path(tempfile.mkdtemp(prefix="sage-sync-pg-"))
    server: PostgresServer | None = None
    try:
        server = start_server(base)
        yield server
    finally:
        if server is not None:
            stop_server(server.data_dir)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL 15 server shared by the whole test session; see :class:`PostgresServer`."""
    with running_postgres_server() as server:
        yield server
