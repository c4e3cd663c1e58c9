"""The text-encoding rule and the ODBC connection-string quoting of the Sage hook."""

from __future__ import annotations

import pytest

from sage_sync.hooks.odbc_text import (
    build_connection_string,
    engine_of,
    odbc_value,
    resolve_text_encoding,
)


@pytest.mark.parametrize(
    ("driver", "override", "codec", "settings"),
    [
        ("SQLite3", None, "utf-8", None),
        ("PostgreSQL Unicode", None, "utf-8", "SET client_encoding TO 'UTF8'"),
        ("PostgreSQL ANSI", None, "cp1252", "SET client_encoding TO 'WIN1252'"),
        ("/usr/lib/x86_64-linux-gnu/odbc/psqlodbca.so", None, "cp1252", "SET client_encoding TO 'WIN1252'"),
        ("PostgreSQL ANSI", "utf8", "utf-8", "SET client_encoding TO 'UTF8'"),
        ("SQLite3", "cp1252", "cp1252", None),
    ],
)
def test_encoding_rule_by_driver_and_override(
    driver: str, override: str | None, codec: str, settings: str | None
) -> None:
    """Single-byte cp1252 on psqlODBC ANSI (WIN1252 dossier), Unicode elsewhere; extra.encoding wins."""
    encoding = resolve_text_encoding(driver, override)
    assert encoding.codec == codec
    assert encoding.connection_settings() == settings


def test_unknown_encoding_override_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="connection extra 'encoding' is 'latin-1'"):
        resolve_text_encoding("SQLite3", "latin-1")
    with pytest.raises(ValueError, match="use the 'PostgreSQL ANSI' driver for a cp1252 session"):
        resolve_text_encoding("PostgreSQL Unicode", "WIN1252")


def test_engine_guess() -> None:
    assert engine_of("SQLite3") == "sqlite"
    assert engine_of("PostgreSQL ANSI") == "postgresql"
    assert engine_of("ODBC Driver 18 for SQL Server") == "other"
    assert engine_of(None) == "other"


def test_connection_string_values_are_quoted_when_needed() -> None:
    assert odbc_value("/tmp/dossier.db") == "/tmp/dossier.db"
    assert odbc_value("/tmp/a;b.db") == "{/tmp/a;b.db}"
    assert odbc_value("p}w;d") == "{p}}w;d}"
    assert build_connection_string(
        [("DRIVER", "SQLite3"), ("Server", None), ("Port", 5432), ("PWD", "a;b")]
    ) == ("DRIVER=SQLite3;Port=5432;PWD={a;b};")


def test_sqlite_driver_cannot_take_quoted_values_and_the_error_hides_passwords() -> None:
    """The SQLite3 driver reads braces literally: refuse instead of connecting to a wrong file."""
    assert build_connection_string([("Database", "/tmp/a b.db")], braces=False) == "Database=/tmp/a b.db;"
    with pytest.raises(ValueError, match="attribute Database: '/tmp/a;b.db' contains"):
        build_connection_string([("Database", "/tmp/a;b.db")], braces=False)
    with pytest.raises(ValueError) as excinfo:
        build_connection_string([("PWD", "s3cret;x")], braces=False)
    assert "s3cret" not in str(excinfo.value)
