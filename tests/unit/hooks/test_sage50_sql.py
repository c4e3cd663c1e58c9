"""SQL building for the Sage dossier: names only from the mapping, every value a bound parameter."""

from __future__ import annotations

import pytest

from sage_sync.hooks.sage50_sql import build_insert, build_select, build_update
from sage_sync.mapping.loader import load_mapping
from sage_sync.mapping.model import FieldMap, SageSource


def test_accounts_select_lists_mapped_columns_and_binds_the_supplier_filter() -> None:
    """SPEC section 1: suppliers (CT_Type=1) are excluded by a bound filter, not a literal."""
    source = load_mapping("accounts").main
    statement = build_select(source)
    assert statement.sql.startswith("SELECT CT_Num, CT_Intitule, CT_Type, CT_Prospect, ")
    assert statement.sql.endswith(" FROM F_COMPTET WHERE CT_Type IN (?)")
    assert statement.params == (0,)
    assert [f.name for f in statement.fields] == [f.name for f in source.fields]


def test_invoice_filters_become_one_placeholder_per_value() -> None:
    """Invoices: DO_Domaine = 0 and DO_Type in (6, 7), as parameters."""
    mapping = load_mapping("invoices")
    statement = build_select(mapping.sources["headers"])
    assert statement.sql.endswith(" FROM F_DOCENTETE WHERE DO_Domaine IN (?) AND DO_Type IN (?, ?)")
    assert statement.params == (0, 6, 7)
    lines = build_select(
        mapping.sources["lines"], columns=["line_id", "piece"], filters={"line_id": [1, 2, 3]}
    )
    assert lines.sql == (
        "SELECT DL_No, DO_Piece FROM F_DOCLIGNE WHERE DO_Domaine IN (?) AND DO_Type IN (?, ?) AND DL_No IN (?, ?, ?)"
    )
    assert lines.params == (0, 6, 7, 1, 2, 3)


def test_filter_values_never_reach_the_sql_text() -> None:
    """A hostile value is a parameter: the SQL text is the same whatever the value."""
    source = load_mapping("accounts").main
    hostile = "'; DROP TABLE F_COMPTET; --"
    statement = build_select(source, columns=["code"], filters={"code": [hostile]})
    assert hostile not in statement.sql
    assert statement.sql == "SELECT CT_Num FROM F_COMPTET WHERE CT_Type IN (?) AND CT_Num IN (?)"
    assert statement.params == (0, hostile)


@pytest.mark.parametrize(
    ("table", "column"),
    [("F_COMPTET; DROP TABLE X", "CT_Num"), ("F_COMPTET", "CT_Num--"), ("F_COMPTET", 'CT "Num"')],
)
def test_identifiers_that_are_not_plain_names_are_refused(table: str, column: str) -> None:
    source = SageSource(
        name="accounts",
        table=table,
        key=("code",),
        filter={},
        fields=(FieldMap(name="code", source="accounts", dtype="string", sage=column),),
    )
    with pytest.raises(ValueError, match="not a plain identifier"):
        build_select(source)
    with pytest.raises(ValueError, match="not a plain identifier"):
        build_insert(source, ["code"])


def test_unknown_field_and_empty_filter_are_refused() -> None:
    source = load_mapping("accounts").main
    with pytest.raises(KeyError, match="no field 'nope'"):
        build_select(source, columns=["nope"])
    with pytest.raises(ValueError, match="has no values"):
        build_select(source, filters={"code": []})


def test_insert_and_update_statements_use_placeholders_only() -> None:
    """Write-back SQL: every value a `?`, updates keyed and guarded by the fixed CT_Type."""
    source = load_mapping("accounts").write
    assert build_insert(source, ["code", "name", "account_type"]) == (
        "INSERT INTO F_COMPTET (CT_Num, CT_Intitule, CT_Type) VALUES (?, ?, ?)"
    )
    assert build_update(source, ["name", "city"], ["code", "account_type"]) == (
        "UPDATE F_COMPTET SET CT_Intitule = ?, CT_Ville = ? WHERE CT_Num = ? AND CT_Type = ?"
    )
    with pytest.raises(ValueError, match="needs columns to set"):
        build_update(source, [], ["code"])
