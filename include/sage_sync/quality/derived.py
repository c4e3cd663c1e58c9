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
from sage_sync.mapping import sage_values
from sage_sync.mapping.model import FieldMap
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


#: The line column each line rule reads (a lines frame without it: the rule does not apply).
LINE_RULE_COLUMN = {
    "article_known": "article_ref",
    "quantity_plausible": "quantity",
    "price_plausible": "unit_price",
    "no_negative_quantity": "quantity",
    "text_storable": "designation",
}


def _lines_failing(inp: CheckInput) -> pd.Series:
    """Per invoice: the first of its lines that breaks this check's line rule (``<NA>`` when none does)."""
    lines: pd.DataFrame = inp.context["lines"]
    rule = str(inp.params["line_rule"])
    if rule not in LINE_RULE_COLUMN:
        raise ConfigurationError(f"unknown line rule {rule!r}; expected one of {sorted(LINE_RULE_COLUMN)}")
    if LINE_RULE_COLUMN[rule] not in lines.columns:
        return pd.Series(pd.NA, index=inp.frame.index, dtype="object")
    if rule == "article_known":
        refs = lines["article_ref"].astype("string")
        known = pd.Index(list(inp.context["article_refs"]), dtype="string")
        bad = refs.notna() & ~refs.isin(known)
    elif rule in ("quantity_plausible", "price_plausible"):
        column = "quantity" if rule == "quantity_plausible" else "unit_price"
        limit = float(inp.context["limits"][str(inp.params["limit"])])
        bad = lines[column].astype("Float64").abs() > limit
    elif rule == "no_negative_quantity":
        bad = lines["quantity"].astype("Float64") < 0
    else:  # text_storable
        bad = ~checks.cp1252_valid(lines["designation"]).fillna(True)
    memo_key = f"lines_failing:{rule}"
    if memo_key not in inp.memo:
        inp.memo[memo_key] = checks.first_line_failing(inp.frame, lines, pd.Series(bad, index=lines.index))
    failing: pd.Series = inp.memo[memo_key]
    return failing


def _no_line_failing(inp: CheckInput) -> pd.Series:
    ok = _lines_failing(inp).isna()
    only = inp.params.get("unless_provenance")
    if only is not None and "provenance" in inp.frame.columns:
        ok |= (inp.frame["provenance"].astype("Int64") == int(only)).fillna(False)
    return ok.astype("boolean")


def _line_failing_detail(inp: CheckInput, positions: Sequence[int]) -> list[str]:
    lines: pd.DataFrame = inp.context["lines"]
    failing = _lines_failing(inp).iloc[list(positions)]
    by_id = lines.set_index("line_id")
    out = []
    for line_id in failing.tolist():
        row = by_id.loc[line_id]
        out.append(
            f"line {_plain(line_id)} (article {_plain(row.get('article_ref'))}, quantity "
            f"{_plain(row.get('quantity'))}, price {_plain(row.get('unit_price'))}, {str(row.get('designation'))!r})"
        )
    return out


def _plain(value: object) -> str:
    """A value in a reason sentence: numbers without a spurious ``.0``, 'none' for a missing value."""
    if value is None or value is pd.NA or (isinstance(value, float) and pd.isna(value)):
        return "none"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _storable_fields(inp: CheckInput) -> list[FieldMap]:
    """The text fields a ``sage_storable`` check covers, as mapping fields (name, Sage column, length)."""
    present = set(inp.frame.columns)
    return [
        FieldMap(name, "", "string", sage=sage, length=length)
        for name, (sage, length) in inp.params["sage_columns"].items()
        if name in present
    ]


def _storable(inp: CheckInput) -> pd.Series:
    """Per row: every covered text field fits its Sage column (length, characters: :mod:`sage_values`)."""
    ok = pd.Series(True, index=inp.frame.index, dtype="boolean")
    for f in _storable_fields(inp):
        values = inp.frame[f.name].astype("string")
        fits = sage_values.storable(values).fillna(True)
        if f.length is not None:
            fits &= (values.str.len() <= f.length).fillna(True)
        ok &= fits
    return ok


def _storable_detail(inp: CheckInput, positions: Sequence[int]) -> list[str]:
    fields = _storable_fields(inp)
    out = []
    for position in positions:
        row = inp.frame.iloc[position]
        problems = [
            f"{f.sage} {problem}"
            for f in fields
            if isinstance(row[f.name], str) and (problem := sage_values.text_problem(f, row[f.name]))
        ]
        out.append("; ".join(problems) or "fits")
    return out


def _date_between(inp: CheckInput) -> pd.Series:
    """Per row: the date lies between ``min`` and ``max`` (``<NA>`` when there is no date)."""
    dates = pd.to_datetime(inp.series(), errors="coerce")
    low, high = pd.Timestamp(str(inp.params["min"])), pd.Timestamp(str(inp.params["max"]))
    ok = (dates >= low) & (dates <= high)
    return ok.astype("boolean").mask(dates.isna())


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
    "invoice_lines": Check(_no_line_failing, _line_failing_detail, context=("lines", "$line_context")),
    "sage_storable": Check(_storable, _storable_detail),
    "date_between": Check(_date_between),
}


#: The context a line rule of the ``invoice_lines`` check reads besides the lines.
LINE_RULE_CONTEXT: dict[str, tuple[str, ...]] = {
    "article_known": ("article_refs",),
    "quantity_plausible": ("limits",),
    "price_plausible": ("limits",),
}


def context_names(check: str, params: Mapping[str, Any]) -> list[str]:
    """The context keys ``check`` needs.

    ``$context_key`` stands for the one its parameters name; ``$line_context`` for what its line rule reads.
    """
    out: list[str] = []
    for name in CHECKS[check].context:
        if name == "$context_key":
            out.append(str(params.get("context_key")))
        elif name == "$line_context":
            out.extend(LINE_RULE_CONTEXT.get(str(params.get("line_rule")), ()))
        else:
            out.append(name)
    return out


def missing_context(check: str, params: Mapping[str, Any], context: Mapping[str, Any]) -> list[str]:
    """The context keys ``check`` needs that the caller did not pass."""
    return [k for k in context_names(check, params) if context.get(k) is None]
