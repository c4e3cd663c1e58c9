"""The simulator's ``where`` language (contracts/SSM-API.md, "Lists"): grammar, escapes, injection strings."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sage_sync.simulators.ssm.entities import ACCOUNTS, SALES_ORDERS
from sage_sync.simulators.ssm.where import (
    MAX_NESTING,
    MAX_NUMBER_LENGTH,
    BoolOp,
    Comparison,
    WhereError,
    compile_where,
    parse,
    tokenize,
)


def _account(rid: int, **values: Any) -> dict[str, Any]:
    rec: dict[str, Any] = dict.fromkeys(ACCOUNTS.fields)
    rec.update({"id": rid, "deleted": False, "readOnly": False})
    rec.update(values)
    return rec


ROWS = [
    _account(1, name="Boulangerie Dupont", statusId=1, extId="C001", dateUpdated="2026-01-02T10:00:00.000Z"),
    _account(2, name="L'Atelier", statusId=2, extId="C002", dateUpdated="2025-12-31T23:59:59.999Z"),
    _account(
        3, name="Garage Martin", statusId=1, extId=None, deleted=True, dateUpdated="2026-03-01T00:00:00.000Z"
    ),
    _account(4, name="x", statusId=None, extId="C004", readOnly=True, dateUpdated="2026-01-01T00:00:00.000Z"),
]


def ids(where: str) -> list[int]:
    predicate = compile_where(ACCOUNTS, where)
    return [row["id"] for row in ROWS if predicate(row)]


def test_tokenizer_recognises_every_token_kind() -> None:
    kinds = [(t.kind, t.value) for t in tokenize("(a <= -1.5 OR b != 'it''s') and c IS NOT null")]
    assert kinds == [
        ("LPAREN", "("),
        ("IDENT", "a"),
        ("OP", "<="),
        ("NUMBER", "-1.5"),
        ("KEYWORD", "OR"),
        ("IDENT", "b"),
        ("OP", "!="),
        ("STRING", "it's"),
        ("RPAREN", ")"),
        ("KEYWORD", "AND"),
        ("IDENT", "c"),
        ("KEYWORD", "IS"),
        ("KEYWORD", "NOT"),
        ("KEYWORD", "NULL"),
        ("EOF", ""),
    ]


def test_and_binds_tighter_than_or_and_parentheses_override() -> None:
    tree = parse("a = 1 OR b = 2 AND c = 3")
    assert isinstance(tree, BoolOp) and tree.op == "OR"
    assert tree.operands[0] == Comparison("a", "=", 1, "NUMBER")
    assert isinstance(tree.operands[1], BoolOp) and tree.operands[1].op == "AND"
    grouped = parse("(a = 1 OR b = 2) AND c = 3")
    assert isinstance(grouped, BoolOp) and grouped.op == "AND"


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("statusId = 1", [1, 3]),  # a foreign key compares its id
        ("statusId <> 1", [2]),  # NULL never matches a comparison (SQL three-valued logic)
        ("statusId != 1", [2]),
        ("statusId IS NULL", [4]),
        ("statusId IS NOT NULL", [1, 2, 3]),
        ("name = 'L''Atelier'", [2]),  # '' escapes a quote
        ("name LIKE 'b%'", [1]),  # LIKE is case-insensitive, % any run
        ("name LIKE '_'", [4]),  # _ exactly one character
        ("name NOT LIKE '%a%'", [4]),
        ("extId IS NULL OR deleted = true", [3]),
        ("readOnly = false AND (statusId = 1 OR statusId = 2)", [1, 2, 3]),
        ("id >= 2 AND id < 4", [2, 3]),
        ("id > 3 OR id <= 1", [1, 4]),
        ("extId = 'C001' OR extId = 'C004' OR statusId = 2", [1, 2, 4]),  # batched extId lookups
        ("(extId = 'C001' OR extId = 'nope') AND deleted = false", [1]),
        ("statusId = 1 OR statusId = 7", [1, 3]),
    ],
)
def test_comparisons_filter_rows(where: str, expected: list[int]) -> None:
    assert ids(where) == expected


def test_dates_are_compared_as_instants_not_as_text() -> None:
    """ISO dates as text compare as datetimes: offsets and missing milliseconds are normalised."""
    assert ids("dateUpdated > '2026-01-01T00:00:00Z'") == [1, 3]
    assert ids("dateUpdated >= '2026-01-01'") == [1, 3, 4]
    # 2026-01-02T11:00+01:00 is 10:00Z, the exact stamp of row 1.
    assert ids("dateUpdated = '2026-01-02T11:00:00+01:00'") == [1]


def test_date_field_of_custom_field_accepts_iso_dates() -> None:
    rec: dict[str, Any] = dict.fromkeys(SALES_ORDERS.fields)
    rec.update({"id": 1, "Z_InvoiceDate": "2026-02-01", "Z_Synced": True, "Z_TotalHT": 10.5})
    assert compile_where(
        SALES_ORDERS, "Z_InvoiceDate >= '2026-01-31' AND Z_Synced = true AND Z_TotalHT > 10"
    )(rec)
    assert not compile_where(SALES_ORDERS, "Z_InvoiceDate < '2026-02-01T00:00:00Z'")(rec)


@pytest.mark.parametrize(
    "where",
    [
        "name = 'x' OR 1=1 --",
        "'; DROP TABLE accounts; --",
        "name = 'x'; DROP TABLE accounts; --",
        "name = 'unterminated",
        "name = 'x' OR '1'='1",
        "1 = 1",
        "name =",
        "name LIKE 5",
        "(name = 'x'",
        "name = 'x')",
        "name = 'x' AND",
        "unknownField = 1",
        "statusId = 'abc'",
        "dateUpdated > 'not a date'",
        "dateUpdated > 5",
        "deleted = 'maybe'",
        "name IS 'x'",
        "name = NULL",
        "",
        "name = 'a' /* comment */",
        # Python limits, not grammar: each must still be a 901, never an unhandled error (a 500).
        "(" * 400 + "name = 'x'" + ")" * 400,  # RecursionError in a recursive-descent parser
        "id = " + "9" * 5000,  # ValueError: int() refuses strings of more than 4,300 digits
        "id = -" + "9" * 5000 + ".5",
        "statusId = '" + "9" * 5000 + "'",  # the same through a quoted literal
    ],
)
def test_bad_syntax_unknown_fields_and_injections_raise_901_errors(where: str) -> None:
    with pytest.raises(WhereError):
        compile_where(ACCOUNTS, where)


def test_nesting_and_number_length_limits_are_generous_but_bounded() -> None:
    """The caps only stop abuse: 50 levels and 100-character numbers still parse."""
    assert ids("(" * MAX_NESTING + "id = 4" + ")" * MAX_NESTING) == [4]
    assert ids("id = " + "0" * (MAX_NUMBER_LENGTH - 1) + "4") == [4]
    with pytest.raises(WhereError, match=f"deeper than {MAX_NESTING}"):
        compile_where(ACCOUNTS, "(" * (MAX_NESTING + 1) + "id = 4" + ")" * (MAX_NESTING + 1))
    with pytest.raises(WhereError, match=f"the limit is {MAX_NUMBER_LENGTH}"):
        compile_where(ACCOUNTS, "id = " + "1" * (MAX_NUMBER_LENGTH + 1))


def test_injection_inside_a_quoted_literal_is_just_text() -> None:
    """A quoted payload is compared as a value; it neither errors nor widens the result."""
    assert ids("name = 'x'' OR ''1''=''1'") == []
    assert ids("name = '; DROP TABLE accounts; --'") == []
    assert ids("name = 'x'") == [4]


@given(st.text(max_size=40))
def test_parser_never_crashes_on_arbitrary_text(text: str) -> None:
    """Any input either parses or raises WhereError; nothing else escapes (the server answers 901)."""
    try:
        predicate = compile_where(ACCOUNTS, text)
    except WhereError:
        return
    for row in ROWS:
        predicate(row)


@given(st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=30))
def test_any_string_round_trips_through_quote_escaping(value: str) -> None:
    quoted = "'" + value.replace("'", "''") + "'"
    tree = parse(f"name = {quoted}")
    assert tree == Comparison("name", "=", value, "STRING")
