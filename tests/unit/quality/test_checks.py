"""The vectorised checks behind the quality suites: SIRET Luhn, FR VAT key, French postcodes, cp1252, invoice sums."""

from __future__ import annotations

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from sage_sync.quality import checks
from sage_sync.simulators.standin import identifiers


def test_siret_luhn_accepts_valid_and_rejects_invalid_siret() -> None:
    values = pd.Series(
        ["73282932000074", "732 829 320 00074", "73282932000075", "7328293200007", "ABCDEFGHIJKLMN"]
    )
    assert checks.siret_valid(values).tolist() == [True, True, False, False, False]


def test_siret_blank_is_not_checked() -> None:
    """A missing SIRET is not an invalid one: <NA> rows are skipped by GX."""
    result = checks.siret_valid(pd.Series([None, "", "  "], dtype="string"))
    assert result.isna().all()


def test_siret_la_poste_uses_digit_sum_rule() -> None:
    # La Poste (SIREN 356000000): valid when the digit sum is a multiple of 5, whatever Luhn says.
    assert checks.siret_valid(pd.Series(["35600000000001", "35600000000002"])).tolist() == [True, False]


@settings(max_examples=120, deadline=None)
@given(st.lists(st.text(alphabet="0123456789", min_size=14, max_size=14), min_size=1, max_size=30))
def test_siret_vectorised_matches_plain_python(numbers: list[str]) -> None:
    expected = [identifiers.siret_valid(n) for n in numbers]
    assert checks.siret_valid(pd.Series(numbers)).tolist() == expected


def test_fr_vat_key_accepts_valid_number_and_names_expected_key() -> None:
    values = pd.Series(["FR44732829320", "fr 44 732829320", "FR45732829320", "FR4473282932", "FRAB732829320"])
    assert checks.fr_vat_valid(values).tolist() == [True, True, False, False, True]
    assert checks.explain_fr_vat("FR45732829320") == "has key 45 but SIREN 732829320 gives key 44"
    assert "9-digit SIREN" in checks.explain_fr_vat("FR4473282932")


def test_fr_vat_foreign_and_blank_numbers_are_not_checked() -> None:
    assert checks.fr_vat_valid(pd.Series(["DE123456789", None, ""])).isna().all()


def test_french_postcodes_include_corsica_overseas_and_monaco() -> None:
    codes = pd.Series(["75001", "20090", "97400", "98000", "7500", "00100", "96000", "75 001", "1000"])
    countries = pd.Series(["France", "france", None, "", "France", "France", "France", "France", "Belgique"])
    result = checks.fr_postcode_valid(codes, countries, ["France"]).tolist()
    assert result[:4] == [True, True, True, True]
    assert result[4:8] == [False, False, False, False]
    assert result[8] is pd.NA  # a Belgian postcode is not judged by French rules


def test_cp1252_accepts_french_text_and_names_the_offending_character() -> None:
    values = pd.Series(["Cœur d'Œuvre – 10 € café", "Café 😀", "Привет", None])
    assert checks.cp1252_valid(values).tolist()[:3] == [True, False, False]
    assert checks.explain_cp1252("Café 😀") == "contains '😀' (U+1F600), which Sage cannot store (cp1252)"
    assert "U+041F" in checks.explain_cp1252("Привет")


def test_invoice_line_sums_align_on_headers() -> None:
    headers = pd.DataFrame({"piece": ["FA1", "FA2", "FA3"]}, index=[10, 11, 12])
    lines = pd.DataFrame(
        {
            "line_id": [1, 2, 3],
            "piece": ["FA1", "FA1", "FA2"],
            "amount_ht": [10.0, 5.0, 100.0],
            "amount_ttc": [12.0, 5.28, 130.0],
            "vat_rate": [20.0, 5.5, 20.0],
        }
    )
    sums = checks.invoice_line_sums(headers, lines)
    assert list(sums.index) == [10, 11, 12]
    assert sums["lines_ht"].round(2).tolist() == [15.0, 100.0, 0.0]
    assert sums["lines_ttc"].round(2).tolist() == [17.28, 130.0, 0.0]
    assert sums["line_vat_gap"].round(3).tolist() == [0.005, 10.0, 0.0]
    assert checks.worst_line(lines, "FA2") == "line 3: TTC 130.00 ≠ HT 100.00 + 20 % VAT"
