"""Deterministic demo data for the Sage 50 FR stand-in dossier (contract ``SAGE50FR-STANDIN.md``, last section).

``generate_dossier(scale, seed)`` builds every table in memory, column by column; the same seed always gives
byte-identical rows, and nothing depends on the clock (the dossier's "today" is fixed). Writing the rows to
SQLite or PostgreSQL is the job of :mod:`sage_sync.simulators.standin.create`.
"""

from __future__ import annotations

from dataclasses import dataclass

from sage_sync.simulators.standin.accounts import generate_accounts
from sage_sync.simulators.standin.catalogue import generate_catalogue
from sage_sync.simulators.standin.documents import generate_documents
from sage_sync.simulators.standin.schema import TABLES
from sage_sync.simulators.standin.tables import TableData

SCALES: dict[str, int] = {"small": 300, "medium": 10_000, "large": 100_000}
"""Number of accounts (F_COMPTET rows) per named scale; ``large`` also yields more than a million invoice lines."""

MAX_ACCOUNTS = 2_000_000


def resolve_scale(scale: str | int) -> int:
    """Turn ``small``/``medium``/``large`` or a number of accounts into a number of accounts.

    Raises:
        ValueError: the scale is neither a known name nor an integer between 1 and ``MAX_ACCOUNTS``.
    """
    if isinstance(scale, str):
        name = scale.strip().lower()
        if name in SCALES:
            return SCALES[name]
        if not name.isdigit():
            raise ValueError(f"scale {scale!r} is not one of {', '.join(SCALES)} nor a number of accounts")
        scale = int(name)
    if not 1 <= scale <= MAX_ACCOUNTS:
        raise ValueError(
            f"scale {scale} is out of range: the number of accounts must be between 1 and {MAX_ACCOUNTS}"
        )
    return scale


@dataclass
class Dossier:
    """A generated dossier: its tables in foreign-key order and the pictures of its media folder."""

    accounts: int
    seed: int
    tables: dict[str, TableData]
    pictures: list[tuple[str, int]]
    """(``AR_Photo`` path relative to the media folder, picture seed)."""

    def counts(self) -> dict[str, int]:
        """Return the number of rows per table."""
        return {name: len(table) for name, table in self.tables.items()}


def generate_dossier(scale: str | int, seed: int) -> Dossier:
    """Generate the demo data of a dossier with ``scale`` accounts (or a named scale) from ``seed``."""
    count = resolve_scale(scale)
    accounts = generate_accounts(seed, count)
    catalogue = generate_catalogue(seed, count)
    header, lines = generate_documents(seed, accounts, catalogue)
    generated = [accounts.comptet, accounts.contacts, accounts.deliveries, *catalogue.tables, header, lines]
    by_name = {table.name: table for table in generated}
    # Insert in the schema's foreign-key order, and fail loudly if the generator and the schema drift apart.
    ordered: dict[str, TableData] = {}
    for name, table in TABLES.items():
        data = by_name[name]
        expected = [column.name for column in table.columns]
        if list(data.columns) != expected:
            raise RuntimeError(
                f"generator columns of {name} {list(data.columns)} differ from the schema {expected}"
            )
        ordered[name] = data
    dossier = Dossier(accounts=count, seed=seed, tables=ordered, pictures=catalogue.pictures)
    problems = check_dossier(dossier)
    if problems:
        raise RuntimeError("generated data breaks the schema:\n" + "\n".join(problems[:20]))
    return dossier


def check_dossier(dossier: Dossier) -> list[str]:
    """Return every text value that is too long for its column or not encodable in cp1252 (empty when sound).

    SQLite does not enforce ``varchar`` lengths, so the generator checks itself against the schema instead of
    letting a PostgreSQL ``COPY`` fail half-way.
    """
    problems: list[str] = []
    for name, data in dossier.tables.items():
        for column in TABLES[name].columns:
            length = getattr(column.type, "length", None)
            if length is None:
                continue
            for value in set(data.columns[column.name].tolist()):
                if value is None:
                    continue
                if value == "":
                    problems.append(f"{name}.{column.name}: empty string (NULL is meant)")
                elif len(value) > length:
                    problems.append(
                        f"{name}.{column.name}: {value!r} is {len(value)} characters, limit {length}"
                    )
                else:
                    try:
                        value.encode("cp1252")
                    except UnicodeEncodeError:
                        problems.append(f"{name}.{column.name}: {value!r} is not encodable in cp1252")
    return problems
