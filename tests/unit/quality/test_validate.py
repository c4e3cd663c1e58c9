"""validate_entity: G3 quarantine with reasons while other rows pass, G4 table failures stop the load, Data Docs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from sage_sync.quality import REASONS_COLUMN, QualityReport, render_markdown, validate_entity
from sage_sync.quality.data_docs import DataDocsSite


def accounts(n: int = 3, **overrides: list[Any]) -> pd.DataFrame:
    """Good accounts (canonical names), with column overrides for the rows under test."""
    data: dict[str, list[Any]] = {
        "code": [f"C{i:05d}" for i in range(n)],
        "name": [f"Société Dupré n°{i}" for i in range(n)],
        "is_prospect": [i % 2 for i in range(n)],
        "postcode": ["75001", "20090", "97400", "98000", "69002"][:n] + ["13001"] * max(0, n - 5),
        "country": ["France"] * n,
        "email": [f"contact{i}@exemple.fr" for i in range(n)],
        "siret": ["73282932000074"] * n,
        "vat_number": ["FR44732829320"] * n,
    }
    for column, values in overrides.items():
        data[column] = values + data[column][len(values) :]
    frame = pd.DataFrame(data, index=[100 + i for i in range(n)])
    return frame.astype({"code": "string", "name": "string", "is_prospect": "Int64"})


def issues(report: QualityReport) -> dict[str, set[tuple[str, str]]]:
    return {
        "blocking": {(i.key, i.expectation) for i in report.quarantined},
        "warning": {(i.key, i.expectation) for i in report.warnings},
    }


def test_g3_good_rows_all_pass() -> None:
    report = validate_entity("accounts", accounts(5))
    assert report.passed_count == 5 and report.quarantined_count == 0 and not report.warnings
    assert not report.stop_load and not report.table_failures


def test_g3_blocking_row_is_quarantined_with_its_reason_while_the_others_pass() -> None:
    frame = accounts(4, code=["C00000", "c 01"], name=["Dupont SA", "Durand" * 20])
    report = validate_entity("accounts", frame)
    assert report.passed.index.tolist() == [100, 102, 103]  # original index kept
    assert report.quarantined_rows.index.tolist() == [101]
    assert issues(report)["blocking"] == {("c 01", "code_well_formed"), ("c 01", "name_length")}
    reasons = {i.expectation: i.reason for i in report.quarantined}
    assert reasons["code_well_formed"] == "account code 'c 01' (CT_Num) must be upper case without spaces"
    assert (
        reasons["name_length"] == "company name (CT_Intitule) is 120 characters long; Sage allows at most 69"
    )
    assert "code_well_formed: account code 'c 01'" in report.quarantined_rows[REASONS_COLUMN].iloc[0]
    assert not report.stop_load


def test_g3_warnings_are_reported_but_do_not_block() -> None:
    frame = accounts(
        4,
        postcode=["7500"],
        siret=["73282932000074", "73282932000075"],
        vat_number=["FR44732829320", "FR44732829320", "FR45732829320"],
        email=["a@b.fr", "a@b.fr", "a@b.fr", "not-an-email"],
    )
    report = validate_entity("accounts", frame)
    assert report.passed_count == 4 and report.quarantined_count == 0
    assert issues(report)["warning"] == {
        ("C00000", "postcode_french"),
        ("C00001", "siret_luhn"),
        ("C00002", "vat_key"),
        ("C00003", "email_well_formed"),
    }
    reasons = {i.expectation: i.reason for i in report.warnings}
    assert reasons["postcode_french"] == "postcode '7500' (CT_CodePostal) is not a French postcode (5 digits)"
    assert reasons["siret_luhn"] == "SIRET '73282932000075' (CT_Siret) fails the Luhn check"
    assert (
        reasons["vat_key"]
        == "VAT number 'FR45732829320' (CT_Identifiant) has key 45 but SIREN 732829320 gives key 44"
    )


def test_g3_foreign_postcode_is_not_judged_by_french_rules() -> None:
    report = validate_entity("accounts", accounts(2, postcode=["1000", "7500"], country=["Belgique", ""]))
    assert issues(report)["warning"] == {("C00001", "postcode_french")}


@pytest.mark.parametrize(
    ("column", "bad", "expectation"),
    [
        ("code", None, "code_present"),
        ("code", "C" * 18, "code_length"),
        ("code", "Dupont", "code_well_formed"),
        ("name", None, "name_present"),
        ("name", "   ", "name_not_blank"),
        ("is_prospect", 3, "status_known"),
    ],
)
def test_g3_each_accounts_blocking_expectation_catches_its_bad_row(
    column: str, bad: Any, expectation: str
) -> None:
    report = validate_entity("accounts", accounts(3, **{column: [bad]}))
    assert {i.expectation for i in report.quarantined} == {expectation}
    assert report.quarantined_rows.index.tolist() == [100]
    assert report.passed.index.tolist() == [101, 102]


def test_g4_empty_snapshot_is_a_guard_finding_that_says_why_and_does_not_stop_the_load() -> None:
    """G4 withholds deletions only: the finding is reported, creations and updates may still go."""
    report = validate_entity("accounts", accounts(0), previous_row_count=500)
    assert not report.stop_load and not report.table_failures
    by_id = {t.expectation: t.reason for t in report.guard_findings}
    assert "has no account" in by_id["snapshot_not_empty"]
    assert "0 accounts, down from 500" in by_id["snapshot_not_shrunk"]


def test_g4_shrink_beyond_the_ratio_is_a_guard_finding() -> None:
    report = validate_entity(
        "accounts", accounts(40), previous_row_count=100, shrink_ratio=0.5, shrink_minimum=10
    )
    assert not report.stop_load
    assert [t.expectation for t in report.guard_findings] == ["snapshot_not_shrunk"]
    assert report.guard_findings[0].reason == (
        "the Sage snapshot has 40 accounts, down from 100: below the 50 the guard allows (50% shrink), "
        "so no deletion is propagated (G4)"
    )


def test_g4_shrink_within_the_ratio_or_first_run_finds_nothing() -> None:
    within = validate_entity("accounts", accounts(60), previous_row_count=100, shrink_ratio=0.5)
    assert not within.guard_findings
    # The minimum lets small dossiers lose a few rows whatever the ratio.
    assert not validate_entity(
        "accounts", accounts(5), previous_row_count=12, shrink_minimum=10
    ).guard_findings
    first = validate_entity("accounts", accounts(3))
    assert not first.stop_load and not first.guard_findings
    assert any(s.startswith("snapshot_not_shrunk: no previous row count") for s in first.skipped)


def test_duplicate_account_codes_stop_the_load_naming_the_codes() -> None:
    report = validate_entity("accounts", accounts(4, code=["C1", "C1", "C2", "C2"]))
    assert report.stop_load
    assert report.table_failures[0].expectation == "code_unique"
    assert (
        report.table_failures[0].reason == "4 rows share 2 duplicated account codes (CT_Num): 'C1', 'C2' (C1)"
    )


def contacts(**overrides: list[Any]) -> pd.DataFrame:
    data: dict[str, list[Any]] = {
        "account_code": ["C1", "C1", "C2"],
        "number": [1, 2, 1],
        "last_name": ["Lefèvre", "Nguyễn", "Ødegård"],
        "first_name": ["Zoé", "Anh", "Åse"],
        "email": ["z@x.fr", None, "a@y.no"],
    }
    data.update(overrides)
    return pd.DataFrame(data).astype({"account_code": "string", "number": "Int64", "last_name": "string"})


def test_duplicate_contact_keys_stop_the_load() -> None:
    report = validate_entity("contacts", contacts(number=[1, 1, 1]))
    assert report.stop_load and report.table_failures[0].expectation == "contact_key_unique"
    assert report.table_failures[0].reason.startswith("2 contacts share the same account code and number")


def test_contacts_missing_last_name_is_quarantined() -> None:
    report = validate_entity("contacts", contacts(last_name=["Lefèvre", None, "Ødegård"]))
    assert issues(report)["blocking"] == {("C1/2", "last_name_present")}
    assert report.passed_count == 2


def test_ssm_to_sage_cp1252_and_lengths_are_blocking_and_name_field_and_character() -> None:
    """Data written to Sage: characters outside cp1252 and values longer than the column are quarantined."""
    frame = contacts(
        last_name=["Lefèvre", "Durand 😀", "Ødegård"],
        first_name=["Zoé", "Anh", "A" * 36],
    )
    report = validate_entity("contacts_to_sage", frame)
    reasons = {(i.key, i.expectation): i.reason for i in report.quarantined}
    assert (
        reasons[("C1/2", "sage_storable")]
        == "CT_Nom contains '😀' (U+1F600), which Sage cannot store (cp1252)"
    )
    assert reasons[("C2/1", "sage_storable")] == "CT_Prenom is 36 characters, the Sage column holds 35"
    assert report.passed.index.tolist() == [0]


def test_ssm_to_sage_new_account_without_code_passes() -> None:
    frame = accounts(2, code=[None], name=["Nouvelle Société", "Zoë & Cie — 2 €"])
    report = validate_entity("accounts_to_sage", frame)
    assert report.passed_count == 2, report.quarantined
    bad = validate_entity("accounts_to_sage", accounts(1, name=["Café ☕"]))
    assert [i.reason for i in bad.quarantined] == [
        "CT_Intitule contains '☕' (U+2615), which Sage cannot store (cp1252)"
    ]


def test_products_negative_prices_are_quarantined() -> None:
    frame = pd.DataFrame(
        {
            "ref": ["ART1", "ART2", "ART3", "ART4"],
            "designation": ["Vis", "Écrou", "Clé", "Rondelle"],
            "sales_price": [1.5, -2.0, 3.0, 0.0],
            "purchase_price": [1.0, 1.0, -0.5, None],
        }
    ).astype({"ref": "string", "sales_price": "Float64", "purchase_price": "Float64"})
    report = validate_entity("products", frame)
    assert issues(report)["blocking"] == {
        ("ART2", "sales_price_not_negative"),
        ("ART3", "purchase_price_not_negative"),
    }
    assert {i.reason for i in report.quarantined} == {
        "sales price -2.00 (AR_PrixVen) is negative",
        "purchase price -0.50 (AR_PrixAch) is negative",
    }
    assert report.passed["ref"].tolist() == ["ART1", "ART4"]


def invoice_frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    headers = pd.DataFrame(
        {
            "piece": ["FA001", "FA002", "FA003", "AV001"],
            "customer_code": ["C1", "C1", "C9", "C2"],
            "total_ht": [115.0, 50.0, 10.0, -20.0],
            "total_ttc": [138.0, 60.0, 12.0, -24.0],
        }
    ).astype({"piece": "string", "customer_code": "string", "total_ht": "Float64", "total_ttc": "Float64"})
    lines = pd.DataFrame(
        {
            "line_id": [1, 2, 3, 4, 5],
            "piece": ["FA001", "FA001", "FA002", "FA003", "AV001"],
            "amount_ht": [100.0, 15.0, 50.0, 10.0, -20.0],
            "amount_ttc": [120.0, 18.0, 65.0, 12.0, -24.0],
            "vat_rate": [20.0, 20.0, 20.0, 20.0, 20.0],
        }
    )
    return headers, lines


def test_invoices_with_inconsistent_totals_or_unknown_customer_are_quarantined() -> None:
    headers, lines = invoice_frames()
    context = {"account_codes": ["C1", "C2"], "lines": lines}
    report = validate_entity("invoices", headers, context=context)
    assert issues(report)["blocking"] == {
        ("FA002", "ttc_matches_lines"),
        ("FA002", "lines_vat_consistent"),
        ("FA003", "customer_known"),
    }
    reasons = {(i.key, i.expectation): i.reason for i in report.quarantined}
    assert reasons[("FA002", "ttc_matches_lines")] == (
        "total including tax 60.00 (DO_TotalTTC) differs from the sum of its lines (65.00) by more than a cent"
    )
    assert reasons[("FA002", "lines_vat_consistent")].endswith("line 3: TTC 65.00 ≠ HT 50.00 + 20 % VAT")
    assert reasons[("FA003", "customer_known")] == "customer 'C9' (DO_Tiers) is not a known account"
    assert report.passed["piece"].tolist() == ["FA001", "AV001"]  # credit notes (negative) are consistent too


def test_invoices_header_ht_must_match_lines_within_a_cent() -> None:
    headers, lines = invoice_frames()
    headers.loc[0, "total_ht"] = 115.02
    headers.loc[0, "total_ttc"] = 138.01  # within a cent: accepted
    report = validate_entity(
        "invoices", headers, context={"account_codes": ["C1", "C2", "C9"], "lines": lines}
    )
    assert ("FA001", "ht_matches_lines") in issues(report)["blocking"]
    assert ("FA001", "ttc_matches_lines") not in issues(report)["blocking"]


def test_invoice_checks_needing_context_are_skipped_and_listed() -> None:
    headers, _ = invoice_frames()
    report = validate_entity("invoices", headers)
    assert report.passed_count == 4
    assert "customer_known: context account_codes not given" in report.skipped
    assert "ttc_matches_lines: context lines not given" in report.skipped


def test_data_docs_index_is_built_per_run(tmp_path: Path) -> None:
    site = DataDocsSite.local(tmp_path)
    first = validate_entity("accounts", accounts(3, siret=["1"]), data_docs=site, run_id="scheduled__1")
    assert first.data_docs_path is not None
    index = Path(first.data_docs_path)
    assert index.name == "index.html" and index.is_file() and index.is_relative_to(tmp_path)
    second = validate_entity("contacts", contacts(), data_docs=site, run_id="scheduled__2")
    assert second.data_docs_path == first.data_docs_path
    html = index.read_text(encoding="utf-8")
    assert "scheduled__1" in html and "scheduled__2" in html
    assert list((index.parent / "validations" / "accounts" / "scheduled__1").rglob("*.html"))


def test_markdown_report_is_a_short_table_with_reasons() -> None:
    report = validate_entity(
        "accounts", accounts(3, code=["c1"], postcode=["75001", "7500"]), previous_row_count=3
    )
    text = render_markdown(report, limit=5)
    assert "| rows | passed | quarantined | warnings | table failures |" in text
    assert "| 3 | 2 | 1 | 1 | 0 |" in text
    assert (
        "| c1 | `code_well_formed` | account code 'c1' (CT_Num) must be upper case without spaces |" in text
    )
    assert "postcode '7500' (CT_CodePostal) is not a French postcode (5 digits)" in text
    payload = report.to_dict()
    assert payload["counts"] == {"rows": 3, "passed": 2, "quarantined": 1, "warnings": 1, "table_failures": 0}
    assert payload["stop_load"] is False


def test_missing_columns_skip_their_expectations() -> None:
    report = validate_entity("accounts", accounts(2).drop(columns=["siret", "email"]))
    assert report.passed_count == 2
    assert "siret_luhn: column siret not in the frame" in report.skipped


def test_an_expectation_gx_cannot_evaluate_stops_the_load_instead_of_passing() -> None:
    """Prices read as text cannot be compared with 0: the rule fails loudly rather than letting rows through."""
    frame = pd.DataFrame({"ref": ["A1", "A2"], "designation": ["Vis", "Clé"], "sales_price": ["abc", "-1"]})
    report = validate_entity("products", frame)
    assert report.stop_load
    failure = report.table_failures[0]
    assert failure.expectation == "sales_price_not_negative"
    assert failure.reason.startswith("sales_price: could not be evaluated: Column values, min_value")


def test_invoice_lines_suite_gives_line_level_reasons() -> None:
    _, lines = invoice_frames()
    report = validate_entity("invoice_lines", lines, context={"pieces": ["FA001", "FA002", "AV001"]})
    assert issues(report)["blocking"] == {("3", "line_vat_consistent"), ("4", "header_known")}
    reasons = {i.expectation: i.reason for i in report.quarantined}
    assert (
        reasons["line_vat_consistent"]
        == "total including tax 65.00 (DL_MontantTTC) is not HT 50.00 + 20 % VAT within a cent"
    )
    assert reasons["header_known"] == "invoice 'FA003' (DO_Piece) of the line has no header"


def test_a_check_that_cannot_run_on_the_data_stops_the_load() -> None:
    headers, lines = invoice_frames()
    headers["total_ttc"] = ["138.00", "sixty", "12.00", "-24.00"]  # text where amounts belong
    report = validate_entity(
        "invoices", headers, context={"account_codes": ["C1", "C2", "C9"], "lines": lines}
    )
    assert report.stop_load
    assert [t.expectation for t in report.table_failures if "could not be evaluated" in t.reason] == [
        "ttc_matches_lines"
    ]


def test_g4_an_entity_that_was_already_empty_may_stay_empty() -> None:
    """G4 protects data that existed: an empty snapshot after an empty one (or on a first run) is no failure."""
    for previous in (None, 0):
        report = validate_entity("accounts", accounts(0), previous_row_count=previous)
        assert not report.stop_load, report.table_failures
        assert not report.table_failures
