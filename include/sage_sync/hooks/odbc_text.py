"""Text encoding and connection-string rules for the Sage 50 FR dossier over ODBC (no Airflow imports).

Sage keeps text in single-byte Windows-1252 columns, so the encoding a session uses depends on the engine and on
the ODBC driver flavour. The rule, decided once here (docs/adr/0004-odbc-fetch-path.md):

* ``extra.encoding`` on the connection wins when given (``cp1252``/``win1252`` or ``utf-8``/``utf8``).
* Otherwise by driver name: a PostgreSQL **ANSI** driver (psqlODBC ``psqlodbca``) talks ``cp1252``; every other
  driver (``SQLite3``, ``PostgreSQL Unicode``, ...) talks Unicode through pyodbc's defaults.

What ``cp1252`` means in practice:

* psqlODBC: the session's ``client_encoding`` is set to ``WIN1252`` with the driver's own ``ConnSettings`` option
  (the ANSI driver otherwise follows the process locale, usually UTF-8), so the server sends the stored bytes
  unchanged (a Unicode session says ``UTF8`` explicitly, whatever the locale);
* pyodbc: ``setdecoding``/``setencoding`` decode and encode ``cp1252`` with ``SQL_C_CHAR`` buffers. psqlODBC
  reports ``varchar`` columns as ``SQL_WVARCHAR`` even from its ANSI flavour, which cannot fill wide buffers,
  so the wide decoding is pointed at ``SQL_C_CHAR`` too.

The Unicode flavour of psqlODBC always sets ``client_encoding`` to UTF-8 and lets the server convert to and from
WIN1252 (so a ``cp1252`` override is refused with it); SQLite stores UTF-8. Either way, values that cp1252 cannot hold are refused before writing
(:func:`sage_sync.mapping.sage_values.first_unstorable`), because Sage itself could not store them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from sage_sync.mapping.sage_values import SAGE_CODEC

Engine = Literal["sqlite", "postgresql", "other"]

_ALIASES = {
    "cp1252": "cp1252",
    "win1252": "cp1252",
    "windows-1252": "cp1252",
    "utf-8": "utf-8",
    "utf8": "utf-8",
}


def engine_of(driver: str | None) -> Engine:
    """Guess the database engine behind an ODBC driver name (``SQLite3``, ``PostgreSQL ANSI``, ...)."""
    name = (driver or "").lower()
    if "sqlite" in name:
        return "sqlite"
    if "postgres" in name or "psqlodbc" in name:
        return "postgresql"
    return "other"


@dataclass(frozen=True)
class TextEncoding:
    """How one ODBC session encodes text: the Python codec, and whether psqlODBC must be told."""

    codec: Literal["cp1252", "utf-8"]
    engine: Engine
    narrow: bool = False
    """The driver is an ANSI flavour (psqlODBC ``psqlodbca``): pyodbc must use ``SQL_C_CHAR`` buffers."""

    @property
    def single_byte(self) -> bool:
        """True when the session exchanges cp1252 bytes (pyodbc must encode and decode them itself)."""
        return self.codec == "cp1252"

    def connection_settings(self) -> str | None:
        """The psqlODBC ``ConnSettings`` statement that sets the session's ``client_encoding``, if any."""
        if self.engine != "postgresql":
            return None
        return f"SET client_encoding TO '{'WIN1252' if self.single_byte else 'UTF8'}'"


def resolve_text_encoding(driver: str | None, override: str | None = None) -> TextEncoding:
    """Apply the encoding rule of this module to a driver name and an optional ``extra.encoding`` override.

    Raises:
        ValueError: the override names an encoding the project does not support.
    """
    engine = engine_of(driver)
    name = (driver or "").lower()
    narrow = engine == "postgresql" and ("ansi" in name or name.endswith("psqlodbca.so"))
    if not override:
        return TextEncoding(codec="cp1252" if narrow else "utf-8", engine=engine, narrow=narrow)
    codec = _ALIASES.get(override.strip().lower())
    if codec is None:
        raise ValueError(
            f"connection extra 'encoding' is {override!r}; expected one of {', '.join(sorted(_ALIASES))}"
        )
    if codec == "cp1252" and engine == "postgresql" and not narrow:
        raise ValueError(
            f"connection extra 'encoding' is {override!r} but the driver {driver!r} always talks UTF-8 to "
            "PostgreSQL; use the 'PostgreSQL ANSI' driver for a cp1252 session"
        )
    return TextEncoding(codec=codec, engine=engine, narrow=narrow)  # type: ignore[arg-type]


def configure_pyodbc(connection: Any, encoding: TextEncoding) -> None:
    """Make a pyodbc connection decode and encode text as ``encoding`` says.

    Unicode drivers keep pyodbc's defaults (UTF-16 wide buffers). A cp1252 session, or any session on an ANSI
    driver, uses narrow ``SQL_C_CHAR`` buffers in the session's codec.
    """
    if not (encoding.single_byte or encoding.narrow):
        return
    import pyodbc  # local: keeps this module importable for pure validation work

    codec = SAGE_CODEC if encoding.single_byte else "utf-8"
    connection.setdecoding(pyodbc.SQL_CHAR, encoding=codec, ctype=pyodbc.SQL_CHAR)
    connection.setdecoding(pyodbc.SQL_WCHAR, encoding=codec, ctype=pyodbc.SQL_CHAR)
    connection.setencoding(encoding=codec, ctype=pyodbc.SQL_CHAR)


def odbc_value(value: str, *, braces: bool = True) -> str:
    """Quote one connection-string value when it holds ``;`` or braces (ODBC ``{...}`` syntax).

    Raises:
        ValueError: the value needs quoting but the driver does not understand braces (the SQLite3 driver
            parses its connection string itself and takes ``{`` literally).
    """
    if not any(c in value for c in ";{}"):
        return value
    if not braces:
        raise ValueError(
            f"{value!r} contains ';' or braces, which this ODBC driver cannot take in a connection string"
        )
    return "{" + value.replace("}", "}}") + "}"


def build_connection_string(pairs: list[tuple[str, str | int | None]], *, braces: bool = True) -> str:
    """Join ``KEY=value;`` pairs, skipping empty values and quoting values that need it.

    Raises:
        ValueError: a value needs quoting and ``braces`` is False (see :func:`odbc_value`).
    """
    parts = []
    for key, value in pairs:
        if value is None or value == "":
            continue
        try:
            parts.append(f"{key}={odbc_value(str(value), braces=braces)};")
        except ValueError as exc:
            shown = "***" if key.upper() == "PWD" else key
            raise ValueError(
                f"connection attribute {shown}: {exc}"
                if shown != "***"
                else "connection attribute PWD contains ';' or braces, which this driver cannot take"
            ) from None
    return "".join(parts)
