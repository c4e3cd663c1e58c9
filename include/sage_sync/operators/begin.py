"""The first task of a run: take the run lease, or skip the whole run when another run holds it (G1, G5)."""

from __future__ import annotations

import logging
from typing import Any

from airflow.sdk import Context
from airflow.sdk.exceptions import AirflowSkipException

from sage_sync.operators.base import SageSyncBaseOperator

log = logging.getLogger(__name__)


class SageSyncBeginOperator(SageSyncBaseOperator):
    """Take the run lease in the state store (see :mod:`sage_sync.engine.pipeline.lease_step`).

    When another run holds it (a manual ``airflow dags test``, a second deployment, a zombie retry), this task is
    skipped with a sentence saying who holds it; every entity's tasks are skipped with it, and the report says
    the run did nothing. A dry run takes no lease.
    """

    ui_color = "#f2f3f4"

    def run(self, context: Context) -> dict[str, Any]:
        """Take the lease; skip the run when another run has it."""
        from sage_sync.engine.pipeline.lease_step import RunInProgress, begin

        settings = self.settings()
        run_id = str(context["run_id"])
        try:
            summary = begin(run_id, settings.staging(run_id), self.open_state(settings), self.flags(context))
        except RunInProgress as exc:
            log.warning("%s", exc)
            raise AirflowSkipException(str(exc)) from exc
        log.info("run %s holds the sync lease", run_id)
        return summary.to_dict()
