"""``SageOdbcSide`` on a generated SQLite dossier through the real SQLite3 ODBC driver.

Reads hand the engine raw mapped sources; pictures never escape the media folder; writes give one outcome per row,
and a refused row (bad value, duplicate key, vanished record) never blocks the valid ones (G3).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from sage_sync.adapters.sage_odbc import SageOdbcSide
from sage_sync.engine.snapshot import assemble
from sage_sync.mapping.loader import load_mapping
from sage_sync.simulators.standin.create import create_sqlite_dossier
from sage_sync.simulators.standin.generator import generate_dossier


@dataclass
class Dossier:
    """A generated dossier: the adapter under test, SQL access for assertions, the media folder."""

    side: SageOdbcSide
    db: sa.Engine
    media: Path

    def rows(self, statement: str) -> list[dict[str, Any]]:
        with self.db.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(sa.text(statement))]


@pytest.fixture
def dossier(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Dossier]:
    """A 30-account dossier reached through ``sage50_default`` (SQLite3 driver named in the extra)."""
    path = tmp_path / "dossier.db"
    created = create_sqlite_dossier(path, generate_dossier(30, 3))
    monkeypatch.setenv("AIRFLOW__PROVIDERS_ODBC__ALLOW_DRIVER_IN_EXTRA", "True")
    monkeypatch.setenv(
        "AIRFLOW_CONN_SAGE50_DEFAULT",
        json.dumps({"conn_type": "odbc", "schema": str(path), "extra": {"driver": "SQLite3"}}),
    )
    engine = sa.create_engine(f"sqlite:///{path}")
    yield Dossier(SageOdbcSide(), engine, created.media_dir)
    engine.dispose()


def test_snapshots_are_the_mapped_sources_the_engine_assembles(dossier: Dossier) -> None:
    """Products come as raw sources (the engine joins them: D2, D3, D6); contacts never include suppliers' (K4)."""
    frames = dossier.side.read_snapshot("products")
    assert set(frames) == set(load_mapping("products").sources)
    assert len(frames["articles"]) == dossier.rows("SELECT COUNT(*) AS n FROM F_ARTICLE")[0]["n"]
    assert (
        len(frames["accounting"])
        == dossier.rows("SELECT COUNT(*) AS n FROM F_ARTCOMPTA WHERE ACP_Type = 0 AND ACP_Champ = 1")[0]["n"]
    )

    def picture_hash(path: str) -> str | None:
        content = dossier.side.read_picture(path)
        return None if content is None else hashlib.sha256(content).hexdigest()

    products = assemble("products", frames, picture_hash)
    with_picture = dossier.rows("SELECT COUNT(*) AS n FROM F_ARTICLE WHERE AR_Photo IS NOT NULL")[0]["n"]
    assert with_picture and int(products["picture_sha256"].notna().sum()) == with_picture

    contacts = dossier.side.read_snapshot("contacts")["contacts"]
    expected = dossier.rows(
        "SELECT COUNT(*) AS n FROM F_CONTACTT c JOIN F_COMPTET t ON t.CT_Num = c.CT_Num WHERE t.CT_Type = 0"
    )[0]["n"]
    assert len(contacts) == expected
    assert dossier.rows("SELECT COUNT(*) AS n FROM F_CONTACTT")[0]["n"] > expected, "suppliers have contacts"
    accounts = dossier.side.read_snapshot("accounts")["accounts"]
    assert set(accounts["account_type"].unique()) == {0}


def test_pictures_are_read_only_inside_the_media_folder(dossier: Dossier, tmp_path: Path) -> None:
    """D3: a picture is read by its path relative to the media folder; nothing outside it is ever read."""
    name = dossier.rows("SELECT MIN(AR_Photo) AS p FROM F_ARTICLE")[0]["p"]
    assert isinstance(name, str)
    assert dossier.side.read_picture(name) == (dossier.media / name).read_bytes()
    (tmp_path / "secret.txt").write_text("not a picture")
    assert dossier.side.read_picture("../secret.txt") is None
    assert dossier.side.read_picture(str(tmp_path / "secret.txt")) is None
    assert dossier.side.read_picture("missing.png") is None
    assert dossier.side.read_picture("") is None


def test_refused_rows_never_block_the_valid_ones(dossier: Dossier) -> None:
    """G3: a batch with a too-long name, a non-cp1252 name and a duplicate key still inserts its valid rows; each
    refused row gets an error naming the record, the column and the limit."""
    existing = dossier.rows("SELECT MIN(CT_Num) AS c FROM F_COMPTET WHERE CT_Type = 0")[0]["c"]
    rows = [
        {"code": "NEW0001", "name": "Valide SARL", "is_prospect": 1, "city": "Lyon"},
        {"code": "NEW0002", "name": "X" * 70, "is_prospect": 1},
        {"code": "NEW0003", "name": "Café ☕", "is_prospect": 1},
        {"code": existing, "name": "Doublon", "is_prospect": 1},
        {"code": "NEW0004", "name": "Valide Aussi", "is_prospect": 0, "sales_rep": "Camille Martin"},
    ]
    outcomes = dossier.side.insert("accounts", rows)
    assert [o.ok for o in outcomes] == [True, False, False, False, True]
    assert "CT_Num=NEW0002" in str(outcomes[1].error) and "CT_Intitule" in str(outcomes[1].error)
    assert "69" in str(outcomes[1].error)
    assert "cp1252" in str(outcomes[2].error) and "CT_Intitule" in str(outcomes[2].error)
    assert outcomes[3].error
    stored = dossier.rows(
        "SELECT CT_Num, CT_Type, CT_Prospect, SALES_REP FROM F_COMPTET WHERE CT_Num LIKE 'NEW%'"
    )
    assert stored == [
        {"CT_Num": "NEW0001", "CT_Type": 0, "CT_Prospect": 1, "SALES_REP": None},
        {"CT_Num": "NEW0004", "CT_Type": 0, "CT_Prospect": 0, "SALES_REP": "Camille Martin"},
    ]
    assert (
        dossier.rows(f"SELECT CT_Intitule FROM F_COMPTET WHERE CT_Num = '{existing}'")[0]["CT_Intitule"]
        != "Doublon"
    )


def test_updates_report_vanished_rows_and_never_touch_suppliers(dossier: Dossier) -> None:
    """An update of a record deleted meanwhile is an error outcome, not a silent success; a supplier's code is never
    updated through the customer write-back (CT_Type stays fixed); contacts update by (CT_Num, CT_No)."""
    customer = dossier.rows("SELECT MIN(CT_Num) AS c FROM F_COMPTET WHERE CT_Type = 0")[0]["c"]
    supplier = dossier.rows("SELECT MIN(CT_Num) AS c FROM F_COMPTET WHERE CT_Type = 1")[0]["c"]
    outcomes = dossier.side.update(
        "accounts",
        [{"code": customer}, {"code": "GONE000"}, {"code": supplier}],
        [{"city": "Quimper"}, {"city": "Nulle Part"}, {"city": "Brest"}],
    )
    assert [o.ok for o in outcomes] == [True, False, False]
    assert "GONE000" in str(outcomes[1].error)
    assert dossier.rows(f"SELECT CT_Ville FROM F_COMPTET WHERE CT_Num = '{customer}'") == [
        {"CT_Ville": "Quimper"}
    ]
    assert dossier.rows(f"SELECT CT_Ville FROM F_COMPTET WHERE CT_Num = '{supplier}'") != [
        {"CT_Ville": "Brest"}
    ]

    person = dossier.rows(
        "SELECT c.CT_Num AS code, c.CT_No AS no FROM F_CONTACTT c JOIN F_COMPTET t ON t.CT_Num = c.CT_Num "
        "WHERE t.CT_Type = 0 ORDER BY c.CT_Num, c.CT_No"
    )[0]
    outcomes = dossier.side.update(
        "contacts",
        [{"account_code": person["code"], "number": person["no"]}],
        [{"email": "l.oeuvre@exemple.fr", "job_title": "Cœur de métier"}],
    )
    assert outcomes[0].ok
    stored = dossier.rows(
        f"SELECT CT_EMail, CT_Fonction FROM F_CONTACTT WHERE CT_Num = '{person['code']}' AND CT_No = {person['no']}"
    )
    assert stored == [{"CT_EMail": "l.oeuvre@exemple.fr", "CT_Fonction": "Cœur de métier"}]
    with pytest.raises(ValueError, match="never written to Sage"):
        dossier.side.insert("products", [{"ref": "X"}])
