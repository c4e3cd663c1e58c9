"""Validate one entity's frame against its suite: quarantine blocking failures, report warnings, stop on table failures.

Rules: G3 (a row failing a blocking rule is quarantined with its reason; the other rows proceed; warnings are
reported, not blocking) and G4 (an empty snapshot, or one that shrank beyond the guard ratio, stops the entity's
load and says why).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sage_sync.errors import ConfigurationError
from sage_sync.quality import gx_runner
from sage_sync.quality.data_docs import DataDocsSite
from sage_sync.quality.derived import CHECKS, CheckInput, context_names, missing_context
from sage_sync.quality.report import REASONS_COLUMN, QualityIssue, QualityReport, TableFailure
from sage_sync.quality.spec import TABLE_SEVERITIES, ExpectationSpec, SuiteSpec, load_suite

log = logging.getLogger(__name__)

SHRINK_PARAMETER = "min_rows_after_shrink"
"""Suite parameter (``{"$PARAMETER": ...}`` in YAML) the G4 shrink expectation reads its minimum from."""


def min_rows_after_shrink(previous_row_count: int, ratio: float, minimum: int) -> int:
    """The fewest rows a snapshot may have: the previous count less what the guard lets one run delete.

    ``ratio`` is the largest share of the previous snapshot one run may delete and ``minimum`` the deletions always
    allowed (small dossiers), as in :class:`sage_sync.engine.config.Guard`.
    """
    allowed = max(minimum, math.floor(previous_row_count * ratio))
    return max(0, previous_row_count - allowed)


def _show(value: Any) -> str:
    """A value as it appears in a reason sentence: quoted text, plain numbers, 'empty' for nulls."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return "empty"
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, float | np.floating):
        return f"{float(value):.2f}"
    if isinstance(value, datetime) and (value.hour, value.minute, value.second, value.microsecond) == (
        0,
        0,
        0,
        0,
    ):
        return value.date().isoformat()  # a Sage date (a pandas Timestamp is a datetime)
    return str(value)


def _keys(frame: pd.DataFrame, key: tuple[str, ...]) -> list[str]:
    """One readable key per row ("C0001", "C0001/2"); rows without any key part get their row number."""
    present = [k for k in key if k in frame.columns]
    if not present:
        return [f"row {i + 1}" for i in range(len(frame))]
    parts = [frame[k].astype("string").fillna("?").tolist() for k in present]
    keys = ["/".join(p) for p in zip(*parts, strict=True)]
    return [k if set(k) - {"?", "/"} else f"row {i + 1} (no key)" for i, k in enumerate(keys)]


def _exception_message(info: Mapping[str, Any] | None) -> str | None:
    """The first error GX caught while evaluating an expectation, or None.

    GX reports it either flat (``{"raised_exception": True, ...}``) or per failed metric (a dict of such dicts).
    """
    if not info:
        return None
    entries = [info, *(v for v in info.values() if isinstance(v, Mapping))]
    for entry in entries:
        if entry.get("raised_exception"):
            return str(entry.get("exception_message") or "unknown error").splitlines()[0]
    return None


class _Validation:
    """One call of :func:`validate_entity` (kept as an object so each step stays a small method)."""

    def __init__(
        self,
        spec: SuiteSpec,
        frame: pd.DataFrame,
        context: Mapping[str, Any],
        items: Sequence[ExpectationSpec],
    ) -> None:
        self.spec = spec
        self.items = list(items)
        # GX reports failing rows by index label; a fresh RangeIndex makes labels positions.
        self.work = frame.reset_index(drop=True)
        self.context = context
        self.memo: dict[str, Any] = {}
        self.skipped: list[str] = []
        self.broken: list[TableFailure] = []

    def active(self, previous_row_count: int | None) -> tuple[list[ExpectationSpec], pd.DataFrame]:
        """The expectations that can run on this frame, and the frame with their derived columns."""
        active: list[ExpectationSpec] = []
        derived: dict[str, pd.Series] = {}
        for item in self.items:
            missing = [c for c in item.data_columns if c not in self.work.columns]
            if missing:
                self.skipped.append(f"{item.id}: column {', '.join(missing)} not in the frame")
                continue
            if "previous_row_count" in item.needs and previous_row_count is None:
                self.skipped.append(f"{item.id}: no previous row count (first run)")
                continue
            if "previous_rows" in item.needs and not previous_row_count:
                # An entity that had no rows before (a new dossier, no invoice yet) may stay empty.
                self.skipped.append(f"{item.id}: the previous snapshot had no row")
                continue
            if item.check is not None:
                lacking = missing_context(item.check, item.params, self.context)
                if lacking:
                    self.skipped.append(f"{item.id}: context {', '.join(lacking)} not given")
                    continue
                inp = CheckInput(self.work, item.column, item.params, self.context, self.memo)
                try:
                    values = CHECKS[item.check].compute(inp)
                except (ValueError, TypeError, KeyError) as exc:
                    # Same stance as a GX evaluation error: a rule that cannot run stops the load.
                    reason = f"{item.column or 'table'}: could not be evaluated: {exc}"
                    self.broken.append(TableFailure(item.id, reason))
                    continue
                derived[str(item.gx_column)] = values.set_axis(self.work.index)
            active.append(item)
        frame = pd.concat([self.work, pd.DataFrame(derived)], axis=1) if derived else self.work
        return active, frame

    def reasons(self, item: ExpectationSpec, positions: list[int], keys: list[str]) -> list[str]:
        """The sentences saying why the rows at ``positions`` failed ``item`` (one pass over failing rows only)."""
        if item.column is not None:
            values = self.work[item.column].iloc[positions].astype(object).tolist()
        else:
            values = [None] * len(positions)
        details = [""] * len(positions)
        explain = CHECKS[item.check].explain if item.check is not None else None
        if explain is not None:
            inp = CheckInput(self.work, item.column, item.params, self.context, self.memo)
            details = explain(inp, positions)
        fixed = {
            "column": item.column or "",
            "sage": item.sage or item.column or "",
            "max_value": item.kwargs.get("max_value", ""),
            "min_value": item.kwargs.get("min_value", ""),
        }
        out = []
        for value, detail, pos in zip(values, details, positions, strict=True):
            shown = _show(value)
            length = 0 if shown == "empty" else len(str(value))
            out.append(
                item.reason.format_map(
                    {**fixed, "value": shown, "length": length, "detail": detail, "key": keys[pos]}
                )
            )
        return out

    def table_reason(self, item: ExpectationSpec, result: dict[str, Any], extra: dict[str, Any]) -> str:
        """The sentence saying why a table-level expectation stopped the load."""
        values = pd.unique(pd.Series([str(v) for v in result.get("unexpected_list") or []], dtype=object))
        shown = ", ".join(repr(v) for v in values[:5]) + (", …" if len(values) > 5 else "")
        fields = {
            "column": item.column or ", ".join(item.columns),
            "sage": item.sage or item.column or ", ".join(item.columns),
            "observed": result.get("observed_value", len(self.work)),
            "count": result.get("unexpected_count", 0),
            "distinct": len(values),
            "values": shown,
            "min_value": item.kwargs.get("min_value", ""),
            **extra,
        }
        return item.reason.format_map(fields)


def _reads(item: ExpectationSpec) -> frozenset[str]:
    """The columns and context data a row-level expectation's verdict depends on."""
    context = context_names(item.check, item.params) if item.check is not None else []
    return item.inputs | set(context)


def required_context(suite: str, suites_dir: Path | None = None) -> set[str]:
    """The context data (``account_codes``, ``lines``...) the checks of ``suite`` need beside the frame."""
    spec = load_suite(suite, suites_dir)
    return {
        name for item in spec.expectations if item.check for name in context_names(item.check, item.params)
    }


def validate_entity(
    entity: str,
    frame: pd.DataFrame,
    *,
    context: Mapping[str, Any] | None = None,
    previous_row_count: int | None = None,
    data_docs: DataDocsSite | None = None,
    run_id: str | None = None,
    shrink_ratio: float | None = None,
    shrink_minimum: int | None = None,
    suites_dir: Path | None = None,
    scope: Sequence[bool] | np.ndarray | None = None,
    table_checks: bool = True,
    changed_columns: set[str] | None = None,
) -> QualityReport:
    """Validate ``frame`` (canonical field names) against the quality suite ``entity``.

    Args:
        entity: the suite name: ``accounts``, ``contacts``, ``products``, ``invoices`` (Sage snapshots going to
            SSM), ``accounts_to_sage``, ``contacts_to_sage`` (SSM data written back to Sage).
        frame: the rows; their index is kept in ``passed`` and ``quarantined_rows``.
        context: data some checks need: ``account_codes`` (codes of known accounts, for invoices), ``lines``
            (the invoice lines frame, for the totals checks). A check whose context is missing is skipped and
            listed in ``report.skipped``.
        previous_row_count: rows of the previous snapshot (G4 shrink guard); ``None`` on a first run.
        data_docs: when given, the run's results are added to the GX file context of this site and its Data
            Docs rebuilt (and published, for a site served from an object store); ``report.data_docs_path`` is
            then the site's index.html.
        run_id: the run's name in GX results and Data Docs (the Airflow run id).
        shrink_ratio: largest share of the previous snapshot one run may lose (default: the suite's guard).
        shrink_minimum: row losses always allowed whatever the ratio (default: the suite's guard).
        suites_dir: a deployment's own suites folder (default: the packaged suites).
        scope: per row, whether its row-level expectations are evaluated (default: every row). The sync passes
            the rows that changed since the last run (and those still quarantined): an unchanged row passed when
            it was synced. Table-level expectations always see the whole frame.
        table_checks: False skips the table-level expectations (row count, unique keys): the sync passes False
            when the snapshot has exactly the rows it had, under the same keys.
        changed_columns: when every row in ``scope`` is an update, the columns that changed: only row-level
            expectations reading one of them are evaluated (the others passed when the rows were synced). The
            context names (``lines``, ``account_codes``) count as columns of the checks that read them.

    Returns:
        The :class:`QualityReport`: rows that proceed, rows quarantined with reasons, warnings, table failures.
    """
    started = time.perf_counter()
    spec = load_suite(entity, suites_dir)
    context = context or {}
    ratio = spec.guard_ratio if shrink_ratio is None else shrink_ratio
    minimum = spec.guard_minimum if shrink_minimum is None else shrink_minimum
    if not 0 <= ratio <= 1:
        raise ConfigurationError(f"shrink ratio of {entity!r} is {ratio}; expected a share between 0 and 1")
    min_rows = min_rows_after_shrink(previous_row_count or 0, ratio, minimum)
    gx_run_id = gx_runner.run_identifier(run_id)
    parameters = {SHRINK_PARAMETER: min_rows}
    positions = np.arange(len(frame)) if scope is None else np.flatnonzero(np.asarray(scope, dtype=bool))
    table_items = [e for e in spec.expectations if e.severity in TABLE_SEVERITIES] if table_checks else []
    table = _Validation(spec, frame, context, table_items)
    row_items = [e for e in spec.expectations if e.severity not in TABLE_SEVERITIES]
    if changed_columns is not None:
        row_items = [e for e in row_items if _reads(e) & changed_columns]
    rows = _Validation(spec, frame.iloc[positions], context, row_items)
    table_active, table_frame = table.active(previous_row_count)
    row_active, row_frame = rows.active(previous_row_count)
    if not len(row_frame):
        row_active = []  # nothing changed: no row to judge
    validated = []
    if table_active:
        validated.append(
            gx_runner.validate(spec, table_active, table_frame, parameters=parameters, run_id=gx_run_id)
        )
    if row_active:
        validated.append(
            gx_runner.validate(spec, row_active, row_frame, parameters=parameters, run_id=gx_run_id)
        )

    keys = _keys(rows.work, spec.key)
    by_id = {item.id: item for item in [*table_active, *row_active]}
    quarantined: list[QualityIssue] = []
    warnings: list[QualityIssue] = []
    failures: list[TableFailure] = [*table.broken, *rows.broken]
    guard_findings: list[TableFailure] = []
    reasons: dict[int, list[str]] = {}
    table_extra = {"previous": previous_row_count, "min_rows": min_rows, "ratio": ratio}
    for _, results in validated:
        for outcome in results.results:
            if outcome.success:
                continue
            config = outcome.expectation_config
            item = by_id[config.meta["id"] if config is not None and config.meta else ""]
            message = _exception_message(outcome.exception_info)
            if message is not None:
                # A rule GX could not evaluate (e.g. a numeric bound on a text column) must not let bad data through.
                failures.append(
                    TableFailure(item.id, f"{item.column or 'table'}: could not be evaluated: {message}")
                )
                continue
            if item.severity in TABLE_SEVERITIES:
                target_list = failures if item.severity == "table" else guard_findings
                target_list.append(
                    TableFailure(item.id, table.table_reason(item, outcome.result, table_extra))
                )
                continue
            target = quarantined if item.severity == "blocking" else warnings
            found = [int(p) for p in outcome.result.get("unexpected_index_list") or []]
            for pos, sentence in zip(found, rows.reasons(item, found, keys), strict=True):
                target.append(QualityIssue(keys[pos], item.id, item.severity, sentence, item.column))
                if item.severity == "blocking":
                    reasons.setdefault(int(positions[pos]), []).append(f"{item.id}: {sentence}")

    bad = np.zeros(len(frame), dtype=bool)
    bad[list(reasons)] = True
    quarantined_rows = frame.iloc[np.flatnonzero(bad)].copy()
    quarantined_rows[REASONS_COLUMN] = ["; ".join(reasons[p]) for p in np.flatnonzero(bad).tolist()]
    report = QualityReport(
        entity=entity,
        suite=spec.name,
        row_count=len(frame),
        passed=frame.iloc[np.flatnonzero(~bad)],
        quarantined_rows=quarantined_rows,
        quarantined=quarantined,
        warnings=warnings,
        table_failures=failures,
        guard_findings=guard_findings,
        skipped=[*table.skipped, *rows.skipped],
        run_id=run_id,
    )
    if data_docs is not None and not validated:
        report.data_docs_path = data_docs.index()
    if data_docs is not None and validated:
        suite, results = gx_runner.merged(spec, [*table_active, *row_active], [r for _, r in validated])
        report.data_docs_path = gx_runner.write_data_docs(data_docs, suite, results, batch_name=entity)
    report.seconds = time.perf_counter() - started
    log.info(
        "quality %s: %d rows (%d checked), %d passed, %d quarantined, %d warnings, %d table failures%s",
        entity,
        report.row_count,
        len(positions),
        report.passed_count,
        report.quarantined_count,
        report.warning_count,
        len(failures),
        " — load stopped" if report.stop_load else "",
    )
    return report
