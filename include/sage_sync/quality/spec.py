"""Quality suites as data: the YAML files in ``suites/`` parsed into validated, cached specifications.

A suite names the entity mapping it checks (for Sage column names and lengths), its key, and a list of
expectations. Each expectation has an ``id``, a ``severity`` and a ``reason`` template, and either

- ``expect``: a Great Expectations 1.x expectation, in snake case (``expect_column_values_to_match_regex``), with
  its ``column`` and other ``kwargs``; or
- ``check``: a vectorised Python check (see :mod:`sage_sync.quality.derived`) that writes a derived column, which
  a GX expectation then judges (by default ``expect_column_values_to_be_in_set`` with ``[true]``).

``generate: [{kind: storable}]`` adds one expectation that every mapped text field fits its Sage column (length,
cp1252, no control character): for data written to Sage, and for a Sage snapshot (a damaged dossier).
"""

from __future__ import annotations

import string
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Literal

import yaml

from sage_sync.errors import ConfigurationError
from sage_sync.mapping.loader import load_mapping
from sage_sync.mapping.model import FieldMap

Severity = Literal["blocking", "warning", "table", "guard"]
SEVERITIES: tuple[Severity, ...] = ("blocking", "warning", "table", "guard")
#: Severities judged on the whole table: ``table`` stops the entity's load, ``guard`` withholds only deletions (G4).
TABLE_SEVERITIES: tuple[Severity, ...] = ("table", "guard")
SUITES_DIR = Path(__file__).parent / "suites"
DERIVED_PREFIX = "_q_"
"""Derived columns carry this prefix; they never leave the quality layer."""

ROW_PLACEHOLDERS = frozenset({"value", "column", "sage", "length", "detail", "key", "max_value", "min_value"})
TABLE_PLACEHOLDERS = frozenset(
    {
        "column",
        "sage",
        "observed",
        "previous",
        "min_rows",
        "ratio",
        "count",
        "distinct",
        "values",
        "min_value",
    }
)
NEEDS = frozenset({"previous_row_count", "previous_rows"})


@dataclass(frozen=True)
class ExpectationSpec:
    """One expectation of a suite, with how bad its failure is and how to say it."""

    id: str
    severity: Severity
    expect: str
    reason: str
    column: str | None = None
    columns: tuple[str, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    check: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    needs: tuple[str, ...] = ()
    sage: str | None = None

    @property
    def gx_column(self) -> str | None:
        """The column GX looks at: the derived column for a ``check``, else the data column."""
        if self.check is not None:
            return DERIVED_PREFIX + self.id
        return self.column

    @property
    def data_columns(self) -> tuple[str, ...]:
        """The frame columns this expectation needs (it is skipped when one is missing)."""
        cols = [*self.columns]
        if self.column is not None:
            cols.insert(0, self.column)
        cols.extend(str(c) for c in self.params.get("columns", ()))
        return tuple(cols)

    @property
    def inputs(self) -> frozenset[str]:
        """Every column a row's verdict depends on (its data columns and the ``*_column`` its check reads)."""
        named = {str(v) for k, v in self.params.items() if k.endswith("_column")}
        return frozenset({*self.data_columns, *named, *self.params.get("sage_columns", {})})


@dataclass(frozen=True)
class SuiteSpec:
    """A suite: the expectations of one entity in one direction (Sage snapshot, or SSM data written to Sage)."""

    name: str
    mapping: str
    source: str
    key: tuple[str, ...]
    description: str
    guard_ratio: float
    guard_minimum: int
    expectations: tuple[ExpectationSpec, ...]

    def expectation(self, expectation_id: str) -> ExpectationSpec:
        """The expectation called ``expectation_id``."""
        for spec in self.expectations:
            if spec.id == expectation_id:
                return spec
        raise KeyError(f"suite {self.name!r} has no expectation {expectation_id!r}")


def _check_template(template: str, allowed: frozenset[str], where: str) -> str:
    for _, name, _, _ in string.Formatter().parse(template):
        if name is not None and name not in allowed:
            raise ConfigurationError(
                f"{where}: reason uses unknown placeholder {{{name}}}; allowed: {', '.join(sorted(allowed))}"
            )
    return template


def _fields(mapping: str, source: str) -> dict[str, FieldMap]:
    entity = load_mapping(mapping)
    if source not in entity.sources:
        raise ConfigurationError(f"mapping {mapping!r} has no source {source!r}")
    return {f.name: f for f in entity.sources[source].fields}


def _resolve_length(value: Any, fieldmap: FieldMap | None, where: str) -> Any:
    """``$length`` in kwargs stands for the Sage column length from the mapping (one place to change it)."""
    if value != "$length":
        return value
    if fieldmap is None or fieldmap.length is None:
        raise ConfigurationError(f"{where}: $length used on a field without a Sage length in the mapping")
    return fieldmap.length


def _expectation(raw: dict[str, Any], fields: dict[str, FieldMap], where: str) -> ExpectationSpec:
    from sage_sync.quality.derived import CHECKS  # derived imports this module's constants

    try:
        ident = str(raw["id"])
        severity = raw.get("severity", "blocking")
        reason = str(raw["reason"])
    except KeyError as exc:
        raise ConfigurationError(f"{where}: expectation without {exc.args[0]!r}") from exc
    where = f"{where}: expectation {ident!r}"
    if severity not in SEVERITIES:
        raise ConfigurationError(f"{where}: severity {severity!r}; expected one of {', '.join(SEVERITIES)}")
    check = raw.get("check")
    if check is not None and check not in CHECKS:
        raise ConfigurationError(f"{where}: unknown check {check!r}; known: {', '.join(sorted(CHECKS))}")
    expect = raw.get("expect") or ("expect_column_values_to_be_in_set" if check else None)
    if not expect or not str(expect).startswith("expect_"):
        raise ConfigurationError(f"{where}: needs `expect: expect_...` or `check:`")
    column = raw.get("column")
    fieldmap = fields.get(column) if column else None
    kwargs = {k: _resolve_length(v, fieldmap, where) for k, v in (raw.get("kwargs") or {}).items()}
    if check and "value_set" not in kwargs and expect == "expect_column_values_to_be_in_set":
        kwargs["value_set"] = [True]
    needs = tuple(raw.get("needs") or ())
    unknown_needs = set(needs) - NEEDS
    if unknown_needs:
        raise ConfigurationError(f"{where}: unknown needs {sorted(unknown_needs)}")
    allowed = TABLE_PLACEHOLDERS if severity in TABLE_SEVERITIES else ROW_PLACEHOLDERS
    return ExpectationSpec(
        id=ident,
        severity=severity,
        expect=str(expect),
        reason=_check_template(reason, allowed, where),
        column=column,
        columns=tuple(raw.get("columns") or ()),
        kwargs=kwargs,
        check=check,
        params=dict(raw.get("params") or {}),
        needs=needs,
        sage=fieldmap.sage if fieldmap else None,
    )


def _generated(raw: dict[str, Any], fields: dict[str, FieldMap], where: str) -> list[ExpectationSpec]:
    """``kind: storable``: one expectation that every mapped text field fits its Sage column (SPEC section 3).

    One derived check over all the fields rather than two expectations per field: the verdict is the same (the
    rule is :mod:`sage_sync.mapping.sage_values`'), and each Great Expectations evaluation costs its share.
    """
    kind = raw.get("kind")
    if kind != "storable":
        raise ConfigurationError(f"{where}: unknown generate kind {kind!r}; expected storable")
    # Fields whose length the suite checks itself, with its own sentence: only their characters are checked here.
    own_length = set(raw.get("own_length") or ())
    text = [f for f in fields.values() if f.dtype == "string" and f.sage]
    if not text:
        return []
    return [
        _expectation(
            {
                "id": raw.get("id", "sage_storable"),
                "severity": raw.get("severity", "blocking"),
                "check": "sage_storable",
                "params": {
                    # Not ``columns``: the frame need not hold them all (an update carries the fields it changes).
                    "sage_columns": {
                        f.name: [f.sage, None if f.name in own_length else f.length] for f in text
                    },
                },
                "reason": raw.get("reason", "{detail}"),
            },
            fields,
            where,
        )
    ]


def parse_suite(raw: dict[str, Any], where: str = "suite") -> SuiteSpec:
    """Build a :class:`SuiteSpec` from its YAML document, resolving mapping lengths and checking templates."""
    try:
        name = str(raw["suite"])
        mapping = str(raw["mapping"])
        key = tuple(str(k) for k in raw["key"])
    except (KeyError, TypeError) as exc:
        raise ConfigurationError(f"{where}: malformed suite ({exc!r})") from exc
    source = str(raw.get("source") or load_mapping(mapping).main.name)
    fields = _fields(mapping, source)
    expectations: list[ExpectationSpec] = []
    for item in raw.get("generate") or ():
        expectations.extend(_generated(item, fields, f"{where}: generate"))
    expectations.extend(_expectation(item, fields, where) for item in raw.get("expectations") or ())
    seen: set[str] = set()
    for spec in expectations:
        if spec.id in seen:
            raise ConfigurationError(f"{where}: expectation id {spec.id!r} appears twice")
        seen.add(spec.id)
    guard = raw.get("guard") or {}
    return SuiteSpec(
        name=name,
        mapping=mapping,
        source=source,
        key=key,
        description=str(raw.get("description", "")),
        guard_ratio=float(guard.get("ratio", 0.5)),
        guard_minimum=int(guard.get("minimum", 10)),
        expectations=tuple(expectations),
    )


def suite_names(folder: Path | None = None) -> list[str]:
    """The suites available in ``folder`` (default: the packaged ones)."""
    return sorted(p.stem for p in (folder or SUITES_DIR).glob("*.yaml"))


@cache
def load_suite(name: str, folder: Path | None = None) -> SuiteSpec:
    """Load (once per process) the suite called ``name`` from ``folder`` or the packaged defaults."""
    path = (folder or SUITES_DIR) / f"{name}.yaml"
    if not path.exists():
        raise ConfigurationError(
            f"no quality suite {name!r} in {path.parent}; known: {', '.join(suite_names(folder))}"
        )
    with path.open(encoding="utf-8") as fh:
        return parse_suite(yaml.safe_load(fh), where=str(path))
