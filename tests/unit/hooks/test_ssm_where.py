"""The safe ``where`` builder: quoting, literal formatting, identifier checks, grouping."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sage_sync.hooks import where as where_module
from sage_sync.hooks.where import (
    and_,
    format_literal,
    or_,
    quote_string,
    where_eq,
    where_ge,
    where_gt,
    where_in,
    where_in_batches,
    where_is_not_null,
    where_is_null,
    where_le,
    where_like,
    where_lt,
    where_ne,
    where_not_like,
)
from sage_sync.simulators.ssm.where import parse, tokenize


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


# ------------------------------------------------------------------------------------ batched membership

LIMIT = 1800


def encoded(where: str) -> int:
    return len(quote(where, safe=""))


def check_batches(field: str, values: list, limit: int = LIMIT) -> list[tuple[list, str]]:
    """Every batch fits, equals where_in of its values, is as full as the limit allows, and none is lost."""
    batches = list(where_in_batches(field, values, limit))
    assert [v for batch, _ in batches for v in batch] == values
    for n, (batch, where) in enumerate(batches):
        assert batch and where == where_in(field, batch)
        assert encoded(where) <= limit
        if n + 1 < len(batches):  # one more value would not have fitted
            assert encoded(where_in(field, [*batch, batches[n + 1][0][0]])) > limit
    return batches


def test_batches_fit_the_limit_and_give_back_every_value_in_order() -> None:
    values = [f"C{n:05d}" for n in range(2_000)] + ["O'Neil", "naïve 😀", "a b&c=d?e#f/%"] * 20
    batches = check_batches("extId", values)
    assert len(batches) > 10
    ids = check_batches("id", list(range(5_000)))
    assert all(isinstance(v, int) for batch, _ in ids for v in batch)


def test_every_batch_parses_within_the_simulators_limits() -> None:
    """A batch is a flat OR chain: one level of parentheses, however many values (the API allows 50)."""
    for _, where in where_in_batches("extId", [f"E{n}" for n in range(3_000)], LIMIT):
        parse(where)  # raises WhereError beyond the nesting or number limits
        assert where.count("(") <= 1


def test_a_single_value_and_empty_input() -> None:
    assert list(where_in_batches("id", [], LIMIT)) == []
    assert list(where_in_batches("id", [7], LIMIT)) == [([7], "id = 7")]
    assert list(where_in_batches("extId", ["A", "B"], LIMIT)) == [
        (["A", "B"], "(extId = 'A' OR extId = 'B')")
    ]


def test_the_limit_is_exact() -> None:
    """Two values that fit exactly stay together; one character less splits them."""
    exact = encoded(where_in("extId", ["A", "B"]))
    assert [b for b, _ in where_in_batches("extId", ["A", "B"], exact)] == [["A", "B"]]
    assert [b for b, _ in where_in_batches("extId", ["A", "B"], exact - 1)] == [["A"], ["B"]]


def test_a_value_too_long_for_any_batch_is_refused() -> None:
    with pytest.raises(ValueError, match="for one value is .* the limit is 100"):
        list(where_in_batches("extId", ["ok", "x" * 200], 100))


@settings(max_examples=200)
@given(st.lists(st.text(min_size=0, max_size=60).filter(lambda t: "\x00" not in t), max_size=80))
def test_any_values_batch_within_the_limit(values: list[str]) -> None:
    check_batches("name", values, limit=800)  # 60 four-byte characters encode to 720


def test_batching_200k_values_encodes_each_value_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Linear, not quadratic: each value's clause is URL-encoded once, never the whole growing filter.

    Counted, not timed: the number of ``quote`` calls and the characters they encode. Re-encoding the
    candidate filter per value (the former builder) encodes ~900 characters per value at this limit.
    """
    calls, chars = 0, 0

    def counting_quote(text: str, safe: str = "/") -> str:
        nonlocal calls, chars
        calls += 1
        chars += len(text)
        return quote(text, safe=safe)

    monkeypatch.setattr(where_module, "quote", counting_quote)
    values = [f"C{n:07d}" for n in range(200_000)]
    batches = list(where_in_batches("extId", values, LIMIT))
    assert calls == len(values)
    assert chars == sum(len(where_eq("extId", v)) for v in values)  # each clause once: 18 characters a value
    monkeypatch.undo()
    assert sum(len(b) for b, _ in batches) == len(values)
    assert max(encoded(w) for _, w in batches) <= LIMIT
