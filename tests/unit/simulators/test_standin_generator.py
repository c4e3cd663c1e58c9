"""The stand-in demo data, checked in memory against the contract's "Data the stand-in generator must produce"."""

from __future__ import annotations

import hashlib
import re
import struct
import zlib
from collections import Counter
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import numpy as np
import pytest

from sage_sync.simulators.standin.generator import (
    SCALES,
    Dossier,
    check_dossier,
    generate_dossier,
    resolve_scale,
)
from sage_sync.simulators.standin.identifiers import fr_vat_valid, siret_valid
from sage_sync.simulators.standin.pictures import render_png
from sage_sync.simulators.standin.schema import TABLES

CENT = Decimal("0.01")


@pytest.fixture(scope="module")
def dossier() -> Dossier:
    return generate_dossier("small", 7)


def rows(d: Dossier, table: str) -> list[dict[str, Any]]:
    data = d.tables[table]
    return [dict(zip(data.columns, row, strict=True)) for row in data.rows()]


def digest(d: Dossier) -> str:
    h = hashlib.sha256()
    for name, data in d.tables.items():
        h.update(name.encode())
        for row in data.rows():
            h.update(repr(row).encode())
    for path, seed in d.pictures:
        h.update(path.encode() + render_png(seed))
    return h.hexdigest()


def money(value: float) -> Decimal:
    return Decimal(repr(value))


def test_scales() -> None:
    assert resolve_scale("small") == SCALES["small"] == 300
    assert resolve_scale("medium") == 10_000
    assert resolve_scale("large") >= 100_000
    assert resolve_scale("1234") == 1234
    assert resolve_scale(5) == 5
    with pytest.raises(ValueError, match="tiny"):
        resolve_scale("tiny")
    with pytest.raises(ValueError, match="between 1 and"):
        resolve_scale(0)


def test_same_seed_gives_identical_rows_and_pictures(dossier: Dossier) -> None:
    assert digest(generate_dossier("small", 7)) == digest(dossier)
    assert digest(generate_dossier("small", 8)) != digest(dossier)


def test_columns_follow_the_schema(dossier: Dossier) -> None:
    assert list(dossier.tables) == list(TABLES)
    for name, table in TABLES.items():
        assert list(dossier.tables[name].columns) == [c.name for c in table.columns]


def test_text_is_cp1252_and_within_column_lengths(dossier: Dossier) -> None:
    assert check_dossier(dossier) == []
    # Independent check over every value, not only the distinct ones.
    for name, table in TABLES.items():
        for column in table.columns:
            length = getattr(column.type, "length", None)
            values = dossier.tables[name].columns[column.name].tolist()
            if not column.nullable:
                assert all(v is not None for v in values), f"{name}.{column.name} has NULLs"
            if length is None:
                continue
            for value in values:
                if value is not None:
                    assert 0 < len(value) <= length, (name, column.name, value)
                    value.encode("cp1252")


def test_accounts_edge_cases(dossier: Dossier) -> None:
    accounts = rows(dossier, "F_COMPTET")
    n = len(accounts)
    assert n == 300
    codes = [a["CT_Num"] for a in accounts]
    assert len(set(codes)) == n
    assert all(re.fullmatch(r"[A-Z0-9]{1,17}", c) for c in codes)  # upper case, no spaces

    prospects = [a for a in accounts if a["CT_Prospect"] == 1]
    suppliers = [a for a in accounts if a["CT_Type"] == 1]
    customers = [a for a in accounts if a["CT_Type"] == 0 and a["CT_Prospect"] == 0]
    assert 0.04 <= len(prospects) / n <= 0.06
    assert all(p["CT_Type"] == 0 for p in prospects)
    assert suppliers
    asleep_customers = [c for c in customers if c["CT_Sommeil"] == 1]
    assert 0.03 <= len(asleep_customers) / len(customers) <= 0.05
    assert any(c["CT_EMail"] is None for c in customers)
    assert sum(c["CT_EMail"] is not None for c in customers) > 0.7 * len(customers)

    names = " ".join(a["CT_Intitule"] for a in accounts)
    for char in ("œ", "'", "é", "è", "ê", "É"):
        assert char in names

    postcodes = [(a["CT_CodePostal"], a["CT_Ville"], a["CT_CodeRegion"], a["CT_Pays"]) for a in accounts]
    assert any("cedex" in city.lower() for _, city, _, _ in postcodes)
    corsica = [p for p in postcodes if p[0].startswith("20")]
    assert {"2A", "2B"} <= {region[-3:-1] for _, _, region, _ in corsica if region}
    assert any(p[0].startswith("97") for p in postcodes)
    assert any(p[0].startswith("980") and p[3] == "Monaco" for p in postcodes)
    assert any(p[0].startswith("0") for p in postcodes)  # leading zero kept

    phones = [a["CT_Telephone"] for a in accounts if a["CT_Telephone"]]
    formats = Counter(
        "plus33" if p.startswith("+33") else "intl" if p.startswith("+") else
        "dots" if "." in p else "spaces" if " " in p else "dashes" if "-" in p else "compact"
        for p in phones
    )  # fmt: skip
    assert set(formats) >= {"plus33", "intl", "dots", "spaces", "dashes", "compact"}

    sirets = [a["CT_Siret"] for a in accounts if a["CT_Siret"]]
    valid = [s for s in sirets if siret_valid(s)]
    assert 0.8 * len(sirets) <= len(valid) < len(sirets)
    assert any(s.startswith("356000000") for s in valid)  # La Poste
    assert all(len(s) <= 14 for s in sirets)
    vats = [
        a["CT_Identifiant"] for a in accounts if a["CT_Identifiant"] and a["CT_Identifiant"].startswith("FR")
    ]
    assert any(fr_vat_valid(v) for v in vats) and any(not fr_vat_valid(v) for v in vats)


def test_contacts_and_delivery_addresses(dossier: Dossier) -> None:
    accounts = {a["CT_Num"]: a for a in rows(dossier, "F_COMPTET")}
    contacts = rows(dossier, "F_CONTACTT")
    per_account: dict[str, list[int]] = {}
    for c in contacts:
        assert c["CT_Num"] in accounts
        per_account.setdefault(c["CT_Num"], []).append(c["CT_No"])
    assert all(numbers == list(range(1, len(numbers) + 1)) for numbers in per_account.values())
    assert sum(len(v) >= 3 for v in per_account.values()) > 10
    assert any(num not in per_account for num in accounts)  # accounts without contacts exist
    first = {c["CT_Num"]: c for c in contacts if c["CT_No"] == 1}
    for num, contact in first.items():
        assert accounts[num]["CT_Contact"] is not None
        assert contact["CT_Nom"] in accounts[num]["CT_Contact"]

    deliveries = rows(dossier, "F_LIVRAISON")
    assert deliveries
    assert len({d["LI_No"] for d in deliveries}) == len(deliveries)
    owners = Counter(d["CT_Num"] for d in deliveries)
    assert all(accounts[o]["CT_Type"] == 0 for o in owners)
    assert sum(d["LI_Principal"] for d in deliveries) == len(owners)


def test_catalogue_edge_cases(dossier: Dossier) -> None:
    articles = rows(dossier, "F_ARTICLE")
    m = len(articles)
    taxes = {t["TA_Code"]: t["TA_Taux"] for t in rows(dossier, "F_TAXE")}
    assert sorted(taxes.values()) == [2.1, 5.5, 10.0, 20.0]
    assert any(a["AR_SuiviStock"] == 0 and a["FA_CodeFamille"] == "SERVICES" for a in articles)
    assert any(
        a["AR_SuiviStock"] == 0 and a["FA_CodeFamille"] != "SERVICES" for a in articles
    )  # non-stock goods
    assert any(a["AR_PrixTTC"] == 1 for a in articles)
    asleep = sum(a["AR_Sommeil"] for a in articles)
    assert 0.03 <= asleep / m <= 0.05
    families = {f["FA_CodeFamille"] for f in rows(dossier, "F_FAMILLE")}
    assert {a["FA_CodeFamille"] for a in articles} <= families
    assert all(a["AR_Ref"] == a["AR_Ref"].upper() for a in articles)

    compta = rows(dossier, "F_ARTCOMPTA")
    sales = {(c["AR_Ref"]) for c in compta if c["ACP_Type"] == 0 and c["ACP_Champ"] == 1}
    assert sales == {a["AR_Ref"] for a in articles}  # every article has its sales VAT row
    assert {c["ACP_ComptaCPT_Taxe1"] for c in compta} == set(taxes)

    stock = rows(dossier, "F_ARTSTOCK")
    managed = {a["AR_Ref"] for a in articles if a["AR_SuiviStock"] > 0}
    assert {s["AR_Ref"] for s in stock} == managed
    assert len({s["DE_No"] for s in stock}) >= 3

    photos = [a["AR_Photo"] for a in articles if a["AR_Photo"]]
    assert 0.1 * m < len(photos) < 0.6 * m
    assert sorted(photos) == sorted(path for path, _ in dossier.pictures)


def test_pictures_are_valid_png() -> None:
    data = render_png(42)
    assert data == render_png(42) and data != render_png(43)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (48, 48)
    idat_length = struct.unpack(">I", data[33:37])[0]
    assert data[37:41] == b"IDAT"
    assert len(zlib.decompress(data[41 : 41 + idat_length])) == 48 * (1 + 48 * 3)


def test_documents_kinds(dossier: Dossier) -> None:
    accounts = {a["CT_Num"]: a for a in rows(dossier, "F_COMPTET")}
    headers = rows(dossier, "F_DOCENTETE")
    types = Counter(h["DO_Type"] for h in headers)
    assert set(types) == {0, 1, 3, 6, 7}
    assert all(h["DO_Domaine"] == 0 for h in headers)
    invoices = [h for h in headers if h["DO_Type"] in (6, 7)]
    for h in invoices:
        account = accounts[h["DO_Tiers"]]
        assert account["CT_Type"] == 0 and account["CT_Prospect"] == 0  # invoices only for customers
    pieces = [h["DO_Piece"] for h in invoices]
    assert len(set(pieces)) == len(pieces)  # (DO_Domaine, DO_Piece) unique over types 6 and 7
    credit_notes = [h for h in invoices if h["DO_Provenance"] == 2]
    assert credit_notes and {h["DO_Type"] for h in credit_notes} == {6, 7}
    assert all(h["DO_TotalTTC"] < 0 for h in credit_notes)

    lines = rows(dossier, "F_DOCLIGNE")
    header_keys = {(h["DO_Domaine"], h["DO_Type"], h["DO_Piece"]): h for h in headers}
    rates_per_invoice: dict[str, set[float]] = {}
    for line in lines:
        header = header_keys[(line["DO_Domaine"], line["DO_Type"], line["DO_Piece"])]
        assert line["CT_Num"] == header["DO_Tiers"]
        if line["DO_Type"] in (6, 7) and line["AR_Ref"] is not None:
            rates_per_invoice.setdefault(line["DO_Piece"], set()).add(line["DL_Taxe1"])
    assert any(line["AR_Ref"] is None and line["DL_Design"] for line in lines)  # comment lines
    several = [r for r in rates_per_invoice.values() if len(r) >= 2]
    assert len(several) > 0.2 * len(rates_per_invoice)
    assert any(len(r) >= 3 for r in several)
    assert set().union(*rates_per_invoice.values()) == {2.1, 5.5, 10.0, 20.0}


def test_invoice_totals_are_consistent_to_the_cent(dossier: Dossier) -> None:
    sums: dict[tuple[int, str], list[Decimal]] = {}
    for line in rows(dossier, "F_DOCLIGNE"):
        qty, unit = money(line["DL_Qte"]), money(line["DL_PrixUnitaire"])
        discount, rate = money(line["DL_Remise01REM_Valeur"]), money(line["DL_Taxe1"])
        ht, ttc = money(line["DL_MontantHT"]), money(line["DL_MontantTTC"])
        sign = -1 if qty < 0 else 1
        expected_ht = sign * (abs(qty) * unit * (1 - discount / 100)).quantize(CENT, ROUND_HALF_UP)
        expected_vat = sign * (abs(ht) * rate / 100).quantize(CENT, ROUND_HALF_UP)
        assert ht == expected_ht, line
        assert ttc == ht + expected_vat, line
        total = sums.setdefault((line["DO_Type"], line["DO_Piece"]), [Decimal(0), Decimal(0)])
        total[0] += ht
        total[1] += ttc
    for header in rows(dossier, "F_DOCENTETE"):
        ht, ttc = sums[(header["DO_Type"], header["DO_Piece"])]
        assert money(header["DO_TotalHT"]) == ht
        assert money(header["DO_TotalTTC"]) == ttc
        assert header["DO_NetAPayer"] == header["DO_TotalTTC"]
        paid = money(header["DO_MontantRegle"])
        assert abs(paid) <= abs(ttc) and (paid == 0 or (paid > 0) == (ttc > 0))


def test_medium_scale_line_density_reaches_a_million_invoice_lines_at_large() -> None:
    """``large`` = 100,000 accounts must give ≥ 1,000,000 invoice lines: ≥ 10 invoice lines per account."""
    medium = generate_dossier("medium", 1)
    types = medium.tables["F_DOCLIGNE"].columns["DO_Type"]
    invoice_lines = int(np.isin(types, [6, 7]).sum())
    assert invoice_lines / medium.accounts >= 10.5
    assert len(medium.tables["F_COMPTET"]) == 10_000


def test_tiny_dossiers_still_have_invoices() -> None:
    for count in (1, 2, 3):
        d = generate_dossier(count, 5)
        assert len(d.tables["F_COMPTET"]) == count
        assert len(d.tables["F_DOCENTETE"]) > 0
