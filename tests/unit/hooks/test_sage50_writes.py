"""Write-back validation: refuse over-long and non-cp1252 values with a message naming record, column and limit."""

from __future__ import annotations

from decimal import Decimal

import pandas as pd
import pytest

from sage_sync.errors import RecordRejected
from sage_sync.hooks.sage50_writes import (
    account_codes,
    parent_account_problems,
    plan_writes,
    validate_writes,
)
from sage_sync.mapping.loader import load_mapping
from sage_sync.mapping.sage_values import INTEGER_RANGE, SMALLINT_RANGE, integer_range

ACCOUNTS = load_mapping("accounts")
CONTACTS = load_mapping("contacts")


def test_too_long_value_names_record_column_and_limit() -> None:
    """SPEC section 3: values longer than the Sage column are refused, not truncated."""
    problems = validate_writes(ACCOUNTS, [{"code": "C0042", "name": "A" * 74}], insert=True)
    assert [str(p) for p in problems] == [
        "F_COMPTET CT_Num=C0042: CT_Intitule is 74 characters, the Sage column holds 69"
    ]
    assert problems[0].column == "CT_Intitule"


def test_character_outside_cp1252_is_refused_by_name() -> None:
    """SPEC section 3: characters Sage's cp1252 cannot store (emoji, "ő") are refused, not mangled."""
    rows = [{"account_code": "C0042", "number": 3, "last_name": "Dupont 😀"}]
    problems = validate_writes(CONTACTS, rows, insert=False)
    assert [str(p) for p in problems] == [
        "F_CONTACTT CT_Num=C0042, CT_No=3: CT_Nom contains '😀' (U+1F600), which Sage cannot store (cp1252)"
    ]
    assert validate_writes(ACCOUNTS, [{"code": "C1", "city": "Győr"}], insert=False)[0].message == (
        "CT_Ville contains 'ő' (U+0151), which Sage cannot store (cp1252)"
    )


def test_french_text_and_sql_lookalikes_are_valid() -> None:
    """Accents, "œ", "€", curly and straight quotes all exist in cp1252: nothing to refuse."""
    rows = [
        {"code": "C1", "name": "L'Œuf € «Crème brûlée» “Noël”"},
        {"code": "C2", "name": "'; DROP TABLE F_COMPTET; --"},
    ]
    assert validate_writes(ACCOUNTS, rows, insert=True) == []


def test_whole_batch_is_refused_when_one_row_is_bad() -> None:
    """Nothing is written when any row is bad: plan_writes raises before producing statements."""
    good = {"code": "C1", "name": "Bon"}
    bad = {"code": "C2", "name": "x" * 70}
    with pytest.raises(RecordRejected) as excinfo:
        plan_writes(ACCOUNTS, inserts=[good], updates=[bad])
    assert excinfo.value.problems == [
        "F_COMPTET CT_Num=C2: CT_Intitule is 70 characters, the Sage column holds 69"
    ]
    assert "nothing was written" in str(excinfo.value)


def test_required_key_fixed_value_and_unknown_field_problems() -> None:
    problems = validate_writes(
        ACCOUNTS,
        [
            {"code": "C1"},  # insert without the required name
            {"name": "Sans code"},  # no key
            {"code": "C3", "name": "Fournisseur", "account_type": 1},  # would create a supplier
            {"code": "C4", "name": "X", "colour": "red"},  # not in the mapping
        ],
        insert=True,
    )
    assert [str(p) for p in problems] == [
        "F_COMPTET CT_Num=C1: CT_Intitule is required",
        "F_COMPTET CT_Num=None: CT_Num (key) is missing",
        "F_COMPTET CT_Num=C3: CT_Type must stay 0, the row sets 1",
        "F_COMPTET CT_Num=C4: field 'colour' is not a column of F_COMPTET in the accounts mapping",
    ]


def test_type_problems_are_reported() -> None:
    problems = validate_writes(
        CONTACTS,
        [{"account_code": "C1", "number": "deux", "last_name": "Martin", "civility": 1.5}],
        insert=True,
    )
    assert [p.message for p in problems] == [
        "CT_No is 'deux', not an integer",
        "CT_Civilite is 1.5, not an integer",
    ]


def test_plan_groups_rows_by_columns_and_guards_updates_with_the_fixed_type() -> None:
    """Inserts get CT_Type=0 added; updates are keyed on CT_Num AND CT_Type=0 so suppliers are untouchable."""
    plan = plan_writes(
        ACCOUNTS,
        inserts=[{"code": "C1", "name": "Un"}, {"code": "C2", "name": "Deux"}],
        updates=pd.DataFrame([{"code": "C3", "city": "Nîmes", "phone": None}]),
    )
    insert, update = plan.statements
    assert insert.sql == "INSERT INTO F_COMPTET (CT_Num, CT_Intitule, CT_Type) VALUES (?, ?, ?)"
    assert insert.params == [("C1", "Un", 0), ("C2", "Deux", 0)]
    assert (
        update.sql == "UPDATE F_COMPTET SET CT_Ville = ?, CT_Telephone = ? WHERE CT_Num = ? AND CT_Type = ?"
    )
    assert update.params == [("Nîmes", None, "C3", 0)]
    assert update.keys == ["CT_Num=C3"]
    assert sum(len(s.params) for s in plan.statements) == 3


def test_dataframe_missing_values_become_nulls_and_numbers_are_bound_exactly() -> None:
    frame = pd.DataFrame(
        {
            "account_code": ["C1"],
            "number": pd.array([2], dtype="Int64"),
            "last_name": ["Léa"],
            "email": [pd.NA],
        }
    )
    plan = plan_writes(CONTACTS, inserts=frame)
    assert plan.statements[0].params == [("C1", 2, "Léa", None)]
    assert isinstance(plan.statements[0].params[0][1], int)
    assert Decimal("2") == plan.statements[0].params[0][1]


def test_update_with_only_the_key_is_skipped() -> None:
    assert plan_writes(ACCOUNTS, updates=[{"code": "C1"}]).statements == []


def test_integer_columns_are_range_checked_by_their_sage_type() -> None:
    """SMALLINT (CT_Civilite, ``bits: 16`` in the mapping) holds -32768..32767, INTEGER (CT_No) 32 bits."""
    by_name = {f.name: f for f in CONTACTS.main.fields}
    assert integer_range(by_name["civility"]) == SMALLINT_RANGE == (-32768, 32767)
    assert integer_range(by_name["number"]) == INTEGER_RANGE == (-(2**31), 2**31 - 1)
    edge = [{"account_code": "C1", "number": 2**31 - 1, "last_name": "M", "civility": -32768}]
    assert validate_writes(CONTACTS, edge, insert=True) == []
    rows = [
        {"account_code": "C1", "number": 2**31, "last_name": "M", "civility": 32768},
        {"account_code": "C1", "number": 5, "last_name": "M", "civility": "-32769"},
    ]
    assert [str(p) for p in validate_writes(CONTACTS, rows, insert=True)] == [
        "F_CONTACTT CT_Num=C1, CT_No=2147483648: CT_No is 2147483648, outside the column's range "
        "-2147483648..2147483647",
        "F_CONTACTT CT_Num=C1, CT_No=2147483648: CT_Civilite is 32768, outside the column's range -32768..32767",
        "F_CONTACTT CT_Num=C1, CT_No=5: CT_Civilite is -32769, outside the column's range -32768..32767",
    ]


def test_contacts_need_a_customer_or_prospect_owner() -> None:
    """Contacts are written only under a CT_Type = 0 account: suppliers and unknown codes are named."""
    rows = [
        {"account_code": "C1", "number": 1, "last_name": "Client"},
        {"account_code": "F1", "number": 1, "last_name": "Fournisseur"},
        {"account_code": "X9", "number": 2, "last_name": "Inconnu"},
        {"account_code": "C1", "number": 2, "last_name": "Client bis"},
    ]
    assert account_codes(CONTACTS, rows[:2], rows[2:]) == ["C1", "F1", "X9"]
    assert account_codes(ACCOUNTS, [{"code": "C1"}]) == []  # accounts have no owner
    problems = parent_account_problems(CONTACTS, ACCOUNTS, {"C1": 0, "F1": 1}, rows)
    assert [str(p) for p in problems] == [
        "F_CONTACTT CT_Num=F1, CT_No=1: CT_Num: account F1 has CT_Type = 1 (not a customer or prospect); "
        "contacts can only be written under a CT_Type = 0 account",
        "F_CONTACTT CT_Num=X9, CT_No=2: CT_Num: account X9 does not exist in F_COMPTET; "
        "contacts can only be written under a CT_Type = 0 account",
    ]


def test_the_mappings_integer_widths_match_the_sage_contract() -> None:
    """Every int field's ``bits`` is the width of its column in the contract's schema (SMALLINT 16, INTEGER 32)."""
    from sqlalchemy import Integer, SmallInteger

    from sage_sync.mapping.registry import entity_names
    from sage_sync.simulators.standin.schema import metadata

    columns = {
        (table.name.upper(), column.name.upper()): column.type
        for table in metadata.tables.values()
        for column in table.columns
    }
    checked = 0
    for entity in entity_names():
        mapping = load_mapping(entity)
        for source in mapping.sources.values():
            for f in source.fields:
                if f.dtype != "int" or f.sage is None:
                    continue
                kind = columns[(source.table.upper(), f.sage.upper())]
                expected = 16 if isinstance(kind, SmallInteger) else 32 if isinstance(kind, Integer) else None
                assert f.bits == expected, f"{entity}.{f.name} ({source.table}.{f.sage}): bits {f.bits}"
                checked += 1
    assert checked >= 15


def test_bits_is_refused_on_a_non_integer_field_or_with_an_odd_width() -> None:
    from sage_sync.errors import ConfigurationError
    from sage_sync.mapping.loader import parse_mapping

    def doc(extra: dict[str, object]) -> dict[str, object]:
        return {
            "entity": "accounts",
            "sage": {"sources": {"accounts": {"table": "F_COMPTET", "key": ["code"]}}},
            "ssm": {"endpoint": "accounts", "zapier_entity": "empresas"},
            "fields": [{"name": "code", "sage": "CT_Num", "dtype": "string"}, extra],
        }

    with pytest.raises(ConfigurationError, match="bits must be 16 or 32"):
        parse_mapping(doc({"name": "kind", "sage": "CT_Type", "dtype": "int", "bits": 8}))
    with pytest.raises(ConfigurationError, match="on an int field only"):
        parse_mapping(doc({"name": "city", "sage": "CT_Ville", "dtype": "string", "bits": 16}))
