from __future__ import annotations

import numpy as np

from sage_sync.simulators.standin.identifiers import (
    digits_to_strings,
    ean13_check_digits,
    fr_vat_key,
    fr_vat_valid,
    luhn_check_digits,
    luhn_valid,
    siret_valid,
)


def test_luhn_check_digits_make_every_row_valid() -> None:
    rng = np.random.default_rng(0)
    for width in (8, 13):
        body = rng.integers(0, 10, (500, width))
        numbers = digits_to_strings(np.hstack([body, luhn_check_digits(body)[:, None]]))
        assert all(luhn_valid(n) for n in numbers)


def test_siret_rules_known_values() -> None:
    assert siret_valid("73282932000074")  # a public SIRET (Luhn-valid)
    assert not siret_valid("73282932000075")
    assert not siret_valid("7328293200007")  # 13 digits
    assert siret_valid("732 829 320 00074")  # spaces are ignored
    # La Poste: digit sum multiple of 5, even though Luhn fails.
    assert siret_valid("35600000049837")
    assert not luhn_valid("35600000049837")
    assert not siret_valid("35600000049838")


def test_fr_vat_key_matches_published_examples() -> None:
    assert fr_vat_valid("FR40303265045")
    assert fr_vat_valid("FR04494887854")
    assert fr_vat_key(303265045) == 40
    assert not fr_vat_valid("FR41303265045")
    assert not fr_vat_valid("BE0303265045")


def test_ean13_check_digit() -> None:
    body = np.array([[3, 0, 1, 7, 6, 2, 0, 4, 2, 5, 1, 0]])  # 3017620425035 (a real French barcode)
    assert ean13_check_digits(body).tolist() == [3]
