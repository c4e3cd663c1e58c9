"""What Sage can store (G3, SPEC section 3): one rule for the planner, the ODBC writes and the quality suites."""

from __future__ import annotations

import pandas as pd

from sage_sync.engine.codec import Spec, check_sage_value
from sage_sync.hooks.sage50_writes import validate_writes
from sage_sync.mapping.loader import load_mapping
from sage_sync.mapping.sage_values import first_unstorable, storable, value_problem
from sage_sync.quality import checks

ACCOUNTS = load_mapping("accounts")
NAME = ACCOUNTS.main.field("name")
STATUS = ACCOUNTS.main.field("is_prospect")


def test_cp1252_characters_are_storable_and_others_are_not() -> None:
    """cp1252 holds "œ", "Œ", "€" and curly quotes (latin-1 does not); emoji and "ł" are out."""
    assert first_unstorable("Œuf € l’œil «ça»") is None
    assert first_unstorable("Łódź") == "Ł"
    assert first_unstorable("ok 😀 ok") == "😀"


def test_control_characters_are_not_storable_but_line_breaks_and_tabs_are() -> None:
    assert first_unstorable("nul\x00byte") == "\x00"
    assert first_unstorable("bell\x07") == "\x07"
    assert first_unstorable("esc\x1b[0m") == "\x1b"
    assert first_unstorable("del\x7f") == "\x7f"
    assert first_unstorable("two\nlines\tand\r\nmore") is None


def test_value_problem_covers_required_characters_length_and_integer_range() -> None:
    assert value_problem(NAME, None) == "is required"
    assert value_problem(NAME, "x" * 70) == "is 70 characters, the Sage column holds 69"
    assert value_problem(NAME, "Vins 🍷") is not None and "U+1F377" in str(value_problem(NAME, "Vins 🍷"))
    assert "control character" in str(value_problem(NAME, "Cave\x07"))
    assert value_problem(STATUS, 40000) == "is 40000, outside the column's range -32768..32767"
    assert value_problem(NAME, "Cave Saint-Vincent") is None


def test_the_planner_the_odbc_writes_and_the_quality_check_give_the_same_verdict() -> None:
    """One rule: a value refused by one of the three is refused by the others, with the same reason."""
    spec = Spec.of(NAME)
    values = ["Cave", "Cave 🍷", "Cave\x00", "Cave\x1b", "x" * 70, "Œnologie"]
    planner = [check_sage_value("accounts", "C1", spec, v) is None for v in values]
    writes = [not validate_writes(ACCOUNTS, [{"code": "C1", "name": v}], insert=False) for v in values]
    quality = checks.cp1252_valid(pd.Series(values)).tolist()
    lengths = [len(v) <= 69 for v in values]
    assert planner == writes == [q and n for q, n in zip(quality, lengths, strict=True)]
    assert planner == [True, False, False, False, False, True]
    assert storable(pd.Series(["ok", None])).tolist()[1] is pd.NA
