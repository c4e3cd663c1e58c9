"""Quality suites are data: every packaged YAML suite loads, resolves Sage lengths, and bad suites fail loudly."""

from __future__ import annotations

from typing import Any

import pytest

from sage_sync.errors import ConfigurationError
from sage_sync.quality import gx_runner
from sage_sync.quality.spec import load_suite, parse_suite, suite_names

EXPECTED_SUITES = {
    "accounts",
    "accounts_to_sage",
    "contacts",
    "contacts_to_sage",
    "invoice_lines",
    "invoices",
    "products",
}


def test_every_packaged_suite_loads_with_known_gx_expectations() -> None:
    assert set(suite_names()) >= EXPECTED_SUITES
    for name in suite_names():
        suite = load_suite(name)
        assert suite.expectations, name
        for spec in suite.expectations:
            assert spec.severity in ("blocking", "warning", "table", "guard")
            gx_runner.expectation_class(spec.expect)  # raises when GX has no such expectation


def test_key_lengths_come_from_the_mapping() -> None:
    """CT_Num <= 17, AR_Ref <= 19, DO_Piece <= 13: `$length` resolves to the Sage column length."""
    assert load_suite("accounts").expectation("code_length").kwargs["max_value"] == 17
    assert load_suite("products").expectation("ref_length").kwargs["max_value"] == 19
    assert load_suite("invoices").expectation("piece_length").kwargs["max_value"] == 13
    assert load_suite("accounts").expectation("name_length").sage == "CT_Intitule"


def test_to_sage_suites_check_every_text_field_against_its_sage_column() -> None:
    """SPEC section 3: one blocking rule covers every mapped text field's length and characters."""
    storable = load_suite("accounts_to_sage").expectation("sage_storable")
    assert storable.severity == "blocking" and storable.check == "sage_storable"
    columns = storable.params["sage_columns"]
    assert columns["address1"] == ["CT_Adresse", 35] and columns["sales_rep"] == ["SALES_REP", 69]
    # A Sage snapshot suite checks characters everywhere but leaves lengths it checks itself to its own rules.
    assert load_suite("accounts").expectation("sage_storable").params["sage_columns"]["name"] == [
        "CT_Intitule",
        None,
    ]


def _suite(**expectation: Any) -> dict[str, Any]:
    base = {
        "id": "x",
        "severity": "blocking",
        "expect": "expect_column_values_to_not_be_null",
        "column": "code",
    }
    base.update(expectation)
    return {
        "suite": "t",
        "mapping": "accounts",
        "key": ["code"],
        "expectations": [{**base, "reason": base.get("reason", "bad")}],
    }


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"severity": "fatal"}, "severity 'fatal'"),
        ({"reason": "value {nope}"}, "unknown placeholder {nope}"),
        ({"check": "crc32", "expect": None}, "unknown check 'crc32'"),
        ({"expect": None}, "needs `expect: expect_...` or `check:`"),
        (
            {
                "column": "siret",
                "expect": "expect_column_value_lengths_to_be_between",
                "kwargs": {"max_value": "$length"},
                "id": "ok",
            },
            None,
        ),
        ({"column": "is_prospect", "kwargs": {"max_value": "$length"}}, "$length used on a field without"),
    ],
)
def test_bad_suite_definitions_raise_configuration_errors(
    change: dict[str, Any], message: str | None
) -> None:
    raw = _suite(**change)
    if message is None:
        assert parse_suite(raw).expectations[0].kwargs["max_value"] == 15
        return
    with pytest.raises(ConfigurationError, match="expectation 'x'") as info:
        parse_suite(raw)
    assert message in str(info.value)


def test_duplicate_expectation_ids_and_unknown_suites_are_refused() -> None:
    raw = _suite()
    raw["expectations"] = raw["expectations"] * 2
    with pytest.raises(ConfigurationError, match="'x' appears twice"):
        parse_suite(raw)
    with pytest.raises(ConfigurationError, match="no quality suite 'suppliers'.*known: accounts"):
        load_suite("suppliers")


def test_unknown_gx_expectation_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="no expectation 'expect_column_to_be_lovely'"):
        gx_runner.expectation_class("expect_column_to_be_lovely")
