"""Sage50Hook through the real unixODBC drivers: SQLite3, and PostgreSQL (WIN1252 database) via psqlODBC.

Each test gets a fresh small dossier with known rows (customers, a prospect, a supplier with a contact and a
delivery address, articles, invoices of every kind), reached through an ``AIRFLOW_CONN_SAGE50_DEFAULT``
connection exactly as production reaches it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from sage_sync.errors import FatalSyncError, RecordRejected
from sage_sync.hooks.sage50 import FETCH_PATHS, Sage50Hook
from sage_sync.mapping.loader import load_mapping
from sage_sync.simulators.standin import schema
from tests.support.postgres import PostgresServer, postgres_server  # noqa: F401
from tests.support.sage import read_entity

TRICKY = [
    "Crème brûlée & Cie",
    "L'Œuf d'or — “spécial” ‘x’",
    "Prix 12 € « net » …",
    'Guillemets "doubles" et \\ barre',
    "'; DROP TABLE F_COMPTET; --",
    "œ Œ æ Æ ÿ Ÿ š Ž ß à ç é è ê ë î ï ô ù û ü",
]


@dataclass
class Dossier:
    """A small dossier on one engine: its SQLAlchemy engine, media folder and ODBC driver."""

    engine_name: str
    engine: sa.Engine
    media: Path
    driver: str


def _rows() -> dict[str, list[dict[str, object]]]:
    stamp = datetime(2024, 3, 1, 10, 30)
    account = {"CT_Type": 0, "CT_Prospect": 0, "CT_Sommeil": 0, "cbModification": stamp}
    header = {"DO_Domaine": 0, "DO_Date": date(2024, 3, 1), "DO_Tiers": "C001", "DO_Provenance": 0,
              "DO_TotalHT": Decimal("100"), "DO_TotalTTC": Decimal("120"), "DO_NetAPayer": Decimal("120"),
              "DO_MontantRegle": Decimal("0"), "DO_Ref": None, "cbModification": stamp}  # fmt: skip

    def line(
        no: int, dtype: int, piece: str, ref: str | None, qty: str | None, domain: int = 0
    ) -> dict[str, object]:
        return {"DL_No": no, "DO_Domaine": domain, "DO_Type": dtype, "DO_Piece": piece, "CT_Num": "C001",
                "DL_Ligne": no * 1000, "AR_Ref": ref, "DL_Design": "Ligne n°" + str(no),
                "DL_Qte": None if qty is None else Decimal(qty), "DL_PrixUnitaire": Decimal("10.5"),
                "DL_Taxe1": Decimal("5.5"), "DL_Remise01REM_Valeur": Decimal("0"),
                "DL_MontantHT": Decimal("21"), "DL_MontantTTC": Decimal("22.16")}  # fmt: skip

    return {
        "F_COMPTET": [
            {
                **account,
                "CT_Num": "C001",
                "CT_Intitule": "Société Générale d'Œufs",
                "CT_Ville": "Paris Cedex 17",
            },
            {**account, "CT_Num": "P001", "CT_Intitule": "Prospect Noël", "CT_Prospect": 1, "CT_Ville": None},
            {
                **account,
                "CT_Num": "C002",
                "CT_Intitule": "Endormie SARL",
                "CT_Sommeil": 1,
                "CT_Ville": "Ajaccio",
            },
            {
                **account,
                "CT_Num": "F001",
                "CT_Intitule": "Fournisseur Ãpre",
                "CT_Type": 1,
                "CT_Ville": "Lyon",
            },
        ],
        "F_CONTACTT": [
            {"CT_Num": "C001", "CT_No": 1, "CT_Nom": "Dupont", "CT_Prenom": "Zoë", "CT_Civilite": 1},
            {"CT_Num": "C001", "CT_No": 2, "CT_Nom": "Lefèvre", "CT_Prenom": None, "CT_Civilite": 0},
            {"CT_Num": "P001", "CT_No": 1, "CT_Nom": "Martin", "CT_Prenom": "Noé", "CT_Civilite": None},
            {
                "CT_Num": "F001",
                "CT_No": 1,
                "CT_Nom": "Contact-fournisseur",
                "CT_Prenom": None,
                "CT_Civilite": 0,
            },
        ],
        "F_LIVRAISON": [
            {"LI_No": 1, "CT_Num": "C001", "LI_Intitule": "Entrepôt Lyon", "LI_Contact": "Quai 3"},
            {"LI_No": 2, "CT_Num": "F001", "LI_Intitule": "Dépôt fournisseur", "LI_Contact": None},
        ],
        "F_FAMILLE": [
            {"FA_CodeFamille": "EPI", "FA_Intitule": "Épicerie fine"},
            {"FA_CodeFamille": "SRV", "FA_Intitule": "Services"},
        ],
        "F_TAXE": [
            {"TA_Code": "T20", "TA_Intitule": "TVA 20", "TA_Taux": Decimal("20")},
            {"TA_Code": "T55", "TA_Intitule": "TVA 5,5", "TA_Taux": Decimal("5.5")},
            {"TA_Code": "T10", "TA_Intitule": "TVA 10", "TA_Taux": Decimal("10")},
        ],
        "F_DEPOT": [{"DE_No": 1, "DE_Intitule": "Principal"}, {"DE_No": 2, "DE_Intitule": "Annexe"}],
        "F_ARTICLE": [
            {
                "AR_Ref": "ART1",
                "AR_Design": "Huile d'olive",
                "FA_CodeFamille": "EPI",
                "AR_PrixAch": Decimal("4"),
                "AR_PrixVen": Decimal("12.66"),
                "AR_PrixTTC": 1,
                "AR_SuiviStock": 2,
                "AR_Photo": "img/art1.png",
                "AR_Sommeil": 0,
            },
            {
                "AR_Ref": "SRV1",
                "AR_Design": "Installation",
                "FA_CodeFamille": "SRV",
                "AR_PrixAch": None,
                "AR_PrixVen": Decimal("50"),
                "AR_PrixTTC": 0,
                "AR_SuiviStock": 0,
                "AR_Photo": "missing.png",
                "AR_Sommeil": 0,
            },
            {
                "AR_Ref": "ART2",
                "AR_Design": "Épuisé",
                "FA_CodeFamille": None,
                "AR_PrixAch": None,
                "AR_PrixVen": Decimal("3"),
                "AR_PrixTTC": 0,
                "AR_SuiviStock": 2,
                "AR_Photo": None,
                "AR_Sommeil": 1,
            },
        ],  # fmt: skip
        "F_ARTCOMPTA": [
            {"AR_Ref": "ART1", "ACP_Type": 0, "ACP_Champ": 1, "ACP_ComptaCPT_Taxe1": "T55"},
            {"AR_Ref": "ART1", "ACP_Type": 1, "ACP_Champ": 1, "ACP_ComptaCPT_Taxe1": "T20"},
            {"AR_Ref": "SRV1", "ACP_Type": 0, "ACP_Champ": 1, "ACP_ComptaCPT_Taxe1": "T20"},
            {"AR_Ref": "ART2", "ACP_Type": 0, "ACP_Champ": 2, "ACP_ComptaCPT_Taxe1": "T10"},
        ],
        "F_ARTSTOCK": [
            {"AR_Ref": "ART1", "DE_No": 1, "AS_QteSto": Decimal("10.5")},
            {"AR_Ref": "ART1", "DE_No": 2, "AS_QteSto": Decimal("4")},
            {"AR_Ref": "SRV1", "DE_No": 1, "AS_QteSto": Decimal("3")},
        ],
        "F_DOCENTETE": [
            {**header, "DO_Type": 6, "DO_Piece": "FA001", "DO_Ref": "Cde 12"},
            {**header, "DO_Type": 7, "DO_Piece": "FA002"},
            {**header, "DO_Type": 7, "DO_Piece": "AV001", "DO_Provenance": 2, "DO_TotalHT": Decimal("-21")},
            {**header, "DO_Type": 0, "DO_Piece": "DE001"},
            {**header, "DO_Type": 1, "DO_Piece": "BC001"},
            {**header, "DO_Type": 3, "DO_Piece": "BL001"},
            {**header, "DO_Domaine": 1, "DO_Type": 6, "DO_Piece": "FF001", "DO_Tiers": "F001"},
        ],
        "F_DOCLIGNE": [
            line(1, 6, "FA001", "ART1", "2"),
            line(2, 6, "FA001", None, None),  # comment line
            line(3, 7, "FA002", "SRV1", "1.5"),
            line(4, 7, "AV001", "ART1", "-2"),
            line(5, 0, "DE001", "ART1", "1"),
            line(6, 1, "BC001", "ART1", "1"),
            line(7, 3, "BL001", "ART1", "1"),
            line(8, 6, "FF001", "ART2", "1", domain=1),
        ],
    }


def _fill(engine: sa.Engine) -> None:
    schema.metadata.create_all(engine)
    rows = _rows()
    with engine.begin() as conn:
        for table in schema.metadata.sorted_tables:
            for row in rows.get(table.name, []):
                conn.execute(table.insert().values(**row))


@pytest.fixture(params=["sqlite", "postgresql"])
def dossier(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Dossier]:
    """A fresh small dossier; AIRFLOW_CONN_SAGE50_DEFAULT points at it (driver from the extra)."""
    media = tmp_path / "media"
    (media / "img").mkdir(parents=True)
    (media / "img" / "art1.png").write_bytes(b"\x89PNG\r\n\x1a\n tiny")
    conn: dict[str, object]
    if request.param == "sqlite":
        path = tmp_path / "dossier.db"
        engine = sa.create_engine(f"sqlite:///{path}")
        conn = {"conn_type": "odbc", "schema": str(path), "extra": {"driver": "SQLite3"}}
        driver = "SQLite3"
    else:
        server: PostgresServer = request.getfixturevalue("postgres_server")
        name = "d_" + hashlib.sha1(request.node.nodeid.encode()).hexdigest()[:16]
        engine = sa.create_engine(server.create_database(name))
        driver = "PostgreSQL ANSI"
        conn = {"conn_type": "odbc", "host": server.host, "port": server.port, "schema": name,
                "login": server.user, "extra": {"driver": driver}}  # fmt: skip
    _fill(engine)
    monkeypatch.setenv("AIRFLOW__PROVIDERS_ODBC__ALLOW_DRIVER_IN_EXTRA", "True")
    monkeypatch.setenv("AIRFLOW_CONN_SAGE50_DEFAULT", json.dumps(conn))
    yield Dossier(request.param, engine, media, driver)
    engine.dispose()
    if request.param == "postgresql":
        request.getfixturevalue("postgres_server").drop_database(name)


def _count(engine: sa.Engine, table: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text(f"SELECT COUNT(*) FROM {table}")).scalar_one())


def _assert_mapping_dtypes(frame: pd.DataFrame, entity: str, source: str) -> None:
    fields = [f for f in load_mapping(entity).sources[source].fields if f.sage]
    assert list(frame.columns[: len(fields)]) == [f.name for f in fields]
    assert [str(frame[f.name].dtype) for f in fields] == [f.pandas_dtype for f in fields]


def test_snapshots_exclude_suppliers_delivery_addresses_and_supplier_contacts(dossier: Dossier) -> None:
    """SPEC section 1 + K4: customers and prospects only; contacts of suppliers and F_LIVRAISON never appear.

    Both fetch paths give the same typed frames.
    """
    frames = {p: Sage50Hook(fetch_path=p).read_snapshot("accounts")["accounts"] for p in FETCH_PATHS}
    pd.testing.assert_frame_equal(frames["pyodbc"], frames["arrow"])
    accounts = frames["arrow"].set_index("code")
    assert sorted(accounts.index) == ["C001", "C002", "P001"]
    assert accounts.loc["C001", "name"] == "Société Générale d'Œufs"
    assert accounts.loc["P001", "is_prospect"] == 1
    assert accounts.loc["C002", "asleep"] == 1
    assert pd.isna(accounts.loc["P001", "city"])
    assert accounts.loc["C001", "modified_at"] == pd.Timestamp("2024-03-01 10:30")
    _assert_mapping_dtypes(frames["arrow"], "accounts", "accounts")

    contacts = {p: Sage50Hook(fetch_path=p).read_snapshot("contacts")["contacts"] for p in FETCH_PATHS}
    pd.testing.assert_frame_equal(contacts["pyodbc"], contacts["arrow"])
    people = contacts["arrow"]
    assert sorted(zip(people["account_code"], people["number"], strict=True)) == [
        ("C001", 1),
        ("C001", 2),
        ("P001", 1),
    ]
    assert "Entrepôt Lyon" not in set(people["last_name"]) and "Contact-fournisseur" not in set(
        people["last_name"]
    )
    assert pd.isna(people.set_index("last_name").loc["Martin", "civility"])
    _assert_mapping_dtypes(people, "contacts", "contacts")


def test_products_derived_fields_on_a_small_dossier(dossier: Dossier) -> None:
    """D2 stock over depots / "-" for non-stock, D6 sales VAT rate and TTC flag, D3 picture hash."""
    frames = {
        p: read_entity(Sage50Hook(fetch_path=p), "products", dossier.media)["products"] for p in FETCH_PATHS
    }
    pd.testing.assert_frame_equal(frames["pyodbc"], frames["arrow"])
    products = frames["arrow"].set_index("ref")
    assert products.loc["ART1", "stock_total"] == 14.5
    assert products.loc["ART1", "stock_display"] == "14.5"
    assert pd.isna(products.loc["SRV1", "stock_total"]) and products.loc["SRV1", "stock_display"] == "-"
    assert products.loc["ART2", "stock_total"] == 0 and products.loc["ART2", "stock_display"] == "0"
    assert products.loc["ART1", "vat_rate"] == 5.5  # the sales row, not the purchase row at 20 %
    assert products.loc["SRV1", "vat_rate"] == 20.0
    assert pd.isna(products.loc["ART2", "vat_rate"])  # only an export (ACP_Champ=2) row
    assert products.loc["ART1", "price_includes_tax"] == 1 and products.loc["SRV1", "price_includes_tax"] == 0
    assert products.loc["ART1", "sales_price"] == 12.66
    assert products.loc["ART1", "family_name"] == "Épicerie fine" and pd.isna(
        products.loc["ART2", "family_name"]
    )
    assert products.loc["ART1", "picture_sha256"] == hashlib.sha256(b"\x89PNG\r\n\x1a\n tiny").hexdigest()
    assert pd.isna(products.loc["SRV1", "picture_sha256"])  # file missing
    assert products.loc["ART2", "asleep"] == 1


def test_invoices_keep_posted_unposted_credit_notes_and_comment_lines(dossier: Dossier) -> None:
    """I1/I5: sales invoices (DO_Type 6 and 7) and credit notes; quotes, orders, delivery notes, purchases out."""
    snaps = {p: Sage50Hook(fetch_path=p).read_snapshot("invoices") for p in FETCH_PATHS}
    for part in ("headers", "lines"):
        pd.testing.assert_frame_equal(snaps["pyodbc"][part], snaps["arrow"][part])
    headers = snaps["arrow"]["headers"].set_index("piece")
    assert sorted(headers.index) == ["AV001", "FA001", "FA002"]
    assert headers.loc["FA001", "doc_type"] == 6 and headers.loc["FA002", "doc_type"] == 7
    assert headers.loc["AV001", "provenance"] == 2 and headers.loc["AV001", "total_ht"] == -21.0
    assert headers.loc["FA001", "date"] == pd.Timestamp("2024-03-01")
    assert headers.loc["FA001", "customer_ref"] == "Cde 12" and pd.isna(headers.loc["FA002", "customer_ref"])
    _assert_mapping_dtypes(snaps["arrow"]["headers"], "invoices", "headers")
    lines = snaps["arrow"]["lines"].set_index("line_id")
    assert sorted(lines.index) == [1, 2, 3, 4]
    assert pd.isna(lines.loc[2, "article_ref"]) and pd.isna(lines.loc[2, "quantity"])  # comment line
    assert lines.loc[3, "quantity"] == 1.5 and lines.loc[4, "quantity"] == -2.0
    assert lines.loc[1, "designation"] == "Ligne n°1"
    _assert_mapping_dtypes(snaps["arrow"]["lines"], "invoices", "lines")


def test_tricky_text_round_trips_verbatim_through_write_back_and_read(dossier: Dossier) -> None:
    """SPEC section 3: accents, "œ", "€", quotes and SQL look-alikes are stored verbatim (bound parameters).

    On PostgreSQL the stored bytes are single-byte cp1252 (WIN1252 database), read back both through ODBC and
    through psycopg2.
    """
    hook = Sage50Hook()
    inserts = [{"code": f"T{i:02d}", "name": text, "city": text[:35]} for i, text in enumerate(TRICKY)]
    result = hook.upsert(
        "accounts",
        inserts=inserts,
        updates=[{"code": "C001", "comment": "Rendez-vous à 9 h — “urgent” €", "fax": None}],
    )
    assert (result.inserted, result.updated, result.missing) == (len(TRICKY), 1, ())
    contact = {"account_code": "C001", "number": 3, "last_name": "O'Brien-Lefèvre", "first_name": "Zoë",
               "job_title": "Directrice d'Œuvre", "email": "zoe@example.fr"}  # fmt: skip
    assert hook.upsert("contacts", inserts=[contact]).inserted == 1
    updated = hook.upsert(
        "contacts", updates=[{"account_code": "C001", "number": 1, "last_name": "Dupont-Œillet"}]
    )
    assert (updated.inserted, updated.updated, updated.missing) == (0, 1, ())
    with dossier.engine.connect() as conn:
        stored_name = conn.execute(
            sa.text("SELECT CT_Nom FROM F_CONTACTT WHERE CT_Num = 'C001' AND CT_No = 1")
        ).scalar_one()
    assert stored_name == "Dupont-Œillet"

    for path in FETCH_PATHS:
        accounts = Sage50Hook(fetch_path=path).read_snapshot("accounts")["accounts"].set_index("code")
        for i, text in enumerate(TRICKY):
            assert accounts.loc[f"T{i:02d}", "name"] == text
            assert accounts.loc[f"T{i:02d}", "account_type"] == 0
        assert accounts.loc["C001", "comment"] == "Rendez-vous à 9 h — “urgent” €"
        people = Sage50Hook(fetch_path=path).read_snapshot("contacts")["contacts"]
        people = people[people["account_code"] == "C001"].set_index("number")
        assert (
            people.loc[3, "last_name"] == "O'Brien-Lefèvre"
            and people.loc[3, "job_title"] == "Directrice d'Œuvre"
        )
        assert people.loc[1, "last_name"] == "Dupont-Œillet"

    assert _count(dossier.engine, "F_COMPTET") == 4 + len(TRICKY)  # the table is still there
    with dossier.engine.connect() as conn:
        table = conn.execute(sa.text("SELECT CT_Num, CT_Intitule FROM F_COMPTET")).all()
        stored: dict[str, str] = {code: name for code, name in table}
        assert [stored[f"T{i:02d}"] for i in range(len(TRICKY))] == TRICKY
        if dossier.engine_name == "postgresql":
            raw = conn.execute(
                sa.text(
                    "SELECT CT_Num, convert_to(CT_Intitule, 'WIN1252'), octet_length(CT_Intitule) FROM F_COMPTET"
                )
            ).all()
            by_code = {code: (bytes(data), length) for code, data, length in raw}
            for i, text in enumerate(TRICKY):
                assert by_code[f"T{i:02d}"] == (text.encode("cp1252"), len(text))  # one byte per character

    if dossier.engine_name == "postgresql":  # the Unicode flavour, and a UTF-8 session on the ANSI one, agree
        for driver, encoding in (("PostgreSQL Unicode", None), ("PostgreSQL ANSI", "utf-8")):
            for path in FETCH_PATHS:
                other = Sage50Hook(driver=driver, encoding=encoding, fetch_path=path)  # type: ignore[arg-type]
                assert other.text_encoding.codec == "utf-8"
                names = other.read_source("accounts", "accounts", columns=["code", "name"]).set_index("code")
                assert [names.loc[f"T{i:02d}", "name"] for i in range(len(TRICKY))] == TRICKY


def _table_state(engine: sa.Engine) -> dict[str, list[tuple[object, ...]]]:
    """Every row of the two write-back tables, sorted: compared before and after a refused write."""
    with engine.connect() as conn:
        return {
            table: sorted(tuple(r) for r in conn.execute(sa.text(f"SELECT * FROM {table}")).all())
            for table in ("F_COMPTET", "F_CONTACTT")
        }


def test_refused_batch_writes_nothing_and_names_record_column_and_limit(dossier: Dossier) -> None:
    """Issue 2 / SPEC write-back: emoji and over-long values refuse the WHOLE batch, named, before any write."""
    hook = Sage50Hook()
    before = _table_state(dossier.engine)
    with pytest.raises(RecordRejected) as info:
        hook.upsert(
            "accounts",
            inserts=[
                {"code": "V001", "name": "Valide SARL"},
                {"code": "E001", "name": "Café 😀 Paris"},
                {"code": "L001", "name": "X" * 70},
                {"code": "V002", "name": "Valide aussi"},
            ],
            updates=[{"code": "C001", "city": "Marseille"}],
        )
    message = str(info.value)
    assert "CT_Num=L001" in message and "CT_Intitule is 70 characters, the Sage column holds 69" in message
    assert "CT_Num=E001" in message and "cp1252" in message
    assert "V001" not in message and "C001" not in message  # valid rows are not blamed
    assert _table_state(dossier.engine) == before  # nothing written: counts and the valid rows' values
    assert _count(dossier.engine, "F_COMPTET") == 4


def test_database_error_mid_batch_rolls_back_the_rows_already_sent(dossier: Dossier) -> None:
    """One transaction: a duplicate key after a valid insert leaves neither row, nor the batch's update."""
    hook = Sage50Hook()
    before = _table_state(dossier.engine)
    with pytest.raises(FatalSyncError, match="rolled back, nothing was written") as info:
        hook.upsert(
            "accounts",
            # Different columns, so two statements: N001's INSERT has run (successfully) when C001's fails.
            inserts=[
                {"code": "N001", "name": "Nouvelle SARL", "city": "Nice"},
                {"code": "C001", "name": "Doublon"},
            ],
            updates=[{"code": "C002", "city": "Bastia"}],
        )
    assert not isinstance(info.value, RecordRejected)
    assert _table_state(dossier.engine) == before
    with dossier.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT COUNT(*) FROM F_COMPTET WHERE CT_Num = 'N001'")).scalar_one() == 0


def test_contacts_only_under_customers_and_integers_within_their_column(dossier: Dossier) -> None:
    """Issue 2 review: contacts of a supplier (F001) or of an unknown account are refused, as are integers beyond
    their SMALLINT/INTEGER column, before anything is written; a prospect's contact is accepted."""
    hook = Sage50Hook()
    before = _table_state(dossier.engine)
    valid = {"account_code": "C001", "number": 7, "last_name": "Valide"}
    with pytest.raises(RecordRejected) as info:
        hook.upsert(
            "contacts",
            inserts=[
                valid,
                {"account_code": "F001", "number": 2, "last_name": "Chez le fournisseur"},
                {"account_code": "ZZZ", "number": 1, "last_name": "Nulle part"},
            ],
            updates=[{"account_code": "F001", "number": 1, "last_name": "Renommé"}],
        )
    assert info.value.problems == [
        "F_CONTACTT CT_Num=F001, CT_No=2: CT_Num: account F001 has CT_Type = 1 (not a customer or prospect); "
        "contacts can only be written under a CT_Type = 0 account",
        "F_CONTACTT CT_Num=ZZZ, CT_No=1: CT_Num: account ZZZ does not exist in F_COMPTET; "
        "contacts can only be written under a CT_Type = 0 account",
        "F_CONTACTT CT_Num=F001, CT_No=1: CT_Num: account F001 has CT_Type = 1 (not a customer or prospect); "
        "contacts can only be written under a CT_Type = 0 account",
    ]
    with pytest.raises(
        RecordRejected, match=r"CT_Civilite is 40000, outside the column's range -32768\.\.32767"
    ):
        hook.upsert("contacts", inserts=[valid, {**valid, "number": 8, "civility": 40000}])
    assert _table_state(dossier.engine) == before  # nothing written by either refused batch

    result = hook.upsert(
        "contacts", inserts=[valid, {"account_code": "P001", "number": 2, "last_name": "Prospect"}]
    )
    assert result.inserted == 2 and _count(dossier.engine, "F_CONTACTT") == len(before["F_CONTACTT"]) + 2


@pytest.mark.parametrize("long_row", ["C1", "C3"])
def test_arrow_path_falls_back_to_pyodbc_on_values_longer_than_the_column(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, long_row: str
) -> None:
    """SQLite does not enforce varchar lengths; arrow-odbc's buffers do. The read still returns every value.

    The long value sits in the first batch (fallback before anything was yielded) or in a later one (the whole
    source is read again with pyodbc).
    """
    path = tmp_path / "dossier.db"
    engine = sa.create_engine(f"sqlite:///{path}")
    schema.metadata.create_all(engine)
    names = {"C1": "Court", "C2": "Moyen", "C3": "Court aussi"}
    names[long_row] = "é" * 200
    with engine.begin() as conn:
        for code, name in names.items():
            conn.execute(schema.F_COMPTET.insert().values(CT_Num=code, CT_Intitule=name))
    engine.dispose()
    conn_json = {"conn_type": "odbc", "schema": str(path), "extra": {"driver": "SQLite3", "chunk_size": 1}}
    monkeypatch.setenv("AIRFLOW__PROVIDERS_ODBC__ALLOW_DRIVER_IN_EXTRA", "True")
    monkeypatch.setenv("AIRFLOW_CONN_SAGE50_DEFAULT", json.dumps(conn_json))
    frame = Sage50Hook(fetch_path="arrow").read_source("accounts", "accounts", columns=["code", "name"])
    assert dict(zip(frame["code"], frame["name"], strict=True)) == names
