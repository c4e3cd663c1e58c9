"""The sync pipeline: one typed function per step, the same for the DAG's tasks and for a run in one process.

Each entity goes ``extract -> validate -> plan -> load -> commit`` (:mod:`.extract_step`, :mod:`.validate_step`,
:mod:`.plan_step`, :mod:`.load_step`, :mod:`.commit_step`), then the run gets its ``report`` (:mod:`.report_step`). A step takes a
:class:`~.context.StepContext` (the run, the entity's spec, the staging area, the settings, the run's flags) and
the sides or the state it needs; it reads its input from the staging area, writes its output there, and returns a
small summary. :func:`~.run.run_once` chains them in one process.

Names are imported on first use: the DAG file imports the operators, which must not pull pandas or Great
Expectations in at parse time (:mod:`.context` stays light).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sage_sync.engine.pipeline.commit_step import CommitSummary, commit
    from sage_sync.engine.pipeline.context import RunFlags, StepContext
    from sage_sync.engine.pipeline.extract_step import ExtractSummary, extract
    from sage_sync.engine.pipeline.load_step import LoadSummary, load
    from sage_sync.engine.pipeline.plan_step import PlanSummary, plan, plan_entity, staged_plan
    from sage_sync.engine.pipeline.report_step import ReportResult, report
    from sage_sync.engine.pipeline.run import RunResult, run_once
    from sage_sync.engine.pipeline.validate_step import ValidateSummary, validate

_WHERE = {
    "CommitSummary": "commit_step",
    "commit": "commit_step",
    "RunFlags": "context",
    "StepContext": "context",
    "ExtractSummary": "extract_step",
    "extract": "extract_step",
    "LoadSummary": "load_step",
    "load": "load_step",
    "PlanSummary": "plan_step",
    "plan": "plan_step",
    "plan_entity": "plan_step",
    "staged_plan": "plan_step",
    "ReportResult": "report_step",
    "report": "report_step",
    "RunResult": "run",
    "run_once": "run",
    "ValidateSummary": "validate_step",
    "validate": "validate_step",
}

__all__ = [
    "CommitSummary",
    "ExtractSummary",
    "LoadSummary",
    "PlanSummary",
    "ReportResult",
    "RunFlags",
    "RunResult",
    "StepContext",
    "ValidateSummary",
    "commit",
    "extract",
    "load",
    "plan",
    "plan_entity",
    "report",
    "run_once",
    "staged_plan",
    "validate",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
