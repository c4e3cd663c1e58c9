"""Derived columns: the vectorised Python checks a suite's ``check:`` entries name, and how each explains a failure.

Decision (ADR 0007): rules GX has no built-in for (Luhn, VAT key, cp1252, cross-frame invoice totals, membership
in a large set passed as context) are computed here in one vectorised pass into a column ``_q_<expectation id>``,
and GX judges that column with an ordinary expectation (``in_set [true]`` or ``between``). GX thus records every
rule in its results and Data Docs, while the arithmetic stays plain, testable Python.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from sage_sync.errors import ConfigurationError
from sage_sync.quality import checks


@dataclass
class CheckInput:
    """What a check sees: the frame, the expectation's column and params, the caller's context, a per-call memo."""

    frame: pd.DataFrame
    column: str | None
    params: Mapping[str, Any]
    context: Mapping[str, Any]
    memo: dict[str, Any] = field(default_factory=dict)

    def series(self) -> pd.Series:
        """The expectation's column."""
        if self.column is None:
            raise ConfigurationError("this check needs a `column`")
        return self.frame[self.column]

    def texts(self, positions: Sequence[int]) -> list[str]:
        """The column's values at ``positions`` as text ("" for nulls), read in one vectorised step."""
        values = self.series().iloc[list(positions)].astype("string").fillna("")
        return [str(v) for v in values.tolist()]


Compute = Callable[[CheckInput], pd.Series]
Explain = Callable[[CheckInput, Sequence[int]], list[str]]
"""Details of why the rows at the given positions failed (called once per expectation, failing rows only)."""


@dataclass(frozen=True)
class Check:
    """A named vectorised check: ``compute`` builds the derived column; ``explain`` details one failing row."""

    compute: Compute
    explain: Explain | None = None
    context: tuple[str, ...] = ()


def _siret_detail(inp: CheckInput, positions: Sequence[int]) -> list[str]:
    out = []
    for text in inp.texts(positions):
        digits = text.replace(" ", "")
        out.append("fails the Luhn check" if len(digits) == 14 and digits.isdigit() else "is not 14 digits")
    return out


def _postcode(inp: CheckInput) -> pd.Series:
    country_column = str(inp.params.get("country_column", "country"))
    countries = inp.frame[country_column] if country_column in inp.frame.columns else None
    names = inp.params.get("france_names", ["France"])
    return checks.fr_postcode_valid(inp.series(), countries, names)


def _known(inp: CheckInput) -> pd.Series:
    """Membership in a set given as context (e.g. the accounts' codes): too large to inline into a GX suite."""
    known = inp.context[str(inp.params["context_key"])]
    values = inp.series().astype("string")
    found = values.isin(pd.Index(list(known), dtype="string")).to_numpy(dtype=bool)
    return pd.Series(
        pd.array(np.where(values.isna().to_numpy(), pd.NA, found), dtype="boolean"), index=values.index
    )


def _line_sums(inp: CheckInput) -> pd.DataFrame:
    if "line_sums" not in inp.memo:
        inp.memo["line_sums"] = checks.invoice_line_sums(inp.frame, inp.context["lines"])
    sums: pd.DataFrame = inp.memo["line_sums"]
    return sums


def _gap(header_column: str, sum_column: str) -> Compute:
    def compute(inp: CheckInput) -> pd.Series:
        header = inp.frame[header_column].astype("Float64")
        return (header - _line_sums(inp)[sum_column]).round(2)

    return compute


def _gap_detail(sum_column: str) -> Explain:
    def explain(inp: CheckInput, positions: Sequence[int]) -> list[str]:
        sums = _line_sums(inp)[sum_column].iloc[list(positions)]
        return [f"{float(v):.2f}" for v in sums.tolist()]

    return explain


def _line_vat(inp: CheckInput) -> pd.Series:
    tolerance = float(inp.params.get("tolerance", 0.01))
    ok = (_line_sums(inp)["line_vat_gap"] <= tolerance + 1e-9).astype("boolean")
    ok.index = inp.frame.index
    return ok


def _line_vat_detail(inp: CheckInput, positions: Sequence[int]) -> list[str]:
    pieces = inp.frame["piece"].iloc[list(positions)].astype("string").tolist()
    return [checks.worst_line(inp.context["lines"], str(piece)) for piece in pieces]


def _own_line_gap(inp: CheckInput) -> pd.Series:
    """Per invoice line: TTC minus (HT plus VAT at the line's rate), rounded to the cent."""
    ht = inp.frame["amount_ht"].astype("Float64")
    rate = inp.frame["vat_rate"].astype("Float64").fillna(0)
    return (inp.frame["amount_ttc"].astype("Float64") - ht * (1 + rate / 100)).round(2)


def _own_line_gap_detail(inp: CheckInput, positions: Sequence[int]) -> list[str]:
    rows = inp.frame.iloc[list(positions)]
    return [
        f"HT {float(ht):.2f} + {float(rate):g} % VAT"
        for ht, rate in zip(rows["amount_ht"].fillna(0), rows["vat_rate"].fillna(0), strict=True)
    ]


CHECKS: dict[str, Check] = {
    "siret_luhn": Check(lambda inp: checks.siret_valid(inp.series()), _siret_detail),
    "fr_vat_key": Check(
        lambda inp: checks.fr_vat_valid(inp.series()),
        lambda inp, positions: [checks.explain_fr_vat(t) for t in inp.texts(positions)],
    ),
    "fr_postcode": Check(_postcode),
    "cp1252": Check(
        lambda inp: checks.cp1252_valid(inp.series()),
        lambda inp, positions: [checks.explain_cp1252(t) for t in inp.texts(positions)],
    ),
    "known_value": Check(_known, context=("$context_key",)),
    "invoice_ht_gap": Check(_gap("total_ht", "lines_ht"), _gap_detail("lines_ht"), context=("lines",)),
    "invoice_ttc_gap": Check(_gap("total_ttc", "lines_ttc"), _gap_detail("lines_ttc"), context=("lines",)),
    "invoice_line_vat": Check(_line_vat, _line_vat_detail, context=("lines",)),
    "line_vat_gap": Check(_own_line_gap, _own_line_gap_detail),
}


def context_names(check: str, params: Mapping[str, Any]) -> list[str]:
    """The context keys ``check`` needs (``$context_key``: the one its parameters name)."""
    return [str(params.get("context_key")) if k == "$context_key" else k for k in CHECKS[check].context]


def missing_context(check: str, params: Mapping[str, Any], context: Mapping[str, Any]) -> list[str]:
    """The context keys ``check`` needs that the caller did not pass."""
    return [k for k in context_names(check, params) if context.get(k) is None]
