"""G2: the three-way merge against the last synced values."""

from __future__ import annotations

from sage_sync.engine.merge import three_way
from sage_sync.engine.rules.accounts import account_specs
from tests.support.memory import default_lists

LISTS = default_lists()
BASE = {"name": "Beta", "city": "Lyon", "country": "France", "phone": None, "is_prospect": 1}


def ssm(**fields: object) -> dict:
    return {
        "name": "Beta",
        "city": "Lyon",
        "countryId": {"id": 73, "value": "France"},
        "statusId": 2,
        **fields,
    }


def test_g2_one_sided_changes_flow_to_the_other_side() -> None:
    result = three_way(account_specs(), {**BASE, "city": "Lille"}, ssm(phone="0102"), BASE, LISTS)
    assert result.to_ssm == {"city": "Lille"}
    assert result.to_sage == {"phone": "0102"}
    assert result.merged["city"] == "Lille" and result.merged["phone"] == "0102"
    assert result.conflicts == []


def test_g2_both_sides_same_field_sage_wins_by_default() -> None:
    result = three_way(account_specs(), {**BASE, "city": "Lille"}, ssm(city="Nice"), BASE, LISTS)
    assert result.conflicts == [("city", "Lille", "Nice", "sage")]
    assert result.to_ssm == {"city": "Lille"} and result.to_sage == {}


def test_g2_both_sides_same_field_ssm_wins_when_configured() -> None:
    result = three_way(account_specs(), {**BASE, "city": "Lille"}, ssm(city="Nice"), BASE, LISTS, "ssm")
    assert result.to_sage == {"city": "Nice"} and result.to_ssm == {}


def test_g2_same_new_value_on_both_sides_is_no_conflict_and_no_write() -> None:
    result = three_way(account_specs(), {**BASE, "city": "Nice"}, ssm(city="Nice"), BASE, LISTS)
    assert (result.conflicts, result.to_sage, result.to_ssm) == ([], {}, {})


def test_g2_echo_of_our_own_write_is_not_a_change() -> None:
    """After a write the base equals both sides; "FRANCE" and "France" are the same country id."""
    result = three_way(
        account_specs(), {**BASE, "country": "FRANCE"}, ssm(), {**BASE, "country": "FRANCE"}, LISTS
    )
    assert (result.to_sage, result.to_ssm) == ({}, {})


def test_c4_other_ssm_status_is_left_in_ssm() -> None:
    result = three_way(account_specs(), BASE, ssm(statusId=3), BASE, LISTS)
    assert result.to_sage == {} and result.unmapped
