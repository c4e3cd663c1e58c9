"""Value transforms between canonical (Sage) values and SSM values, both directions where two-way."""

from __future__ import annotations

import pytest

from sage_sync.mapping import transforms as tf
from tests.support.memory import default_lists


def test_account_status_both_ways_via_the_value_list() -> None:
    lists = default_lists()
    assert tf.status_to_ssm(0, lists) == lists.account_statuses["Client"]
    assert tf.status_to_ssm(1, lists) == lists.account_statuses["Prospect"]
    assert tf.status_from_ssm(lists.account_statuses["Client"], lists) == 0
    assert tf.status_from_ssm(lists.account_statuses["Prospect"], lists) == 1
    assert tf.status_from_ssm(lists.account_statuses["Lead"], lists) is None  # C4: stays in SSM


def test_country_by_name_case_and_accent_insensitive_unknown_is_a_warning() -> None:
    lists = default_lists()
    assert tf.country_to_ssm("FRANCE", lists) == (73, None)
    assert tf.country_to_ssm("cote d'ivoire", lists) == (58, None)
    ident, warning = tf.country_to_ssm("Atlantis", lists)
    assert ident is None and warning and "Atlantis" in warning
    assert tf.country_from_ssm(58, lists) == "Côte d'Ivoire"
    assert tf.country_to_ssm(None, lists) == (None, None)


@pytest.mark.parametrize(
    ("price", "ttc", "rate", "expected"),
    [
        (12.0, 1, 20.0, 10.0),
        (10.0, 1, 20.0, 8.33),
        (10.0, 1, 5.5, 9.48),
        (9.999, 0, 20.0, 10.0),
        (None, 1, 20.0, None),
    ],
)
def test_d6_price_excluding_tax_rounded_to_two_decimals(
    price: float, ttc: int, rate: float, expected: float
) -> None:
    assert tf.price_ht(price, ttc, rate) == expected


def test_d6_price_including_tax_needs_a_rate() -> None:
    with pytest.raises(ValueError, match="VAT rate"):
        tf.price_ht(10.0, 1, None)


def test_d2_stock_and_its_display() -> None:
    assert tf.stock_to_ssm(2, 12.0) == (12, "12")
    assert tf.stock_to_ssm(2, 2.25) == (2, "2.25")
    assert tf.stock_to_ssm(0, 12.0) == (None, "-")
    # A float sum over depots carries noise (468.03000000000003): SSM shows the quantity Sage holds.
    assert tf.stock_to_ssm(2, 372.91 + 85.27 + 9.85) == (468, "468.03")


def test_gender_flag_invoice_kind_quantity_and_sales_rep() -> None:
    lists = default_lists()
    assert (tf.gender_to_ssm(1), tf.gender_to_ssm(0), tf.gender_from_ssm(1)) == (1, 0, 1)
    assert (tf.flag_to_ssm(1), tf.flag_to_ssm(0)) == (True, False)
    assert tf.invoice_kind(2, lists) == (12, "Avoir")
    assert tf.invoice_kind(0, lists) == (11, "Facture")
    assert tf.quantity_to_ssm(2.5) == (3, 2.5)
    assert tf.sales_rep_name(7, lists) == "Lucie Martin"
    assert tf.sales_rep_name(99, lists) is None
