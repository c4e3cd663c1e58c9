"""The safe ``where`` builder: quoting, literal formatting, identifier checks, grouping."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sage_sync.hooks.where import (
    and_,
    format_literal,
    or_,
    quote_string,
    where_eq,
    where_ge,
    where_gt,
    where_in,
    where_is_not_null,
    where_is_null,
    where_le,
    where_like,
    where_lt,
    where_ne,
    where_not_like,
)
from sage_sync.simulators.ssm.where import tokenize


def test_quotes_are_doubled() -> None:
    assert where_eq("extId", "O'Neil") == "extId = 'O''Neil'"
    assert where_eq("name", "x' OR '1'='1") == "name = 'x'' OR ''1''=''1'"


def test_literals() -> None:
    assert where_eq("readOnly", True) == "readOnly = true"
    assert where_ne("deleted", False) == "deleted <> false"
    assert where_gt("id", 41) == "id > 41"
    assert where_le("price", Decimal("12.50")) == "price <= 12.50"
    assert where_lt("price", 1e-7) == "price < 0.0000001"  # the API's number grammar has no exponent
    assert where_ge("closedDate", date(2026, 3, 1)) == "closedDate >= '2026-03-01'"


def test_datetimes_are_utc_iso_with_z() -> None:
    paris = timezone(timedelta(hours=1))
    assert where_gt("dateUpdated", datetime(2026, 1, 1, 1, 0, 0, 123456, tzinfo=paris)) == (
        "dateUpdated > '2026-01-01T00:00:00.123Z'"
    )
    assert (
        where_gt("dateUpdated", datetime(2026, 1, 1, tzinfo=UTC))
        == "dateUpdated > '2026-01-01T00:00:00.000Z'"
    )
    with pytest.raises(ValueError, match="no time zone"):
        where_gt("dateUpdated", datetime(2026, 1, 1))


@pytest.mark.parametrize("field", ["extId = 'x' OR 1", "name;", "", "1abc", "a b", "x'--", "é"])
def test_field_names_must_be_identifiers(field: str) -> None:
    with pytest.raises(ValueError, match="not an identifier"):
        where_eq(field, "x")


@pytest.mark.parametrize("value", [float("nan"), float("inf"), Decimal("NaN")])
def test_non_finite_numbers_are_refused(value: float | Decimal) -> None:
    with pytest.raises(ValueError, match="not finite"):
        format_literal(value)


def test_none_and_unknown_types_are_refused() -> None:
    with pytest.raises(ValueError, match="where_is_null"):
        format_literal(None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="unsupported"):
        format_literal([1])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="NUL"):
        quote_string("a\x00b")


def test_like_null_and_membership() -> None:
    assert where_like("name", "Dup%") == "name LIKE 'Dup%'"
    assert where_not_like("name", "%'%") == "name NOT LIKE '%''%'"
    assert where_is_null("extId") == "extId IS NULL"
    assert where_is_not_null("extId") == "extId IS NOT NULL"
    assert where_in("extId", ["A", "B'"]) == "(extId = 'A' OR extId = 'B''')"
    assert where_in("id", [3]) == "id = 3"
    with pytest.raises(ValueError, match="at least one value"):
        where_in("id", [])


def test_grouping_never_depends_on_precedence() -> None:
    clause = and_(where_eq("deleted", False), or_(where_eq("a", 1), where_eq("b", 2)))
    assert clause == "(deleted = false AND (a = 1 OR b = 2))"
    raw = and_("a = 1 OR b = 2", "c = 3")  # a hand-written operand with a top-level OR gets parentheses
    assert raw == "((a = 1 OR b = 2) AND c = 3)"
    assert and_("name = 'x OR y'", "c = 3") == "(name = 'x OR y' AND c = 3)"  # OR inside a string is text
    assert and_(where_eq("a", 1)) == "a = 1"


@given(st.text())
def test_any_text_is_one_string_token(text: str) -> None:
    """Whatever the value, the simulator's tokenizer sees field, operator and exactly one string literal."""
    if "\x00" in text:
        return
    tokens = tokenize(where_eq("name", text))
    assert [t.kind for t in tokens] == ["IDENT", "OP", "STRING", "EOF"]
    assert tokens[2].value == text
