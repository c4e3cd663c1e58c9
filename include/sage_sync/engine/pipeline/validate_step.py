"""Step 2, validate: the entity's Great Expectations suite on the staged Sage snapshot (G3, G4).

Blocking failures quarantine their rows (with the failed expectation as reason, recorded by the commit step and
retried every run) and take them out of the plan input; warnings are reported; a table-level failure (duplicate
keys) stops the entity's load and the reason goes to the report. An empty or shrunken snapshot (a ``guard``
expectation) stops nothing: the planner withholds the entity's deletions (G4) and creations and updates go on. Data Docs are
rebuilt when the context names a folder. Stages ``input.jsonl`` (the plan input less quarantined rows) and
``quality.json``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd

from sage_sync.engine.inputs import PlanInput
from sage_sync.engine.pipeline.context import StepContext
from sage_sync.engine.snapshot import KEY, LINES_DIGEST
from sage_sync.engine.staging import EXTRACTED_INPUT, PLAN_INPUT
from sage_sync.engine.state import StateStore
from sage_sync.quality import REASONS_COLUMN, QualityReport, required_context, validate_entity


@dataclass(frozen=True)
class ValidateSummary:
    """What the suite found (the task's XCom)."""

    entity: str
    rows: int
    passed: int
    quarantined: int
    warnings: int
    stop_load: bool
    data_docs: str | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


def _known_account_codes(ctx: StepContext, state: StateStore) -> set[str]:
    """The accounts an invoice's customer may be (``customer_known``): every customer or prospect Sage has now.

    That is this run's accounts read, plus the committed and the quarantined accounts. An invoice of a customer that
    is in Sage but not (yet) in SSM, e.g. quarantined by a blocking check, is then deferred by the planner (I6),
    not quarantined as unknown.
    """
    codes = state.snapshot_keys("accounts") | set(state.quarantined("accounts"))
    if ctx.staging.has("accounts", "sage.parquet"):
        staged = ctx.staging.read_frame("accounts", "sage.parquet", columns=[KEY])
        codes |= set(staged[KEY].dropna().astype(str))
    return codes


def _article_refs(ctx: StepContext, state: StateStore) -> set[str]:
    """The articles an invoice line may name: every article Sage has now (this run's read, committed, quarantined)."""
    refs = state.snapshot_keys("products") | set(state.quarantined("products"))
    if ctx.staging.has("products", "sage.parquet"):
        staged = ctx.staging.read_frame("products", "sage.parquet", columns=[KEY])
        refs |= set(staged[KEY].dropna().astype(str))
    return refs


def _limits(ctx: StepContext, state: StateStore) -> dict[str, float]:
    """The plausibility limits of line quantities and prices (settings ``max_quantity``, ``max_unit_price``)."""
    return {"max_quantity": ctx.config.max_quantity, "max_unit_price": ctx.config.max_unit_price}


def _lines(ctx: StepContext, state: StateStore) -> pd.DataFrame | None:
    """The entity's staged lines (the invoice totals checks compare headers with them)."""
    return (
        ctx.staging.read_frame(ctx.name, "lines.parquet")
        if ctx.staging.has(ctx.name, "lines.parquet")
        else None
    )


#: Data some checks need beside the frame, by the context name the suites use (built only when a suite needs it).
CONTEXT: dict[str, Callable[[StepContext, StateStore], Any]] = {
    "account_codes": _known_account_codes,
    "article_refs": _article_refs,
    "limits": _limits,
    "lines": _lines,
}


def _changed_columns(inp: PlanInput) -> set[str] | None:
    """The columns the updated rows changed, when every row in scope is an update (None: judge every column).

    A change of an entity's lines (their digest) is a change of the ``lines`` the totals checks read.
    """
    if inp.created or inp.quarantined:
        return None
    changed = {column for columns in inp.updated.values() for column in columns}
    return changed | {"lines"} if LINES_DIGEST in changed else changed


def hold_quarantined(inp: PlanInput, keys: set[str]) -> dict[str, str]:
    """Take quarantined Sage rows out of the plan input; return the SSM ids to fetch again next run (G3, G5).

    A quarantined row is neither created, updated nor merged this run; its committed snapshot stays as it was, so
    the next run sees it as changed again and re-validates it. An SSM change paired with it is kept pending, so
    moving the watermark past it loses nothing.
    """
    held: dict[str, str] = {}
    for key in keys:
        inp.sage.pop(key, None)
        inp.ssm_by_ext.pop(key, None)
        if key in inp.created:
            inp.created.remove(key)
        inp.updated.pop(key, None)
        binding = inp.bindings.get(key)
        if binding is not None and binding.ssm_id is not None:
            held[str(binding.ssm_id)] = f"G3: Sage row {key} is quarantined"
    seen = {str(r.get("id")) for r in inp.ssm}
    return {sid: reason for sid, reason in held.items() if sid in seen}


def validate(ctx: StepContext, state: StateStore) -> ValidateSummary:
    """Validate the staged snapshot, take quarantined rows out of the plan input; return the quality counts."""
    extracted = ctx.staging.read_json(ctx.name, "extract.json")
    inp = ctx.staging.read_input(ctx.name, EXTRACTED_INPUT, records=False)  # the records stay staged
    frame = ctx.staging.read_frame(ctx.name, "sage.parquet")
    keys = frame[KEY].astype(str)
    # Rows that changed since the last run, and those still quarantined: an unchanged row passed when it was synced.
    changed = set(inp.created) | set(inp.updated) | set(inp.quarantined)
    scope = keys.isin(changed).to_numpy()
    if not scope.any() and len(frame) == inp.previous_size:
        report = QualityReport.nothing_to_check(ctx.entity.suite, ctx.name, frame, ctx.run_id)
        report.data_docs_path = ctx.data_docs.index() if ctx.data_docs is not None else None
    else:
        guard = ctx.config.guard(ctx.name)
        context = {
            name: CONTEXT[name](ctx, state) for name in required_context(ctx.entity.suite) if name in CONTEXT
        }
        report = validate_entity(
            ctx.entity.suite,
            frame.drop(columns=[KEY]),
            context=context,
            previous_row_count=inp.previous_size or None,
            data_docs=ctx.data_docs,
            run_id=ctx.run_id,
            shrink_ratio=guard.ratio,
            shrink_minimum=guard.minimum,
            scope=scope,
            # Row count and key uniqueness can only have changed when rows came or went.
            table_checks=bool(inp.created) or len(frame) != inp.previous_size,
            changed_columns=_changed_columns(inp),
        )
    blocking = {
        str(keys.loc[i]): str(reason) for i, reason in report.quarantined_rows[REASONS_COLUMN].items()
    }
    # Rows whose key is missing or shared, set aside by the extract (:mod:`~sage_sync.engine.bad_keys`).
    bad_keys: dict[str, str] = extracted.get("bad_keys") or {}
    warnings: dict[str, list[str]] = {}
    for issue in report.warnings:
        warnings.setdefault(issue.key, []).append(f"{issue.expectation}: {issue.reason}")
    failures = [f.to_dict() for f in report.table_failures]
    if blocking or bad_keys:
        drop = set(blocking) | set(bad_keys)
        held = hold_quarantined(inp, drop)
        ctx.staging.restage_input(ctx.name, EXTRACTED_INPUT, PLAN_INPUT, inp, drop)
    else:  # nothing held: the plan input is the extract's, byte for byte (not written again from its objects)
        held = {}
        ctx.staging.copy(ctx.name, EXTRACTED_INPUT, PLAN_INPUT)
    ctx.staging.write_json(
        ctx.name,
        "quality.json",
        {
            "report": report.to_dict(limit=200),
            "stop_load": bool(failures),
            "table_failures": failures,
            "guard_findings": [f.to_dict() for f in report.guard_findings],
            "blocking": {**{k: v for k, v in blocking.items() if k in changed}, **bad_keys},
            "warnings": {k: "; ".join(v) for k, v in warnings.items() if k in changed},
            "held_ssm_ids": held,
            "data_docs_path": report.data_docs_path,
            "dry_run": ctx.flags.dry_run,
        },
    )
    return ValidateSummary(
        entity=ctx.name,
        rows=report.row_count,
        passed=report.passed_count,
        quarantined=report.quarantined_count + len(bad_keys),
        warnings=report.warning_count,
        stop_load=bool(failures),
        data_docs=report.data_docs_path,
    )
