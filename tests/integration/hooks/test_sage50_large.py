"""A 100,000-account snapshot read through the SQLite3 ODBC driver, on both fetch paths.

The dossier is bulk-inserted here with sqlite3 (about a second) rather than generated: the generator's
100,000-account scale also writes a million invoice lines, which this read does not need (bench/ reads those).
"""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from sage_sync.hooks.sage50 import FETCH_PATHS, Sage50Hook
from sage_sync.mapping.loader import load_mapping
from sage_sync.simulators.standin import schema

CUSTOMERS = 100_000
SUPPLIERS = 2_500


@pytest.fixture(scope="module")
def large_dossier(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("large") / "dossier.db"
    engine = sa.create_engine(f"sqlite:///{path}")
    schema.metadata.create_all(engine)
    engine.dispose()
    stamp = datetime(2024, 5, 6, 7, 8).isoformat(sep=" ")
    rows = [
        (
            f"C{i:07d}",
            f"Société n°{i} d'Œuvre €",
            1 if i >= CUSTOMERS else 0,
            1 if i % 20 == 0 else 0,
            None if i % 3 else f"{i % 100:02d}000",
            "Paris Cedex 0" + str(i % 9 + 1) if i % 7 == 0 else None,
            i % 25 == 0,
            stamp if i % 2 else None,
        )
        for i in range(CUSTOMERS + SUPPLIERS)
    ]
    with sqlite3.connect(path) as conn:
        conn.executemany(
            "INSERT INTO F_COMPTET (CT_Num, CT_Intitule, CT_Type, CT_Prospect, CT_CodePostal, CT_Ville, CT_Sommeil,"
            " cbModification) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
    return path


@pytest.mark.parametrize("fetch_path", FETCH_PATHS)
def test_100k_account_snapshot_has_every_customer_with_mapping_dtypes(
    large_dossier: Path, fetch_path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 2 done-when: a 100,000-account snapshot is read, suppliers excluded, dtypes as mapped."""
    conn = {"conn_type": "odbc", "schema": str(large_dossier),
            "extra": {"driver": "SQLite3", "fetch_path": fetch_path, "chunk_size": 30_000}}  # fmt: skip
    monkeypatch.setenv("AIRFLOW__PROVIDERS_ODBC__ALLOW_DRIVER_IN_EXTRA", "True")
    monkeypatch.setenv("AIRFLOW_CONN_SAGE50_DEFAULT", json.dumps(conn))
    hook = Sage50Hook()
    assert hook.fetch_path == fetch_path and hook.chunk_size == 30_000
    accounts = hook.read_snapshot("accounts")["accounts"]

    assert len(accounts) == CUSTOMERS
    assert accounts["code"].is_unique and accounts["code"].iloc[[0, -1]].tolist() == ["C0000000", "C0099999"]
    assert (accounts["account_type"] == 0).all()
    fields = load_mapping("accounts").main.fields
    assert [str(t) for t in accounts.dtypes] == [f.pandas_dtype for f in fields]
    assert int(accounts["is_prospect"].sum()) == CUSTOMERS // 20
    assert int(accounts["asleep"].sum()) == CUSTOMERS // 25
    assert int(accounts["postcode"].isna().sum()) == CUSTOMERS - len(range(0, CUSTOMERS, 3))
    assert int(accounts["modified_at"].notna().sum()) == CUSTOMERS // 2
    row = accounts.set_index("code").loc["C0000021"]
    assert row["name"] == "Société n°21 d'Œuvre €" and row["city"] == "Paris Cedex 04"
    assert row["postcode"] == "21000" and row["modified_at"] == pd.Timestamp("2024-05-06 07:08")
