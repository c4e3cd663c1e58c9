"""Vectorised checks GX has no built-in for: SIRET Luhn, French VAT key, French postcodes, cp1252, invoice totals.

Each ``*_valid`` function takes a pandas Series and returns a nullable boolean Series on the same index:
``True`` valid, ``False`` invalid, ``<NA>`` when the check does not apply (blank value, foreign country or VAT
number). GX column-map expectations skip nulls, so ``<NA>`` rows are neither passed nor failed: a missing SIRET is
not an invalid SIRET. The ``explain_*`` functions build the detail of a reason for the (few) failing values only.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import numpy as np
import pandas as pd

from sage_sync.mapping import sage_values

LA_POSTE_SIREN = "356000000"
"""La Poste's establishments break the Luhn rule: their SIRET is valid when its digit sum is a multiple of 5."""

FR_POSTCODE = r"(?:0[1-9]|[1-8]\d|9[0-5])\d{3}|97\d{3}|98[04-9]\d{2}"
"""Metropolitan France (01-95, Corsica 20xxx included), overseas departments 97xxx, Monaco 980xx and the
overseas collectivities 984xx-989xx."""

FR_VAT = r"FR[0-9A-HJ-NP-Z]{2}\d{9}"
"""``FR`` + a two-character key (digits, or letters for the rare alphanumeric keys) + the 9-digit SIREN."""


def _text(values: pd.Series) -> pd.Series:
    """The values as a nullable string Series with spaces removed (identifiers are often typed with spaces)."""
    return values.astype("string").str.replace(" ", "", regex=False)


def _blank(text: pd.Series) -> np.ndarray:
    return (text.isna() | (text.str.len() == 0)).to_numpy(dtype=bool, na_value=True)


def _digits(strings: pd.Series, width: int) -> np.ndarray:
    """Turn strings of exactly ``width`` ASCII digits into an ``(n, width)`` integer matrix in one pass."""
    raw = "".join(strings.tolist()).encode("ascii")
    return np.frombuffer(raw, dtype=np.uint8).reshape(-1, width).astype(np.int64) - ord("0")


def siret_valid(values: pd.Series) -> pd.Series:
    """Tell per value whether it is a valid SIRET: 14 digits passing Luhn (La Poste: digit sum multiple of 5)."""
    text = _text(values)
    blank = _blank(text)
    result = pd.Series(pd.array(np.where(blank, pd.NA, False), dtype="boolean"), index=values.index)
    well_formed = text.str.fullmatch(r"\d{14}").to_numpy(dtype=bool, na_value=False)
    positions = np.flatnonzero(well_formed)
    if len(positions):
        digits = _digits(text.iloc[positions], 14)
        # Luhn doubles every second digit from the right: with 14 digits those are the even positions from the left.
        weighted = digits.copy()
        weighted[:, ::2] *= 2
        weighted[weighted > 9] -= 9
        luhn = weighted.sum(axis=1) % 10 == 0
        la_poste = (digits[:, :9] == np.array([int(c) for c in LA_POSTE_SIREN])).all(axis=1)
        valid = np.where(la_poste, digits.sum(axis=1) % 5 == 0, luhn)
        result.iloc[positions] = valid
    return result


def fr_vat_key(siren: np.ndarray) -> np.ndarray:
    """The numeric key of French VAT numbers: ``(12 + 3 × (SIREN mod 97)) mod 97``."""
    return (12 + 3 * (siren % 97)) % 97


def fr_vat_valid(values: pd.Series) -> pd.Series:
    """Tell per value whether a French VAT number is well formed and carries the right key.

    Numbers of other countries (not starting with ``FR``) are ``<NA>``: their check digits follow other rules.
    Alphanumeric keys cannot be recomputed from the SIREN alone, so a well-formed one is accepted.
    """
    text = _text(values).str.upper()
    not_french = ~text.str.startswith("FR").to_numpy(dtype=bool, na_value=False)
    result = pd.Series(
        pd.array(np.where(_blank(text) | not_french, pd.NA, False), dtype="boolean"), index=values.index
    )
    well_formed = text.str.fullmatch(FR_VAT).to_numpy(dtype=bool, na_value=False)
    numeric = text.str.fullmatch(r"FR\d{11}").to_numpy(dtype=bool, na_value=False)
    result.iloc[np.flatnonzero(well_formed & ~numeric)] = True
    positions = np.flatnonzero(numeric)
    if len(positions):
        digits = text.iloc[positions].str.slice(2).astype("int64").to_numpy()
        key, siren = digits // 1_000_000_000, digits % 1_000_000_000
        result.iloc[positions] = key == fr_vat_key(siren)
    return result


def explain_fr_vat(value: str) -> str:
    """Say why one French VAT number failed: its shape or its key (with the expected key)."""
    text = value.replace(" ", "").upper()
    if not re.fullmatch(FR_VAT, text):
        return "is not FR + a 2-character key + a 9-digit SIREN"
    siren = int(text[4:])
    return f"has key {text[2:4]} but SIREN {text[4:]} gives key {fr_vat_key(np.array([siren]))[0]:02d}"


def fr_postcode_valid(
    postcodes: pd.Series, countries: pd.Series | None, france_names: Iterable[str]
) -> pd.Series:
    """Tell per row whether the postcode is French (5 digits, see :data:`FR_POSTCODE`).

    Only rows whose country is France (any of ``france_names``, case-insensitive) or empty are checked; other rows
    and blank postcodes are ``<NA>``.
    """
    text = postcodes.astype("string").str.strip()
    applies = ~_blank(text)
    if countries is not None:
        country = countries.astype("string").str.strip().str.casefold()
        names = {n.casefold() for n in france_names}
        applies &= (country.isna() | (country == "") | country.isin(names)).to_numpy(
            dtype=bool, na_value=True
        )
    valid = text.str.fullmatch(FR_POSTCODE).to_numpy(dtype=bool, na_value=False)
    return pd.Series(pd.array(np.where(applies, valid, pd.NA), dtype="boolean"), index=postcodes.index)


def cp1252_valid(values: pd.Series) -> pd.Series:
    """Tell per value whether Sage can store its characters (``<NA>`` when null); see :mod:`sage_values`."""
    return sage_values.storable(values)


def explain_cp1252(value: str) -> str:
    """Name the first character of ``value`` that Sage cannot store, with its code point."""
    char = sage_values.first_unstorable(value)
    return "is storable in Sage" if char is None else sage_values.why_unstorable(char)


def invoice_line_sums(headers: pd.DataFrame, lines: pd.DataFrame) -> pd.DataFrame:
    """Per invoice header (same index): the sums of its lines' HT and TTC and its worst line VAT gap.

    ``line_vat_gap`` is, over the invoice's lines, the largest ``|TTC - HT × (1 + rate / 100)|``: per-line VAT is
    rounded to the cent, so a consistent line stays within 0.005. Invoices without lines get zero sums.
    """
    ht = lines["amount_ht"].astype("Float64").fillna(0)
    ttc = lines["amount_ttc"].astype("Float64").fillna(0)
    rate = lines["vat_rate"].astype("Float64").fillna(0)
    gap = (ttc - ht * (1 + rate / 100)).abs()
    per_line = pd.DataFrame({"piece": lines["piece"].astype("string"), "ht": ht, "ttc": ttc, "gap": gap})
    sums = per_line.groupby("piece", sort=False).agg(
        lines_ht=("ht", "sum"), lines_ttc=("ttc", "sum"), line_vat_gap=("gap", "max")
    )
    aligned = sums.reindex(headers["piece"].astype("string").to_numpy())
    aligned.index = headers.index
    return aligned.fillna({"lines_ht": 0.0, "lines_ttc": 0.0, "line_vat_gap": 0.0})


def worst_line(lines: pd.DataFrame, piece: str) -> str:
    """Describe the line of invoice ``piece`` whose TTC is furthest from HT plus VAT, for a reason sentence."""
    own = lines[lines["piece"].astype("string") == piece]
    if own.empty:
        return "has no lines"
    ht = own["amount_ht"].astype("Float64").fillna(0)
    ttc = own["amount_ttc"].astype("Float64").fillna(0)
    rate = own["vat_rate"].astype("Float64").fillna(0)
    gap = (ttc - ht * (1 + rate / 100)).abs()
    at = int(np.argmax(gap.to_numpy(dtype=float)))
    row = own.iloc[at]
    line = row["line_id"] if "line_id" in own.columns else at + 1
    return (
        f"line {line}: TTC {float(ttc.iloc[at]):.2f} ≠ HT {float(ht.iloc[at]):.2f} "
        f"+ {float(rate.iloc[at]):g} % VAT"
    )


def first_line_failing(
    headers: pd.DataFrame, lines: pd.DataFrame, bad: pd.Series, join: str = "piece"
) -> pd.Series:
    """Per invoice header (same index): the ``line_id`` of its first line where ``bad`` is True, else ``<NA>``.

    ``bad`` is a boolean Series aligned with ``lines``. One grouped pass over the failing lines only.
    """
    failing = lines.loc[bad.fillna(False).to_numpy(dtype=bool), [join, "line_id"]]
    first = failing.groupby(failing[join].astype("string"), sort=False)["line_id"].first()
    aligned = first.reindex(headers[join].astype("string").to_numpy())
    return pd.Series(aligned.to_numpy(), index=headers.index, dtype="object")
