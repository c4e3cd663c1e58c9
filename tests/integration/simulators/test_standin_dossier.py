"""The stand-in dossier on real engines: SQLite files made by the CLI, and a PostgreSQL WIN1252 database.

Checks the contract ``SAGE50FR-STANDIN.md``: every table and column with its type, length, nullability,
default and primary key; plain unquoted INSERTs; determinism (same seed, same rows and pictures); cp1252 text.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import create_engine, inspect

from sage_sync.errors import ConfigurationError
from sage_sync.simulators.standin.create import create_postgres_dossier
from sage_sync.simulators.standin.generator import generate_dossier
from tests.support.postgres import PostgresServer, postgres_server  # noqa: F401

SAGE_SYNC = str(Path(sys.executable).with_name("sage-sync"))

# The contract, written out independently of schema.py: (column, kind, length, nullable, default).
S, SI, INT, N, D, TS = "varchar", "smallint", "integer", "numeric", "date", "timestamp"
CONTRACT: dict[str, tuple[list[tuple[str, str, int | None, bool, str | None]], list[str]]] = {
    "F_COMPTET": (
        [
            ("CT_Num", S, 17, False, None),
            ("CT_Intitule", S, 69, False, None),
            ("CT_Type", SI, None, False, "0"),
            ("CT_Prospect", SI, None, False, "0"),
            ("CT_Contact", S, 35, True, None),
            ("CT_Adresse", S, 35, True, None),
            ("CT_Complement", S, 35, True, None),
            ("CT_CodePostal", S, 9, True, None),
            ("CT_Ville", S, 35, True, None),
            ("CT_CodeRegion", S, 25, True, None),
            ("CT_Pays", S, 35, True, None),
            ("CT_Telephone", S, 21, True, None),
            ("CT_Telecopie", S, 21, True, None),
            ("CT_EMail", S, 69, True, None),
            ("CT_Site", S, 69, True, None),
            ("CT_Siret", S, 15, True, None),
            ("CT_Identifiant", S, 25, True, None),
            ("CT_Ape", S, 7, True, None),
            ("CT_Commentaire", S, 35, True, None),
            ("CT_Sommeil", SI, None, False, "0"),
            ("SALES_REP", S, 69, True, None),
            ("cbCreation", TS, None, True, None),
            ("cbModification", TS, None, True, None),
        ],
        ["CT_Num"],
    ),
    "F_CONTACTT": (
        [
            ("CT_Num", S, 17, False, None),
            ("CT_No", INT, None, False, None),
            ("CT_Civilite", SI, None, True, None),
            ("CT_Nom", S, 35, False, None),
            ("CT_Prenom", S, 35, True, None),
            ("CT_Fonction", S, 35, True, None),
            ("CT_Telephone", S, 21, True, None),
            ("CT_TelPortable", S, 21, True, None),
            ("CT_Telecopie", S, 21, True, None),
            ("CT_EMail", S, 69, True, None),
            ("cbModification", TS, None, True, None),
        ],
        ["CT_Num", "CT_No"],
    ),
    "F_LIVRAISON": (
        [
            ("LI_No", INT, None, False, None),
            ("CT_Num", S, 17, True, None),
            ("LI_Intitule", S, 35, False, None),
            ("LI_Adresse", S, 35, True, None),
            ("LI_Complement", S, 35, True, None),
            ("LI_CodePostal", S, 9, True, None),
            ("LI_Ville", S, 35, True, None),
            ("LI_Pays", S, 35, True, None),
            ("LI_Contact", S, 35, True, None),
            ("LI_Telephone", S, 21, True, None),
            ("LI_EMail", S, 69, True, None),
            ("LI_Principal", SI, None, True, "0"),
        ],
        ["LI_No"],
    ),
    "F_FAMILLE": (
        [("FA_CodeFamille", S, 10, False, None), ("FA_Intitule", S, 35, False, None)],
        ["FA_CodeFamille"],
    ),
    "F_TAXE": (
        [
            ("TA_Code", S, 5, False, None),
            ("TA_Intitule", S, 35, True, None),
            ("TA_Taux", N, None, True, None),
        ],
        ["TA_Code"],
    ),
    "F_DEPOT": ([("DE_No", INT, None, False, None), ("DE_Intitule", S, 35, False, None)], ["DE_No"]),
    "F_ARTICLE": (
        [
            ("AR_Ref", S, 19, False, None),
            ("AR_Design", S, 69, False, None),
            ("FA_CodeFamille", S, 10, True, None),
            ("AR_PrixAch", N, None, True, None),
            ("AR_PrixVen", N, None, False, None),
            ("AR_PrixTTC", SI, None, False, "0"),
            ("AR_SuiviStock", SI, None, False, "2"),
            ("AR_UniteVen", S, 21, True, None),
            ("AR_CodeBarre", S, 19, True, None),
            ("AR_Photo", S, 259, True, None),
            ("AR_Sommeil", SI, None, False, "0"),
            ("cbModification", TS, None, True, None),
        ],
        ["AR_Ref"],
    ),
    "F_ARTCOMPTA": (
        [
            ("AR_Ref", S, 19, False, None),
            ("ACP_Type", SI, None, False, None),
            ("ACP_Champ", SI, None, False, None),
            ("ACP_ComptaCPT_Taxe1", S, 5, True, None),
        ],
        ["AR_Ref", "ACP_Type", "ACP_Champ"],
    ),
    "F_ARTSTOCK": (
        [
            ("AR_Ref", S, 19, False, None),
            ("DE_No", INT, None, False, None),
            ("AS_QteSto", N, None, False, "0"),
        ],
        ["AR_Ref", "DE_No"],
    ),
    "F_DOCENTETE": (
        [
            ("DO_Domaine", SI, None, False, None),
            ("DO_Type", SI, None, False, None),
            ("DO_Piece", S, 13, False, None),
            ("DO_Date", D, None, False, None),
            ("DO_Ref", S, 17, True, None),
            ("DO_Tiers", S, 17, False, None),
            ("DO_Provenance", SI, None, False, "0"),
            ("DO_TotalHT", N, None, False, None),
            ("DO_TotalTTC", N, None, False, None),
            ("DO_NetAPayer", N, None, False, None),
            ("DO_MontantRegle", N, None, False, "0"),
            ("cbModification", TS, None, True, None),
        ],
        ["DO_Domaine", "DO_Type", "DO_Piece"],
    ),
    "F_DOCLIGNE": (
        [
            ("DL_No", INT, None, False, None),
            ("DO_Domaine", SI, None, True, None),
            ("DO_Type", SI, None, True, None),
            ("DO_Piece", S, 13, True, None),
            ("CT_Num", S, 17, True, None),
            ("DL_Ligne", INT, None, True, None),
            ("AR_Ref", S, 19, True, None),
            ("DL_Design", S, 69, True, None),
            ("DL_Qte", N, None, True, None),
            ("DL_PrixUnitaire", N, None, True, None),
            ("DL_Taxe1", N, None, True, None),
            ("DL_Remise01REM_Valeur", N, None, True, None),
            ("DL_MontantHT", N, None, True, None),
            ("DL_MontantTTC", N, None, True, None),
        ],
        ["DL_No"],
    ),
}
FOREIGN_KEYS = {
    ("F_CONTACTT", ("ct_num",), "f_comptet"),
    ("F_LIVRAISON", ("ct_num",), "f_comptet"),
    ("F_ARTICLE", ("fa_codefamille",), "f_famille"),
    ("F_ARTCOMPTA", ("ar_ref",), "f_article"),
    ("F_ARTCOMPTA", ("acp_comptacpt_taxe1",), "f_taxe"),
    ("F_ARTSTOCK", ("ar_ref",), "f_article"),
    ("F_ARTSTOCK", ("de_no",), "f_depot"),
    ("F_DOCENTETE", ("do_tiers",), "f_comptet"),
    ("F_DOCLIGNE", ("do_domaine", "do_type", "do_piece"), "f_docentete"),
}


def _kind_matches(kind: str, type_: Any, length: int | None) -> bool:
    if kind == S:
        return isinstance(type_, sa.String) and type_.length == length
    if kind == SI:
        return isinstance(type_, sa.SmallInteger)
    if kind == INT:
        return isinstance(type_, sa.Integer) and not isinstance(type_, sa.SmallInteger | sa.BigInteger)
    if kind == N:
        return isinstance(type_, sa.Numeric) and not isinstance(type_, sa.Float)
    if kind == D:
        return isinstance(type_, sa.Date) and not isinstance(type_, sa.DateTime)
    return isinstance(type_, sa.DateTime)


def assert_schema_matches_contract(url: str) -> None:
    engine = create_engine(url)
    try:
        inspector = inspect(engine)
        present = {name.lower(): name for name in inspector.get_table_names()}
        assert set(present) == {name.lower() for name in CONTRACT}
        for table, (columns, primary_key) in CONTRACT.items():
            reflected = {c["name"].lower(): c for c in inspector.get_columns(present[table.lower()])}
            assert list(reflected) == [name.lower() for name, *_ in columns], table
            for name, kind, length, nullable, default in columns:
                column = reflected[name.lower()]
                where = f"{table}.{name}"
                assert _kind_matches(kind, column["type"], length), (
                    f"{where}: {column['type']!r} is not {kind}({length})"
                )
                if name.lower() not in {c.lower() for c in primary_key}:
                    assert column["nullable"] is nullable, f"{where} nullable"
                if default is not None:
                    assert column["default"] is not None and default in str(column["default"]), (
                        f"{where} default"
                    )
            pk = inspector.get_pk_constraint(present[table.lower()])["constrained_columns"]
            assert sorted(c.lower() for c in pk) == sorted(c.lower() for c in primary_key), table
        foreign_keys = {
            (table, tuple(c.lower() for c in fk["constrained_columns"]), fk["referred_table"].lower())
            for table in CONTRACT
            for fk in inspector.get_foreign_keys(present[table.lower()])
        }
        assert foreign_keys == FOREIGN_KEYS
    finally:
        engine.dispose()


def _normalise(value: Any) -> Any:
    if isinstance(value, float | Decimal):
        return str(Decimal(str(value)).quantize(Decimal("0.0001")))
    if isinstance(value, datetime | date):
        return value.isoformat(sep=" ") if isinstance(value, datetime) else value.isoformat()
    return value


def table_digests(url: str) -> dict[str, str]:
    """Hash every table's rows, engine-independently (numbers to 4 decimals, dates as ISO text, sorted rows)."""
    from sage_sync.simulators.standin.schema import TABLES

    engine = create_engine(url)
    digests = {}
    try:
        with engine.connect() as conn:
            for name, table in TABLES.items():
                rows = sorted(
                    repr(tuple(_normalise(v) for v in row)) for row in conn.execute(sa.select(table))
                )
                digests[name] = hashlib.sha256("\n".join(rows).encode()).hexdigest()
    finally:
        engine.dispose()
    return digests


def media_digest(folder: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        h.update(str(path.relative_to(folder)).encode() + path.read_bytes())
    return h.hexdigest()


SAGE_SYNC_STANDIN_URL = "SAGE_SYNC_STANDIN_URL"


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k != SAGE_SYNC_STANDIN_URL}
    return subprocess.run(
        [SAGE_SYNC, "standin", "create", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**environment, **(env or {})},
    )


def test_create_help_names_the_url_environment_variable() -> None:
    out = subprocess.run(
        [SAGE_SYNC, "standin", "create", "--help"], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    assert SAGE_SYNC_STANDIN_URL in out and "password" in out


@pytest.fixture(scope="module")
def sqlite_dossiers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    """Three dossiers made by the CLI of the issue's "Done when": seed 7 twice, and seed 8."""
    base = tmp_path_factory.mktemp("standin")
    paths = {"a": base / "a" / "d.db", "b": base / "b" / "d.db", "other": base / "other.db"}
    for key, path in paths.items():
        path.parent.mkdir(exist_ok=True)
        seed = "8" if key == "other" else "7"
        result = run_cli("--engine", "sqlite", "--path", str(path), "--scale", "small", "--seed", seed)
        assert result.returncode == 0, result.stderr
        assert "F_DOCLIGNE" in result.stdout and "Media folder:" in result.stdout
    yield paths


def test_cli_creates_sqlite_dossier_matching_the_contract(sqlite_dossiers: dict[str, Path]) -> None:
    path = sqlite_dossiers["a"]
    assert_schema_matches_contract(f"sqlite:///{path}")
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"  # normal journal restored
        assert conn.execute("SELECT COUNT(*) FROM F_COMPTET").fetchone()[0] == 300
        photos = [r[0] for r in conn.execute("SELECT AR_Photo FROM F_ARTICLE WHERE AR_Photo IS NOT NULL")]
    media = path.with_name("d_media")
    assert photos and all((media / photo).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for photo in photos)


def test_same_seed_gives_identical_dossiers_and_another_seed_differs(
    sqlite_dossiers: dict[str, Path],
) -> None:
    a, b, other = (table_digests(f"sqlite:///{sqlite_dossiers[k]}") for k in ("a", "b", "other"))
    assert a == b
    assert all(a[name] != other[name] for name in ("F_COMPTET", "F_CONTACTT", "F_DOCENTETE", "F_DOCLIGNE"))
    assert media_digest(sqlite_dossiers["a"].with_name("d_media")) == media_digest(
        sqlite_dossiers["b"].with_name("d_media")
    )


def test_plain_unquoted_insert_on_sqlite(sqlite_dossiers: dict[str, Path], tmp_path: Path) -> None:
    path = tmp_path / "copy.db"
    path.write_bytes(sqlite_dossiers["a"].read_bytes())
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO F_COMPTET (CT_Num, CT_Intitule) VALUES ('ZZTEST', 'Bœuf & Cie – 5 €')")
        conn.execute("INSERT INTO F_CONTACTT (CT_Num, CT_No, CT_Nom) VALUES ('ZZTEST', 1, 'L''Hôte')")
        conn.execute("INSERT INTO F_ARTICLE (AR_Ref, AR_Design, AR_PrixVen) VALUES ('ZZART', 'Œuf', 1.5)")
        row = conn.execute(
            "SELECT CT_Intitule, CT_Type, CT_Prospect, CT_Sommeil FROM f_comptet WHERE ct_num = 'ZZTEST'"
        ).fetchone()
        assert row == ("Bœuf & Cie – 5 €", 0, 0, 0)
        assert conn.execute(
            "SELECT AR_SuiviStock, AR_PrixTTC FROM F_ARTICLE WHERE AR_Ref='ZZART'"
        ).fetchone() == (2, 0)


def test_cli_refuses_to_overwrite_without_force(sqlite_dossiers: dict[str, Path]) -> None:
    path = sqlite_dossiers["other"]
    before = path.read_bytes()
    refused = run_cli("--engine", "sqlite", "--path", str(path), "--scale", "small", "--seed", "7")
    assert refused.returncode == 2
    assert f"Error: dossier {path} already exists; pass --force to replace it" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert "Generating" not in refused.stdout, "the refusal must come before the data is generated"
    assert path.read_bytes() == before
    replaced = run_cli("--engine", "sqlite", "--path", str(path), "--scale", "40", "--seed", "7", "--force")
    assert replaced.returncode == 0, replaced.stderr
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM F_COMPTET").fetchone()[0] == 40


def test_postgres_dossier_matches_the_contract_and_the_sqlite_data(
    postgres_server: PostgresServer,  # noqa: F811
    sqlite_dossiers: dict[str, Path],
    tmp_path: Path,
) -> None:
    url = postgres_server.create_database("standin_contract")
    result = create_postgres_dossier(url, generate_dossier("small", 7), media_dir=tmp_path / "media")
    assert result.counts["F_COMPTET"] == 300
    assert_schema_matches_contract(url)
    # Same seed, same rows on both engines.
    assert table_digests(url) == table_digests(f"sqlite:///{sqlite_dossiers['a']}")
    assert media_digest(tmp_path / "media") == media_digest(sqlite_dossiers["a"].with_name("d_media"))

    conn = postgres_server.connect("standin_contract", client_encoding="WIN1252")
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW server_encoding")
            assert cur.fetchone() == ("WIN1252",)
            # Unquoted identifiers, exactly as the contract's outside programs write them.
            cur.execute(
                "INSERT INTO F_COMPTET (CT_Num, CT_Intitule, CT_Commentaire) VALUES (%s, %s, %s)",
                ("ZZTEST", "Sœurs Lebœuf – « Œufs » 5 €", "L'été ; 'quoted'"),
            )
            cur.execute("INSERT INTO F_CONTACTT (CT_Num, CT_No, CT_Nom) VALUES ('ZZTEST', 1, 'N''Diaye')")
            cur.execute(
                "SELECT CT_Intitule, CT_Commentaire, CT_Type, CT_Prospect, CT_Sommeil, "
                "convert_to(CT_Intitule, 'WIN1252') FROM F_COMPTET WHERE CT_Num = 'ZZTEST'"
            )
            name, comment, ct_type, prospect, asleep, raw = cur.fetchone()
            assert (name, comment, ct_type, prospect, asleep) == (
                "Sœurs Lebœuf – « Œufs » 5 €",
                "L'été ; 'quoted'",
                0,
                0,
                0,
            )
            assert bytes(raw) == name.encode("cp1252")  # stored as single cp1252 bytes: œ=0x9C, €=0x80
            assert b"\x9c" in bytes(raw) and b"\x80" in bytes(raw)
            cur.execute("SELECT count(*) FROM f_comptet WHERE ct_intitule LIKE '%œ%'")
            assert cur.fetchone()[0] > 1  # generated names with "œ" made it through COPY
            cur.execute("SELECT count(*) FROM F_DOCLIGNE WHERE DO_Type IN (6, 7)")
            assert cur.fetchone()[0] > 2000
        conn.rollback()
    finally:
        conn.close()

    with pytest.raises(ConfigurationError, match="already holds a dossier"):
        create_postgres_dossier(url, generate_dossier(10, 1), media_dir=tmp_path / "media")


def test_postgres_cli_force_and_encoding_guard(
    postgres_server: PostgresServer,  # noqa: F811
    tmp_path: Path,
) -> None:
    url = postgres_server.create_database("standin_cli")
    args = [
        "--engine",
        "postgres",
        "--url",
        url,
        "--scale",
        "60",
        "--seed",
        "3",
        "--media",
        str(tmp_path / "m"),
    ]
    first = run_cli(*args)
    assert first.returncode == 0, first.stderr
    assert "Media folder:" in first.stdout
    # The URL may come from the environment instead (no password on the command line).
    without_url = [*args[:2], *args[4:]]
    again = run_cli(*without_url, env={SAGE_SYNC_STANDIN_URL: url})
    assert again.returncode == 2 and "already holds a dossier" in again.stderr and "--force" in again.stderr
    assert "Traceback" not in again.stderr
    assert "Generating" not in again.stdout, "the refusal must come before the data is generated"
    missing = run_cli(*without_url, env={SAGE_SYNC_STANDIN_URL: ""})
    assert missing.returncode == 2 and SAGE_SYNC_STANDIN_URL in missing.stderr
    forced = run_cli(*args, "--force")
    assert forced.returncode == 0, forced.stderr
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM F_COMPTET")).scalar_one() == 60
    finally:
        engine.dispose()

    admin = postgres_server.connect()
    try:
        admin.autocommit = True
        with admin.cursor() as cur:
            cur.execute("CREATE DATABASE standin_utf8 ENCODING 'UTF8' TEMPLATE template0")
    finally:
        admin.close()
    refused = run_cli(*args[:2], "--url", postgres_server.url("standin_utf8"), *args[4:])
    assert refused.returncode == 2 and "WIN1252" in refused.stderr
