"""Column-oriented table data for the stand-in generator, and the small numeric helpers it shares.

Tables are kept as numpy columns (``object`` arrays for text and nullable values) so that a million invoice
lines are built with array operations and only turned into Python tuples chunk by chunk, at insert time.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

REFERENCE_DATE = np.datetime64("2026-06-30", "D")
"""Fixed 'today' of the demo dossier: the data never depends on the clock, so a seed always gives the same rows."""


@dataclass
class TableData:
    """The rows of one stand-in table, column by column (names exactly as in the schema)."""

    name: str
    columns: dict[str, npt.NDArray[Any]] = field(default_factory=dict)

    def __len__(self) -> int:
        """Return the number of rows."""
        return len(next(iter(self.columns.values()))) if self.columns else 0

    def rows(self, start: int = 0, stop: int | None = None) -> list[tuple[Any, ...]]:
        """Return rows ``start:stop`` as tuples of plain Python values (``None`` for NULL), in column order."""
        parts = [column[start:stop].tolist() for column in self.columns.values()]
        return list(zip(*parts, strict=True))


def obj(values: Any) -> npt.NDArray[np.object_]:
    """Make a 1-D ``object`` array (text or nullable values) from any sequence."""
    array = np.empty(len(values), dtype=object)
    array[:] = values
    return array


def pick(rng: np.random.Generator, n: int, share: float, minimum: int = 1) -> npt.NDArray[np.bool_]:
    """Mark exactly ``round(share × n)`` (at least ``minimum``) random rows, so small dossiers keep every case."""
    mask = np.zeros(n, dtype=bool)
    if n == 0:
        return mask
    count = min(n, max(minimum, round(share * n)))
    mask[rng.permutation(n)[:count]] = True
    return mask


def round_half_up(
    numerator: npt.NDArray[np.int64], denominator: int | npt.NDArray[np.int64]
) -> npt.NDArray[np.int64]:
    """Divide non-negative integers and round half up, the commercial rounding of French invoices."""
    return (2 * numerator + denominator) // (2 * np.asarray(denominator))


def cents_to_amounts(cents: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
    """Turn integer cents into euros; the nearest double prints back as the exact 2-decimal amount."""
    return cents / 100


def minutes_to_timestamps(minutes: npt.NDArray[np.int64]) -> npt.NDArray[np.object_]:
    """Turn minutes since 1970 into ``YYYY-MM-DD HH:MM:SS`` strings (minute precision, like Sage's SmallDateTime)."""
    text = np.datetime_as_string(minutes.astype("datetime64[m]"), unit="s")
    return obj([value.replace("T", " ") for value in text.tolist()])


def days_to_dates(days: npt.NDArray[np.int64]) -> npt.NDArray[np.object_]:
    """Turn days since 1970 into ``YYYY-MM-DD`` strings."""
    return obj(np.datetime_as_string(days.astype("datetime64[D]"), unit="D").tolist())


def fold_ascii(text: str) -> str:
    """Strip accents and ligatures ("Lecœur" → "Lecoeur"): account codes, e-mail and web addresses are ASCII."""
    text = text.replace("œ", "oe").replace("Œ", "OE").replace("æ", "ae").replace("Æ", "AE")
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")


def slug(text: str) -> str:
    """Make a lower-case ASCII slug ("L'Œuf d'Or" → "l-oeuf-d-or") for e-mail domains and web sites."""
    folded = fold_ascii(text).lower()
    out = "".join(c if c.isalnum() else "-" for c in folded)
    return "-".join(part for part in out.split("-") if part)
