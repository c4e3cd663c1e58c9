"""The entity mappings (data) agree with the Sage stand-in schema and reject malformed documents."""

from __future__ import annotations

import pytest

from sage_sync.errors import ConfigurationError
from sage_sync.mapping.loader import load_mapping, parse_mapping
from sage_sync.mapping.registry import entity_names
from sage_sync.simulators.standin.schema import TABLES


@pytest.mark.parametrize("entity", entity_names())
def test_every_mapped_column_exists_in_the_contract_schema(entity: str) -> None:
    mapping = load_mapping(entity)
    for source in mapping.sources.values():
        table = TABLES[source.table]
        columns = {c.name: c for c in table.columns}
        for f in source.fields:
            assert f.sage in columns, f"{source.table}.{f.sage} is not in the contract"
            declared = getattr(columns[f.sage].type, "length", None)
            assert f.length == declared, (
                f"{source.table}.{f.sage}: mapping length {f.length} != column {declared}"
            )


def test_accounts_follow_spec_section_3() -> None:
    """C1: CT_Num is the extId; the SPEC section 3 table maps each Sage column to its SSM field."""
    ssm = {name: fields for name, fields in load_mapping("accounts").ssm_fields().items()}
    sage = load_mapping("accounts").main.sage_columns
    expected = {
        "CT_Num": "extId",
        "CT_Intitule": "name",
        "CT_Prospect": "statusId",
        "CT_Adresse": "address1",
        "CT_Complement": "address2",
        "CT_CodePostal": "postcode",
        "CT_Ville": "city",
        "CT_CodeRegion": "region",
        "CT_Pays": "countryId",
        "CT_Telephone": "phone",
        "CT_Telecopie": "fax",
        "CT_EMail": "email",
        "CT_Site": "website",
        "CT_Identifiant": "vatNumber",
        "CT_Siret": "Z_Siret",
        "CT_Commentaire": "comment",
    }
    by_column = {sage[name]: fields[0] for name, fields in ssm.items()}
    assert by_column == expected
    assert "sales_rep" in sage and "sales_rep" not in ssm  # C6: written to Sage only


def test_invoices_are_keyed_without_doc_type_so_posting_is_an_update() -> None:
    """I1: the natural key of an invoice is (DO_Domaine, DO_Piece), not DO_Type."""
    headers = load_mapping("invoices").sources["headers"]
    assert [headers.sage_columns[k] for k in headers.key] == ["DO_Domaine", "DO_Piece"]
    assert headers.filter == {"domain": (0,), "doc_type": (6, 7)}


def test_suppliers_are_filtered_out_of_accounts() -> None:
    accounts = load_mapping("accounts").main
    assert accounts.filter == {"account_type": (0,)}


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["fields"][0].update(sage="CT_Num; DROP TABLE x"), "not a plain identifier"),
        (lambda d: d["sage"]["sources"]["accounts"].update(table="F COMPTET"), "not a plain identifier"),
        (lambda d: d["fields"][0].update(dtype="blob"), "unknown dtype"),
        (lambda d: d["sage"]["sources"]["accounts"].update(key=["nope"]), "unknown field 'nope'"),
        (lambda d: d.pop("ssm"), "malformed mapping"),
    ],
)
def test_malformed_mappings_are_refused_with_a_clear_error(mutate, message: str) -> None:
    import copy

    import yaml

    from sage_sync.mapping.loader import DEFAULT_DIR

    doc = yaml.safe_load((DEFAULT_DIR / "accounts.yaml").read_text(encoding="utf-8"))
    doc = copy.deepcopy(doc)
    mutate(doc)
    with pytest.raises(ConfigurationError, match=message):
        parse_mapping(doc)


def test_unknown_entity_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="unknown entity"):
        load_mapping("suppliers")
