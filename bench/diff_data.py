"""Deterministic Sage-like snapshot pairs for the snapshot-diff benchmark.

The rows look like ``F_DOCENTETE`` invoice headers as an ODBC extract gives them to pandas: the natural key is
(``DO_Domaine``, ``DO_Piece``), with piece numbers repeating across domains; text in pandas' default ``str``
dtype, smallints as ``int16``, amounts as exact pyarrow ``decimal128(24, 6)``, dates and timestamps as
``datetime64``, about 40 % of ``DO_Ref`` null. Past the 12 ``F_DOCENTETE`` columns, customer columns with
accented text and nulls are added (``CT_Intitule``, ``CT_Ville``, ``CT_EMail`` ...).

Churn is split evenly between deletes, updates and creates; updates post invoices (``DO_Type`` 6 -> 7, rule
I1), record payments (``DO_MontantRegle``) or change the customer's reference, and touch ``cbModification``.
This module only imports numpy, pandas and pyarrow, so every benchmark interpreter can load it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

KEY = ("DO_Domaine", "DO_Piece")
DEFAULT_SEED = 20261129
_DECIMAL = pa.decimal128(24, 6)
_NAMES = np.array(
    [
        "DUPONT", "MARTIN", "LEFEVRE", "OEUFSDORES", "BOULANGERIE", "GARAGEDELAGARE", "CAFEDUPORT", "SOCIETEGENERALE",
        "LHERMITTE", "DURAND", "MOREAU", "LAURENT", "SIMON", "MICHEL", "GARCIA", "ROUSSEL",
    ],
    dtype=object,
)  # fmt: skip
_COMPANIES = np.array(
    [
        "Œufs d'Or SARL", "Boulangerie Lefèvre", "Garage de la Gare", "Café du Port", "Société Générale d'Équipement",
        "L'Hermitte & Fils", "Durand Électricité", "Moreau Frères", "Ébénisterie Laurent", "Crème & Co",
    ],
    dtype=object,
)  # fmt: skip
_TOWNS = np.array(
    ["Paris", "Lyon CEDEX 03", "Ajaccio", "Saint-Denis", "Monaco", "Besançon", "Nîmes", "Orléans", "Évry"],
    dtype=object,
)
_EXTRA_COLUMNS = ("CT_Intitule", "CT_Ville", "CT_EMail", "CT_Telephone", "DO_Escompte", "DO_DateLivr")


def _decimal_column(scaled: np.ndarray) -> pd.Series:
    """Exact decimals from integers scaled by 10**6: the 16-byte little-endian two's complement buffer."""
    pairs = np.empty((len(scaled), 2), dtype=np.int64)
    pairs[:, 0] = scaled
    pairs[:, 1] = np.where(scaled < 0, -1, 0)
    array = pa.Array.from_buffers(_DECIMAL, len(scaled), [None, pa.py_buffer(pairs.tobytes())])
    return pd.Series(pd.array(array, dtype=pd.ArrowDtype(_DECIMAL)))


def _with_nulls(values: np.ndarray, nulls: np.ndarray) -> np.ndarray:
    out = values.astype(object)
    out[nulls] = None
    return out


def _arrays(
    rng: np.random.Generator, domains: np.ndarray, numbers: np.ndarray, columns: int
) -> dict[str, np.ndarray]:
    """Column name -> numpy array; decimals as integers scaled by 10**6, text as objects with None for null."""
    rows = len(numbers)
    cents_ht = rng.integers(1_000, 5_000_000, rows)
    cents_ttc = np.round(cents_ht * 1.2).astype(np.int64)
    paid = rng.random(rows) < 0.6
    dates = np.datetime64("2020-01-01") + (numbers // 40).astype("timedelta64[D]")
    stamps = dates.astype("datetime64[m]") + rng.integers(8 * 60, 19 * 60, rows).astype("timedelta64[m]")
    customers = rng.integers(0, 50_000, rows)
    refs = np.char.add("CMD-", rng.integers(0, 999_999, rows).astype(str))
    data: dict[str, np.ndarray] = {
        "DO_Domaine": domains.astype(np.int16),
        "DO_Piece": np.char.add(
            np.where(domains == 0, "FA", "FF"), np.char.zfill(numbers.astype(str), 8)
        ).astype(object),
        "DO_Type": np.where(rng.random(rows) < 0.7, 7, 6).astype(np.int16),
        "DO_Date": dates.astype("datetime64[s]"),
        "DO_Ref": _with_nulls(refs, rng.random(rows) < 0.4),
        "DO_Tiers": np.char.add(
            _NAMES[customers % len(_NAMES)].astype(str), (customers // 16).astype(str)
        ).astype(object),
        "DO_Provenance": np.where(rng.random(rows) < 0.03, 2, 0).astype(np.int16),
        "DO_TotalHT": cents_ht * 10_000,
        "DO_TotalTTC": cents_ttc * 10_000,
        "DO_NetAPayer": cents_ttc * 10_000,
        "DO_MontantRegle": np.where(paid, cents_ttc, 0) * 10_000,
        "cbModification": stamps.astype("datetime64[us]"),
    }
    for extra in range(max(0, columns - len(data))):
        base = _EXTRA_COLUMNS[extra % len(_EXTRA_COLUMNS)]
        name = base if extra < len(_EXTRA_COLUMNS) else f"{base}_{extra // len(_EXTRA_COLUMNS)}"
        if base == "CT_Intitule":
            data[name] = _COMPANIES[customers % len(_COMPANIES)]
        elif base == "CT_Ville":
            data[name] = _with_nulls(_TOWNS[customers % len(_TOWNS)], rng.random(rows) < 0.05)
        elif base == "CT_EMail":
            emails = np.char.add(np.char.add("contact", customers.astype(str)), "@exemple.fr")
            data[name] = _with_nulls(emails, rng.random(rows) < 0.3)
        elif base == "CT_Telephone":
            data[name] = np.char.add("+33 1 ", np.char.zfill(customers.astype(str), 8)).astype(object)
        elif base == "DO_Escompte":
            data[name] = np.where(rng.random(rows) < 0.9, 0.0, rng.integers(1, 300, rows) / 100)
        else:
            data[name] = (dates + rng.integers(0, 30, rows).astype("timedelta64[D]")).astype("datetime64[s]")
    return {name: data[name] for name in list(data)[: max(columns, len(KEY) + 1)]}


def _frame(arrays: dict[str, np.ndarray]) -> pd.DataFrame:
    columns: dict[str, pd.Series] = {}
    for name, values in arrays.items():
        if name in _DECIMAL_COLUMNS:
            columns[name] = _decimal_column(values)
        elif values.dtype == object:
            columns[name] = pd.Series(values, dtype="str")
        else:
            columns[name] = pd.Series(values)
    return pd.DataFrame(columns)


_DECIMAL_COLUMNS = frozenset({"DO_TotalHT", "DO_TotalTTC", "DO_NetAPayer", "DO_MontantRegle"})


def make_snapshots(
    rows: int, churn: float = 0.01, columns: int = 12, seed: int = DEFAULT_SEED
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, int]]:
    """A previous snapshot of ``rows`` rows and the current extract after ``churn`` (a fraction of ``rows``).

    Returns ``(previous, current, expected)`` where ``expected`` holds the planted created / updated / deleted /
    unchanged counts, so each approach's answer can be checked. The current extract keeps the previous row
    order, without the deleted rows, with the new invoices appended (as an ``ORDER BY`` on the key would).
    """
    if rows < 1 or not 0 <= churn <= 1 or columns < len(KEY) + 1:
        raise ValueError(f"rows must be >= 1, churn in [0, 1], columns >= {len(KEY) + 1}")
    rng = np.random.default_rng(seed)
    domains = np.where(rng.random(rows) < 0.9, 0, 1)
    numbers = np.zeros(rows, dtype=np.int64)
    for domain in (0, 1):
        mask = domains == domain
        numbers[mask] = np.arange(1, int(mask.sum()) + 1)
    before = _arrays(rng, domains, numbers, columns)

    per_kind = int(round(rows * churn / 3))
    touched = rng.choice(rows, size=min(rows, 2 * per_kind), replace=False)
    deleted, updated = np.sort(touched[:per_kind]), np.sort(touched[per_kind:])
    after = {name: values.copy() for name, values in before.items()}
    # A third post the invoice or undo it (DO_Type 6 <-> 7, rule I1), a third record a payment, a third change
    # the customer's reference; with fewer columns, DO_Type (always present) takes the place of the missing one.
    kinds = np.arange(len(updated)) % 3
    posting = updated[
        (kinds == 0)
        | ((kinds == 1) & ("DO_MontantRegle" not in after))
        | ((kinds == 2) & ("DO_Ref" not in after))
    ]
    after["DO_Type"][posting] = np.where(before["DO_Type"][posting] == 7, 6, 7)
    if "DO_MontantRegle" in after:
        after["DO_MontantRegle"][updated[kinds == 1]] += 12_500_000
    if "DO_Ref" in after:
        after["DO_Ref"][updated[kinds == 2]] = [f"REF-{i}" for i in range(int((kinds == 2).sum()))]
    if "cbModification" in after:
        after["cbModification"][updated] += np.timedelta64(5, "m")
    kept = np.ones(rows, dtype=bool)
    kept[deleted] = False
    top = int(numbers[domains == 0].max(initial=0))
    created = _arrays(
        rng, np.zeros(per_kind, dtype=np.int64), np.arange(top + 1, top + 1 + per_kind), columns
    )
    after = {name: np.concatenate([values[kept], created[name]]) for name, values in after.items()}
    expected = {
        "created": per_kind,
        "updated": len(updated),
        "deleted": len(deleted),
        "unchanged": rows - len(deleted) - len(updated),
    }
    return _frame(before), _frame(after), expected
