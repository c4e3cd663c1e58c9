"""The project's small exception tree.

Operators map these to Airflow at their boundary: ``FatalSyncError`` and ``ConfigurationError`` fail the task
without retry, ``RetriableSyncError`` lets Airflow retry, ``DeferredRecord`` is a per-record outcome, never raised
out of a task.
"""

from __future__ import annotations


class SyncError(Exception):
    """Base class of every error the project raises on purpose."""


class ConfigurationError(SyncError):
    """A connection, setting or mapping is wrong; retrying will not help."""


class FatalSyncError(SyncError):
    """The data or the remote system refused the operation; retrying will not help."""


class RetriableSyncError(SyncError):
    """A transient failure (network, timeout, 429, 5xx, outage); the same call may succeed later."""


class DeferredRecord(SyncError):
    """A record cannot be synced yet (its parent is missing); it is planned again next run."""


class RecordRejected(FatalSyncError):
    """One or more records were refused before anything was written (length, encoding, required field)."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        shown = "\n".join(f"  - {p}" for p in problems[:20])
        more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
        super().__init__(f"{len(problems)} record problem(s), nothing was written:\n{shown}{more}")
