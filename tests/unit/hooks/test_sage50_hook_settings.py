"""Sage50Hook settings: hook contract, connection string per driver, precedence argument > extra > default."""

from __future__ import annotations

import pytest
from airflow.models.connection import Connection

from sage_sync.errors import ConfigurationError
from sage_sync.hooks.sage50 import DEFAULT_CHUNK_SIZE, DEFAULT_FETCH_PATH, Sage50Hook


def _hook(extra: dict[str, object] | None = None, **kwargs: object) -> Sage50Hook:
    connection = Connection(
        conn_id="sage50_default",
        conn_type="odbc",
        host=kwargs.pop("host", None),  # type: ignore[arg-type]
        port=kwargs.pop("port", None),  # type: ignore[arg-type]
        schema=kwargs.pop("schema", "/data/dossier.db"),  # type: ignore[arg-type]
        login=kwargs.pop("login", None),  # type: ignore[arg-type]
        password=kwargs.pop("password", None),  # type: ignore[arg-type]
        extra=extra or {},
    )
    return Sage50Hook(connection=connection, **kwargs)  # type: ignore[arg-type]


def test_hook_contract() -> None:
    assert Sage50Hook.conn_name_attr == "sage50_conn_id"
    assert Sage50Hook.default_conn_name == "sage50_default"
    assert Sage50Hook.conn_type == "sage50"
    assert Sage50Hook.hook_name
    assert Sage50Hook().get_conn_id() == "sage50_default"


def test_sqlite_connection_string_uses_database_and_keeps_own_extras_out() -> None:
    hook = _hook(
        {"fetch_path": "pyodbc", "chunk_size": 10, "encoding": "utf-8", "Timeout": 5000}, driver="SQLite3"
    )
    assert hook.odbc_connection_string == "DRIVER=SQLite3;Database=/data/dossier.db;Timeout=5000;"
    with pytest.raises(ConfigurationError, match="contains ';'"):
        _ = _hook(driver="SQLite3", schema="/data/a;b.db").odbc_connection_string


def test_postgres_ansi_connection_string_sets_win1252_and_quotes_the_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The psqlODBC ANSI session is told client_encoding WIN1252; arrow reads ask for UTF-8 instead."""
    monkeypatch.setenv("AIRFLOW__PROVIDERS_ODBC__ALLOW_DRIVER_IN_EXTRA", "True")
    hook = _hook(
        {"driver": "PostgreSQL ANSI"}, host="db", port=5432, schema="dossier", login="sage", password="p;w"
    )
    assert hook.driver == "PostgreSQL ANSI"
    assert hook.text_encoding.codec == "cp1252"
    assert hook.odbc_connection_string == (
        "DRIVER=PostgreSQL ANSI;Server=db;Port=5432;Database=dossier;UID=sage;PWD={p;w};"
        "ConnSettings=SET client_encoding TO 'WIN1252';"
    )
    assert "ConnSettings=SET client_encoding TO 'UTF8';" in hook._connection_string(utf8_session=True)
    assert "p;w" not in hook._scrub("login failed for PWD=p;w")


def test_driver_argument_wins_over_the_extra_and_the_extra_needs_the_provider_setting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AIRFLOW__PROVIDERS_ODBC__ALLOW_DRIVER_IN_EXTRA", "False")
    assert _hook({"driver": "SQLite3"}).driver is None
    monkeypatch.setenv("AIRFLOW__PROVIDERS_ODBC__ALLOW_DRIVER_IN_EXTRA", "True")
    assert _hook({"driver": "SQLite3"}).driver == "SQLite3"
    assert _hook({"driver": "SQLite3"}, driver="{PostgreSQL Unicode}").driver == "PostgreSQL Unicode"


def test_fetch_path_chunk_size_and_encoding_precedence() -> None:
    hook = _hook(driver="SQLite3")
    assert (hook.fetch_path, hook.chunk_size, hook.text_encoding.codec) == (
        DEFAULT_FETCH_PATH,
        DEFAULT_CHUNK_SIZE,
        "utf-8",
    )
    hook = _hook({"fetch_path": "pyodbc", "chunk_size": "500", "encoding": "cp1252"}, driver="SQLite3")
    assert (hook.fetch_path, hook.chunk_size, hook.text_encoding.codec) == ("pyodbc", 500, "cp1252")
    hook = _hook(
        {"fetch_path": "pyodbc", "chunk_size": 500}, driver="SQLite3", fetch_path="arrow", chunk_size=7
    )
    assert (hook.fetch_path, hook.chunk_size) == ("arrow", 7)


def test_bad_settings_are_configuration_errors() -> None:
    with pytest.raises(ConfigurationError, match="fetch_path is 'turbo'"):
        _hook(fetch_path="turbo")
    with pytest.raises(ConfigurationError, match="extra fetch_path is 'turbo'"):
        _ = _hook({"fetch_path": "turbo"}).fetch_path
    with pytest.raises(ConfigurationError, match="chunk_size is 'many'"):
        _ = _hook({"chunk_size": "many"}).chunk_size
    with pytest.raises(ConfigurationError, match="encoding' is 'ebcdic'"):
        _ = _hook({"encoding": "ebcdic"}, driver="SQLite3").text_encoding
    with pytest.raises(ConfigurationError, match="has no Sage source 'nope'"):
        next(_hook(driver="SQLite3").iter_source("accounts", "nope"))
