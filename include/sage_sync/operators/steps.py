"""The five steps of an entity's task group: extract -> validate -> plan -> load -> commit.

Each ``run()`` is glue: it reads the previous step's files from the run's staging folder, calls the engine, the
quality layer or the adapters, writes its own file and returns a small summary (paths and counts) as XCom.

Safety of re-runs and backfills: every extract reads the *current* state of both systems (never data "as of" the
logical date), the plan is computed against the state store's committed snapshot, bindings and watermarks, and the
load refuses a staged plan once another run has committed the entity since it was made (``state_token``). So
re-running an old interval re-syncs today's data; it never writes older data over newer.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sage_sync.operators.base import EntityOperator, run_flags

if TYPE_CHECKING:
    import pandas as pd

    from sage_sync.engine.inputs import PlanInput
    from sage_sync.engine.plan import Plan
    from sage_sync.settings import Settings

log = logging.getLogger(__name__)

TWO_WAY = ("accounts", "contacts")


def _folder(settings: Settings, context: Any, entity: str) -> Path:
    return settings.staging_dir(str(context["run_id"]), entity)


def _input(path: Path) -> PlanInput:
    from sage_sync.engine.inputs import PlanInput
    from sage_sync.operators.staging import read_json

    return PlanInput.from_dict(read_json(path)["input"])


def _known_account_codes(state: Any, accounts_staged: Path) -> set[str]:
    """The accounts an invoice's customer may be (``customer_known``): every customer or prospect Sage has now.

    That is this run's accounts read, plus the committed and the quarantined accounts. An invoice of a customer that
    is in Sage but not (yet) in SSM, e.g. quarantined by a blocking check, is then deferred by the planner (I6),
    not quarantined as unknown.
    """
    import pandas as pd

    codes = set(state.snapshot("accounts")) | set(state.quarantined("accounts"))
    if accounts_staged.exists():
        codes |= set(pd.read_parquet(accounts_staged, columns=["code"])["code"].dropna().astype(str))
    return codes


def _plan(folder: Path) -> Plan:
    from sage_sync.engine.plan import Plan
    from sage_sync.operators.staging import read_json

    return Plan.from_dict(read_json(folder / "plan.json"))


class _CapturingSage:
    """Delegates to the real Sage side and keeps the frames of the last snapshot read (for validation)."""

    def __init__(self, side: Any) -> None:
        self.side = side
        self.frames: dict[str, pd.DataFrame] = {}

    def read_snapshot(self, entity: str) -> dict[str, pd.DataFrame]:
        self.frames = self.side.read_snapshot(entity)
        return self.frames

    def read_picture(self, path: str) -> bytes | None:
        return self.side.read_picture(path)  # type: ignore[no-any-return]

    def insert(self, entity: str, rows: list[dict[str, Any]]) -> Any:
        return self.side.insert(entity, rows)

    def update(self, entity: str, keys: list[dict[str, Any]], rows: list[dict[str, Any]]) -> Any:
        return self.side.update(entity, keys, rows)


class SageSyncExtractOperator(EntityOperator):
    """Read the entity's Sage snapshot (ODBC) and its SSM changes since the watermark (API, by ``dateUpdated``).

    Writes ``sage.parquet`` (the assembled Sage frame; invoice lines in ``lines.parquet``) and ``extract.json``
    (the engine's plan input). The SSM read starts ``overlap_seconds`` before the watermark against clock skew;
    ``full_reconcile`` compares both live sides instead (every SSM record is read; the engine's
    :mod:`~sage_sync.engine.reconcile` bases the plan on the live SSM records, to repair drift). C4/K1 codes are
    reserved here, except in a dry run.
    """

    ui_color = "#d6eaf8"

    def run(self, context: Any) -> dict[str, Any]:
        """Read both sides, stage the snapshot and the plan input; return counts."""
        from sage_sync.engine.reconcile import reconcile_summary
        from sage_sync.engine.run import extract
        from sage_sync.engine.snapshot import assemble
        from sage_sync.engine.state import now_iso
        from sage_sync.operators.sides import sage_side, ssm_side
        from sage_sync.operators.staging import state_token, write_json

        started = time.time()
        dry_run, full = run_flags(context)
        settings = self.settings()
        state = self.open_state(settings)
        folder = _folder(settings, context, self.entity)
        sage = _CapturingSage(sage_side(self.sage50_conn_id, settings))
        ssm = ssm_side(self.ssm_conn_id)
        token = state_token(state, self.entity)
        inp = extract(
            self.entity,
            sage,
            ssm,
            state,
            settings.sync_config(),
            lists=_value_lists(ssm, folder.parent),
            run_at=now_iso(),
            dry_run=dry_run,
            full_reconcile=full,
        )
        frame = assemble(self.entity, sage.frames, None)
        if "lines" in frame.columns:
            frame = frame.drop(columns=["lines"])
        _to_parquet(frame, folder / "sage.parquet")
        lines = sage.frames.get("lines")
        if self.entity == "invoices" and lines is not None:
            _to_parquet(lines, folder / "lines.parquet")
        api_calls = ssm.api_calls()
        write_json(
            folder / "extract.json",
            {
                "input": inp.to_dict(),
                "token": token,
                "api_calls": api_calls,
                "started": started,
                "dry_run": dry_run,
                "full_reconcile": full,
            },
        )
        summary = {
            "entity": self.entity,
            "staging": str(folder),
            "sage_rows": len(frame),
            "created": len(inp.created),
            "updated": len(inp.updated),
            "deleted": len(inp.deleted),
            "unchanged": inp.unchanged,
            "ssm_records": len(inp.ssm),
            "full_reconcile": reconcile_summary(inp) if full else None,
            "api_calls": api_calls,
        }
        log.info("extract %s: %s", self.entity, summary)
        return summary


def _to_parquet(frame: pd.DataFrame, path: Path) -> None:
    """Stage a frame as Parquet; object columns Arrow cannot type (mixed values) are staged as text."""
    import pyarrow as pa

    try:
        frame.to_parquet(path, index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        mixed = [c for c in frame.columns if frame[c].dtype == object]
        frame.astype({c: "string" for c in mixed}).to_parquet(path, index=False)


def _value_lists(ssm: Any, run_folder: Path) -> Any:
    """The SSM value lists, read once per run and shared by the entities' extract tasks (fewer API reads)."""
    from sage_sync.mapping.transforms import ValueLists
    from sage_sync.operators.staging import read_json, write_json

    path = run_folder / "value_lists.json"
    if path.exists():
        return ValueLists.from_dict(read_json(path))
    lists = ssm.value_lists()
    write_json(path, lists.to_dict())
    return lists


class SageSyncValidateOperator(EntityOperator):
    """Validate the Sage snapshot with the entity's Great Expectations suite (G3, G4).

    Blocking failures quarantine their rows (with the failed expectation as reason, recorded by the commit step and
    retried every run) and take them out of the plan's input; warnings are reported; a table-level failure (empty
    or shrunken snapshot, duplicate keys) stops the entity's load and the reason goes to the report. Data Docs are
    rebuilt under ``$SAGE_SYNC_HOME/data_docs``.
    """

    ui_color = "#fdebd0"

    def run(self, context: Any) -> dict[str, Any]:
        """Validate, take quarantined rows out of the plan input; return the quality counts."""
        import pandas as pd

        from sage_sync.operators.staging import read_json, write_json
        from sage_sync.quality import REASONS_COLUMN, validate_entity

        settings = self.settings()
        state = self.open_state(settings)
        folder = _folder(settings, context, self.entity)
        extracted = read_json(folder / "extract.json")
        inp = _input(folder / "extract.json")
        frame = pd.read_parquet(folder / "sage.parquet")
        checks: dict[str, Any] = {}
        if self.entity == "invoices":
            checks["account_codes"] = _known_account_codes(state, folder.parent / "accounts" / "sage.parquet")
            if (folder / "lines.parquet").exists():
                checks["lines"] = pd.read_parquet(folder / "lines.parquet")
        report = validate_entity(
            self.entity,
            frame.drop(columns=["_key"]),
            context=checks,
            previous_row_count=inp.previous_size or None,
            data_docs_dir=settings.data_docs_dir,
            run_id=str(context["run_id"]),
            shrink_ratio=settings.guard_ratio,
            shrink_minimum=settings.guard_minimum,
        )
        keys = frame["_key"].astype(str)
        blocking = {
            str(keys.loc[i]): str(reason) for i, reason in report.quarantined_rows[REASONS_COLUMN].items()
        }
        changed = set(inp.created) | set(inp.updated) | set(inp.quarantined)
        warnings: dict[str, list[str]] = {}
        for issue in report.warnings:
            warnings.setdefault(issue.key, []).append(f"{issue.expectation}: {issue.reason}")
        failures = [f.to_dict() for f in report.table_failures]
        # An entity that was empty last time and is empty now has nothing to protect: not a reason to stop.
        if inp.previous_size == 0 and all(f["expectation"] == "snapshot_not_empty" for f in failures):
            failures = []
        held = _hold_quarantined(inp, set(blocking))
        write_json(folder / "input.json", {"input": inp.to_dict()})
        write_json(
            folder / "quality.json",
            {
                "report": report.to_dict(limit=200),
                "stop_load": bool(failures),
                "table_failures": failures,
                "blocking": {k: v for k, v in blocking.items() if k in changed},
                "warnings": {k: "; ".join(v) for k, v in warnings.items() if k in changed},
                "held_ssm_ids": held,
                "data_docs_path": report.data_docs_path,
                "dry_run": extracted.get("dry_run", False),
            },
        )
        summary = {
            "entity": self.entity,
            "rows": report.row_count,
            "passed": report.passed_count,
            "quarantined": report.quarantined_count,
            "warnings": report.warning_count,
            "stop_load": bool(failures),
            "data_docs": report.data_docs_path,
        }
        if failures:
            log.warning("quality %s: load stopped: %s", self.entity, "; ".join(f["reason"] for f in failures))
        log.info("validate %s: %s", self.entity, summary)
        return summary


def _hold_quarantined(inp: PlanInput, keys: set[str]) -> dict[str, str]:
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
        binding = inp.bindings.get(key) or {}
        if binding.get("ssm_id") is not None:
            held[str(binding["ssm_id"])] = f"G3: Sage row {key} is quarantined"
    seen = {str(r.get("id")) for r in inp.ssm}
    return {sid: reason for sid, reason in held.items() if sid in seen}


class SageSyncPlanOperator(EntityOperator):
    """Compute the entity's plan (diff, three-way merge, rules) and stage it as ``plan.json`` (no I/O but files)."""

    ui_color = "#e8daef"

    def run(self, context: Any) -> dict[str, Any]:
        """Plan (or stop on a table failure) and stage ``plan.json``; return the op counts."""
        from sage_sync.engine.plan import Note, Plan
        from sage_sync.engine.run import plan_entity
        from sage_sync.operators.staging import read_json, write_json

        settings = self.settings()
        folder = _folder(settings, context, self.entity)
        inp = _input(folder / "input.json")
        quality = read_json(folder / "quality.json")
        if quality["stop_load"]:
            reasons = "; ".join(f["reason"] for f in quality["table_failures"])
            plan = Plan(
                self.entity, unchanged=inp.unchanged, guard=f"load stopped by data quality: {reasons}"
            )
        else:
            plan = plan_entity(inp, settings.sync_config())
        if self.entity in TWO_WAY and not quality["stop_load"]:
            _check_writes_to_sage(plan, settings, str(context["run_id"]))
        plan.quarantined.extend(Note(self.entity, k, "G3", r) for k, r in sorted(quality["blocking"].items()))
        plan.warnings.extend(Note(self.entity, k, "G3", r) for k, r in sorted(quality["warnings"].items()))
        write_json(folder / "plan.json", plan.to_dict())
        by_kind = {kind: plan.count(kind) for kind in dict.fromkeys(op.kind for op in plan.ops)}
        summary = {
            "entity": self.entity,
            "ops": len(plan.ops),
            "by_kind": by_kind,
            "deferred": len(plan.deferred),
            "quarantined": len(plan.quarantined),
            "conflicts": len(plan.conflicts),
            "guard": plan.guard,
        }
        log.info("plan %s: %s\n%s", self.entity, summary, plan.render() if len(plan.ops) <= 50 else "")
        return summary


def _sage_key_fields(entity: str, key: str) -> dict[str, Any]:
    if entity == "contacts":
        code, _, number = key.rpartition("/")
        return {"account_code": code, "number": int(number) if number.isdigit() else None}
    return {"code": key}


def _check_writes_to_sage(plan: Plan, settings: Settings, run_id: str) -> None:
    """Validate the rows the plan writes to Sage with the ``<entity>_to_sage`` suite; drop blocked records (G3).

    Inserts are checked as full rows; updates in groups with the same changed fields (a rule on a field an update
    does not touch is not evaluated). A blocked record loses its ops and commits (and those depending on it), is
    noted as quarantined, and its SSM record is kept pending so the next run looks at it again.
    """
    import pandas as pd

    from sage_sync.engine.plan import Note
    from sage_sync.quality import validate_entity

    entity = plan.entity
    groups: dict[tuple[str, frozenset[str]], list[tuple[str, dict[str, Any]]]] = {}
    for op in plan.ops:
        if op.entity == entity and op.kind in ("sage_insert", "sage_update"):
            row = (
                {**op.fields, **_sage_key_fields(entity, op.key)}
                if op.kind == "sage_update"
                else dict(op.fields)
            )
            groups.setdefault((op.kind, frozenset(row)), []).append((op.key, row))
    blocked: dict[str, str] = {}
    for rows in groups.values():
        report = validate_entity(
            f"{entity}_to_sage",
            pd.DataFrame([row for _, row in rows]),
            data_docs_dir=settings.data_docs_dir,
            run_id=run_id,
        )
        for position, reason in zip(
            report.quarantined_rows.index.tolist(), report.quarantined_rows["quality_reasons"], strict=True
        ):
            blocked[rows[int(position)][0]] = str(reason)
    if not blocked:
        return
    gone = {(entity, key) for key in blocked}
    for commit in plan.commits:
        if (commit.entity, commit.key) in gone or any((d[0], d[1]) in gone for d in commit.depends):
            for sid in commit.ssm_ids:
                plan.pending[int(sid)] = f"G3: quarantined before the Sage write ({commit.key})"
    for op in plan.ops:
        if (op.entity, op.key) in gone and op.ssm_id is not None:
            plan.pending[int(op.ssm_id)] = f"G3: quarantined before the Sage write ({op.key})"
    plan.ops = [op for op in plan.ops if (op.entity, op.key) not in gone]
    plan.commits = [
        c
        for c in plan.commits
        if (c.entity, c.key) not in gone and not any((d[0], d[1]) in gone for d in c.depends)
    ]
    plan.quarantined.extend(
        Note(entity, key, "G3", f"to Sage: {reason}") for key, reason in sorted(blocked.items())
    )
    log.warning("plan %s: %d record(s) quarantined before the Sage write: %s", entity, len(blocked), blocked)


class SageSyncLoadOperator(EntityOperator):
    """Apply the staged plan: Sage write-back first, then SSM bulk writes with per-item outcomes (G5, G6).

    A dry run (G8) and an empty plan open no connection and make no call. The DAG gives this task no retries: a
    failed write is left unconfirmed and re-planned by the next run, never re-sent blindly from a stale plan.
    """

    ui_color = "#d5f5e3"

    def run(self, context: Any) -> dict[str, Any]:
        """Apply the staged plan (unless dry run or empty); return the outcome counts."""
        from sage_sync.engine.apply import ApplyResult, apply_plan
        from sage_sync.engine.run import known_ids
        from sage_sync.errors import FatalSyncError
        from sage_sync.operators.sides import sage_side, ssm_side
        from sage_sync.operators.staging import read_json, state_token, write_json

        dry_run, _ = run_flags(context)
        settings = self.settings()
        folder = _folder(settings, context, self.entity)
        plan = _plan(folder)
        if dry_run or plan.is_empty:
            applied = ApplyResult(self.entity)
            write_json(
                folder / "apply.json", {**applied.to_dict(), "skipped": "dry run" if dry_run else "no op"}
            )
            return {"entity": self.entity, "ops": len(plan.ops), "applied": 0, "failed": 0, "api_calls": 0}
        state = self.open_state(settings)
        token = read_json(folder / "extract.json")["token"]
        if state_token(state, self.entity) != token:
            raise FatalSyncError(
                f"{self.entity}: another run committed since this plan was made; clear the whole "
                f"{self.entity} task group to re-plan on current data (the staged plan is never re-sent)"
            )
        applied = apply_plan(
            plan,
            sage_side(self.sage50_conn_id, settings),
            ssm_side(self.ssm_conn_id),
            known_ids(plan, state),
        )
        write_json(folder / "apply.json", applied.to_dict())
        failed = [o for o in applied.outcomes if not o.ok]
        for o in failed[:20]:
            log.warning("%s %s %s failed: %s", o.entity, o.kind, o.key, o.error)
        summary = {
            "entity": self.entity,
            "ops": len(plan.ops),
            "applied": len(applied.outcomes) - len(failed),
            "failed": len(failed),
            "api_calls": applied.api_calls,
        }
        log.info("load %s: %s", self.entity, summary)
        return summary


class SageSyncCommitOperator(EntityOperator):
    """Advance the state for confirmed records only (snapshot, bindings, watermark, quarantine, ledger; G5, G7).

    In a dry run nothing is recorded. The task's outlet is the entity's Asset, so downstream DAGs can be
    scheduled on "customers synced".
    """

    ui_color = "#abebc6"

    def run(self, context: Any) -> dict[str, Any]:
        """Record what the load confirmed; return the G7 counts."""
        from sage_sync.engine.apply import ApplyResult
        from sage_sync.engine.commit import commit_plan, count_plan
        from sage_sync.operators.staging import read_json, write_json
        from sage_sync.settings import safe_run_name

        dry_run, _ = run_flags(context)
        settings = self.settings()
        folder = _folder(settings, context, self.entity)
        extracted = read_json(folder / "extract.json")
        inp = _input(folder / "extract.json")
        plan = _plan(folder)
        quality = read_json(folder / "quality.json")
        applied = ApplyResult.from_dict(read_json(folder / "apply.json"))
        duration = time.time() - float(extracted.get("started") or time.time())
        api_calls = int(extracted.get("api_calls") or 0) + applied.api_calls
        if dry_run:
            counts = count_plan(plan, None)
            counts.api_calls = api_calls
            write_json(folder / "commit.json", {"counts": counts.to_dict(), "dry_run": True, "log": []})
            return {"entity": self.entity, "dry_run": True, **counts.to_dict()}
        state = self.open_state(settings)
        run_name = safe_run_name(str(context["run_id"]))
        seen = {int(r["id"]): str(r["dateUpdated"]) for r in inp.ssm if r.get("dateUpdated")}
        result = commit_plan(plan, applied, state, run_name, seen)
        for sid, reason in (quality.get("held_ssm_ids") or {}).items():
            state.set_pending(self.entity, int(sid), "G3", reason)
        if self.entity in TWO_WAY and seen and not quality["stop_load"]:
            state.set_watermark(self.entity, max(seen.values()))
        counts = result.counts
        counts.api_calls = api_calls
        state.record_entity(run_name, self.entity, counts.to_dict(), api_calls, duration)
        write_json(
            folder / "commit.json",
            {"counts": counts.to_dict(), "dry_run": False, "duration_s": duration, "log": result.log[:500]},
        )
        log.info("commit %s: %s", self.entity, counts.to_dict())
        return {"entity": self.entity, **counts.to_dict()}
