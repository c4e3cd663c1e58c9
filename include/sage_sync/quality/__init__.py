"""Data quality: Great Expectations suites per entity (as YAML data), severities, quarantine (G3, G4).

Importing this package does not import Great Expectations (slow); :func:`validate_entity` does on first use.
"""

from __future__ import annotations

from sage_sync.quality.report import QualityIssue, QualityReport, TableFailure, render_markdown
from sage_sync.quality.spec import load_suite, suite_names
from sage_sync.quality.validate import REASONS_COLUMN, required_context, validate_entity

__all__ = [
    "REASONS_COLUMN",
    "QualityIssue",
    "QualityReport",
    "TableFailure",
    "load_suite",
    "render_markdown",
    "required_context",
    "suite_names",
    "validate_entity",
]
