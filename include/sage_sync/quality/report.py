"""The outcome of validating one entity: rows that proceed, rows quarantined and why, warnings, table failures."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

#: The column of ``QualityReport.quarantined_rows`` holding each row's reasons.
REASONS_COLUMN = "quality_reasons"


@dataclass(frozen=True)
class QualityIssue:
    """One row failing one expectation: its key, the expectation, and a readable sentence."""

    key: str
    expectation: str
    severity: str
    reason: str
    column: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "key": self.key,
            "expectation": self.expectation,
            "severity": self.severity,
            "column": self.column,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class TableFailure:
    """A table-level failure that stops the entity's load (G4: empty or shrunken snapshot; duplicate keys)."""

    expectation: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"expectation": self.expectation, "reason": self.reason}


@dataclass
class QualityReport:
    """What :func:`sage_sync.quality.validate_entity` found.

    ``passed`` holds the rows that proceed (original index and columns); ``quarantined_rows`` the others, with a
    ``quality_reasons`` column. ``quarantined`` has one issue per failed blocking expectation per row, so a row may
    appear more than once. ``stop_load`` is true when any table-level expectation failed: nothing of the entity may
    be loaded (and no deletion propagated) in this run.
    """

    entity: str
    suite: str
    row_count: int
    passed: pd.DataFrame
    quarantined_rows: pd.DataFrame
    quarantined: list[QualityIssue] = field(default_factory=list)
    warnings: list[QualityIssue] = field(default_factory=list)
    table_failures: list[TableFailure] = field(default_factory=list)
    guard_findings: list[TableFailure] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    data_docs_path: str | None = None
    run_id: str | None = None
    seconds: float = 0.0

    @classmethod
    def nothing_to_check(
        cls, suite: str, entity: str, frame: pd.DataFrame, run_id: str | None
    ) -> QualityReport:
        """The report of a snapshot with no changed row and the same size as last time: every row passed then."""
        quarantined = frame.iloc[0:0].copy()
        quarantined[REASONS_COLUMN] = pd.Series(dtype="string")
        return cls(
            entity=entity,
            suite=suite,
            row_count=len(frame),
            passed=frame,
            quarantined_rows=quarantined,
            skipped=["every expectation: no row changed since the last run and the row count is the same"],
            run_id=run_id,
        )

    @property
    def stop_load(self) -> bool:
        """True when a table-level expectation failed: the entity's load must not run."""
        return bool(self.table_failures)

    @property
    def passed_count(self) -> int:
        """Rows that proceed."""
        return len(self.passed)

    @property
    def quarantined_count(self) -> int:
        """Rows held back (a row failing several expectations counts once)."""
        return len(self.quarantined_rows)

    @property
    def warning_count(self) -> int:
        """Warnings raised (one per row and expectation)."""
        return len(self.warnings)

    def counts(self) -> dict[str, int]:
        """The numbers a run report shows (G7)."""
        return {
            "rows": self.row_count,
            "passed": self.passed_count,
            "quarantined": self.quarantined_count,
            "warnings": self.warning_count,
            "table_failures": len(self.table_failures),
        }

    def to_dict(self, limit: int | None = None) -> dict[str, Any]:
        """JSON-ready summary (issue lists cut to ``limit`` entries when given; the counts stay exact)."""
        return {
            "entity": self.entity,
            "suite": self.suite,
            "run_id": self.run_id,
            "stop_load": self.stop_load,
            "counts": self.counts(),
            "table_failures": [t.to_dict() for t in self.table_failures],
            "guard_findings": [t.to_dict() for t in self.guard_findings],
            "quarantined": [q.to_dict() for q in self.quarantined[:limit]],
            "warnings": [w.to_dict() for w in self.warnings[:limit]],
            "skipped": list(self.skipped),
            "data_docs_path": self.data_docs_path,
            "seconds": round(self.seconds, 3),
        }


def _cell(text: str) -> str:
    """Escape a value for a Markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(report: QualityReport, limit: int = 20) -> str:
    """Render ``report`` as a short Markdown section: counts, table failures, then the first ``limit`` issues."""
    c = report.counts()
    lines = [
        f"### Data quality — {report.entity}" + (" — load stopped" if report.stop_load else ""),
        "",
        "| rows | passed | quarantined | warnings | table failures |",
        "|---:|---:|---:|---:|---:|",
        f"| {c['rows']} | {c['passed']} | {c['quarantined']} | {c['warnings']} | {c['table_failures']} |",
    ]
    if report.table_failures:
        lines += ["", "**Load stopped:**", ""]
        lines += [f"- `{t.expectation}`: {_cell(t.reason)}" for t in report.table_failures]
    if report.guard_findings:
        lines += ["", "**Deletions withheld (G4):**", ""]
        lines += [f"- `{t.expectation}`: {_cell(t.reason)}" for t in report.guard_findings]
    for title, issues in (("Quarantined", report.quarantined), ("Warnings", report.warnings)):
        if not issues:
            continue
        lines += ["", f"**{title}** ({len(issues)}):", "", "| key | expectation | reason |", "|---|---|---|"]
        lines += [f"| {_cell(i.key)} | `{i.expectation}` | {_cell(i.reason)} |" for i in issues[:limit]]
        if len(issues) > limit:
            lines.append(f"| … | | {len(issues) - limit} more |")
    if report.skipped:
        lines += ["", "Not evaluated: " + "; ".join(_cell(s) for s in report.skipped)]
    if report.data_docs_path:
        lines += ["", f"Data Docs: {report.data_docs_path}"]
    return "\n".join(lines) + "\n"
