"""French business identifiers for the stand-in data: SIRET (Luhn), TVA intracommunautaire (FR key), EAN-13.

The generator needs both valid and deliberately invalid numbers, so the check-digit arithmetic lives here,
vectorised with numpy for the bulk path and as plain functions for checking single values.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

LA_POSTE_SIREN = "356000000"
"""La Poste's SIRETs break the Luhn rule: they are valid when their digit sum is a multiple of 5."""


def luhn_check_digits(digits: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Return, per row of ``digits`` (shape ``(n, k)``), the digit that makes the row plus it pass Luhn."""
    k = digits.shape[1]
    # Once the check digit is appended, the digit at column j sits at position k - j from the right (the
    # check digit is position 0); Luhn doubles the odd positions.
    doubled = (k - np.arange(k)) % 2 == 1
    weighted = digits.copy()
    weighted[:, doubled] *= 2
    weighted[weighted > 9] -= 9
    return (10 - weighted.sum(axis=1) % 10) % 10


def luhn_valid(number: str) -> bool:
    """Tell whether a string of digits passes the Luhn check."""
    if not number.isdigit():
        return False
    total = 0
    for position, char in enumerate(reversed(number)):
        digit = int(char)
        if position % 2 == 1:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


def siret_valid(siret: str) -> bool:
    """Tell whether a SIRET is valid: 14 digits passing Luhn, or a La Poste SIRET with a digit sum multiple of 5."""
    siret = siret.replace(" ", "")
    if len(siret) != 14 or not siret.isdigit():
        return False
    if siret.startswith(LA_POSTE_SIREN):
        return sum(int(c) for c in siret) % 5 == 0
    return luhn_valid(siret)


def fr_vat_key(siren: int) -> int:
    """Return the numeric key of a French VAT number: ``(12 + 3 × (SIREN mod 97)) mod 97``."""
    return (12 + 3 * (siren % 97)) % 97


def fr_vat_valid(vat: str) -> bool:
    """Tell whether a French VAT number (``FR`` + 2-digit key + SIREN) carries the right numeric key."""
    vat = vat.replace(" ", "").upper()
    if len(vat) != 13 or not vat.startswith("FR") or not vat[2:].isdigit():
        return False
    siren = vat[4:]
    return luhn_valid(siren) and int(vat[2:4]) == fr_vat_key(int(siren))


def ean13_check_digits(digits: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Return the EAN-13 check digit for each row of 12 digits (weights 1, 3, 1, 3, ... from the left)."""
    weights = np.where(np.arange(12) % 2 == 0, 1, 3)
    return (10 - (digits * weights).sum(axis=1) % 10) % 10


def digits_to_strings(digits: npt.NDArray[np.int64]) -> list[str]:
    """Turn rows of digits into strings, e.g. ``[[1, 2], [3, 4]]`` into ``["12", "34"]``."""
    width = digits.shape[1]
    as_bytes = (digits.astype(np.uint8) + ord("0")).tobytes()
    return [as_bytes[i : i + width].decode("ascii") for i in range(0, len(as_bytes), width)]
