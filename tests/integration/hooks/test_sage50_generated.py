"""Sage50Hook on generator-made dossiers: the same seed on SQLite and on PostgreSQL (WIN1252) reads identically.

Both dossiers come from ``sage-sync standin create --scale small --seed 7``. Every snapshot is read through the
real drivers with both fetch paths and compared across engines, then checked against independent SQL counts.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from airflow.models.connection import Connection

from sage_sync.hooks.sage50 import FETCH_PATHS, Sage50Hook
from tests.support.postgres import PostgresServer, postgres_server  # noqa: F401
from tests.support.sage import read_entity

KEYS = {
    "accounts": {"accounts": ["code"]},
    "contacts": {"contacts": ["account_code", "number"]},
    "products": {"products": ["ref"]},
    "invoices": {"headers": ["piece"], "lines": ["line_id"]},
}


@dataclass
class Generated:
    """One generated dossier: how the hook reaches it, where its pictures are, and a SQLAlchemy engine."""

    connection: Connection
    driver: str
    media: Path
    engine: sa.Engine


def _create(*args: str) -> None:
    command = [
        sys.executable,
        "-m",
        "sage_sync.cli",
        "standin",
        "create",
        "--scale",
        "small",
        "--seed",
        "7",
        *args,
    ]
    subprocess.run(command, check=True, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def generated(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[dict[str, Generated]]:
    postgres: PostgresServer = request.getfixturevalue("postgres_server")
    base = tmp_path_factory.mktemp("generated")
    lite_path = base / "dossier.db"
    _create("--engine", "sqlite", "--path", str(lite_path), "--media", str(base / "lite_media"))
    url = postgres.create_database("generated_small")
    _create("--engine", "postgres", "--url", url.replace("+psycopg2", ""), "--media", str(base / "pg_media"))
    dossiers = {
        "sqlite": Generated(
            Connection(conn_id="sage50_lite", conn_type="odbc", schema=str(lite_path)),
            "SQLite3",
            base / "lite_media",
            sa.create_engine(f"sqlite:///{lite_path}"),
        ),
        "postgresql": Generated(
            Connection(
                conn_id="sage50_pg",
                conn_type="odbc",
                host=postgres.host,
                port=postgres.port,
                schema="generated_small",
                login=postgres.user,
            ),
            "PostgreSQL ANSI",
            base / "pg_media",
            sa.create_engine(url),
        ),
    }
    yield dossiers
    for d in dossiers.values():
        d.engine.dispose()
    postgres.drop_database("generated_small")


def _read(d: Generated, entity: str, fetch_path: str) -> dict[str, pd.DataFrame]:
    hook = Sage50Hook(connection=d.connection, driver=d.driver, fetch_path=fetch_path)  # type: ignore[arg-type]
    return read_entity(hook, entity, d.media)


@pytest.mark.parametrize("entity", list(KEYS))
def test_same_seed_gives_identical_snapshots_on_both_engines_and_fetch_paths(
    generated: dict[str, Generated], entity: str
) -> None:
    """The encoding rule and the typed frames make SQLite (UTF-8) and PostgreSQL (cp1252) indistinguishable."""
    reads = {
        (engine, path): _read(d, entity, path) for engine, d in generated.items() for path in FETCH_PATHS
    }
    reference = reads[("sqlite", "arrow")]
    for part, key in KEYS[entity].items():
        expected = reference[part].sort_values(key).reset_index(drop=True)
        assert len(expected) > 0
        for where, snapshot in reads.items():
            actual = snapshot[part].sort_values(key).reset_index(drop=True)
            pd.testing.assert_frame_equal(actual, expected, obj=f"{entity}.{part} {where}")


def _scalar(engine: sa.Engine, sql: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text(sql)).scalar_one())


def test_generated_snapshots_match_independent_sql(generated: dict[str, Generated]) -> None:
    """SPEC section 1, K4, D2, D3: counts and derived values agree with plain SQL on the same dossier."""
    d = generated["postgresql"]
    assert _scalar(d.engine, "SELECT COUNT(*) FROM F_COMPTET WHERE CT_Type = 1") > 0  # suppliers exist...
    assert _scalar(d.engine, "SELECT COUNT(*) FROM F_LIVRAISON") > 0  # ...and delivery addresses too
    accounts = _read(d, "accounts", "arrow")["accounts"]
    assert len(accounts) == _scalar(d.engine, "SELECT COUNT(*) FROM F_COMPTET WHERE CT_Type = 0")
    contacts = _read(d, "contacts", "arrow")["contacts"]
    assert len(contacts) == _scalar(
        d.engine,
        "SELECT COUNT(*) FROM F_CONTACTT c JOIN F_COMPTET t ON t.CT_Num = c.CT_Num WHERE t.CT_Type = 0",
    )
    assert set(contacts["account_code"]) <= set(accounts["code"])
    invoices = _read(d, "invoices", "arrow")
    in_scope = "DO_Domaine = 0 AND DO_Type IN (6, 7)"
    assert len(invoices["headers"]) == _scalar(d.engine, f"SELECT COUNT(*) FROM F_DOCENTETE WHERE {in_scope}")
    assert len(invoices["lines"]) == _scalar(d.engine, f"SELECT COUNT(*) FROM F_DOCLIGNE WHERE {in_scope}")
    assert _scalar(d.engine, "SELECT COUNT(*) FROM F_DOCENTETE WHERE NOT (" + in_scope + ")") > 0

    products = _read(d, "products", "arrow")["products"].set_index("ref")
    with d.engine.connect() as conn:
        sums = conn.execute(sa.text("SELECT AR_Ref, SUM(AS_QteSto) FROM F_ARTSTOCK GROUP BY AR_Ref")).all()
    totals: dict[str, float] = {str(ref): float(total) for ref, total in sums}
    managed = products[products["stock_managed"] != 0]
    unmanaged = products[products["stock_managed"] == 0]
    assert len(managed) and len(unmanaged)
    for ref, row in managed.iterrows():
        assert row["stock_total"] == pytest.approx(totals.get(str(ref), 0.0))
    assert unmanaged["stock_total"].isna().all() and (unmanaged["stock_display"] == "-").all()
    with_file = [ref for ref, p in products["picture"].dropna().items() if (d.media / str(p)).is_file()]
    assert with_file and sorted(products["picture_sha256"].dropna().index) == sorted(with_file)
