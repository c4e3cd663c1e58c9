"""The deadline alert's callback: a run still not done 12 minutes after it was queued (G1).

The DAG names this function by its dotted path; Airflow imports the module when it parses the DAG, so it stays
free of heavy imports.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger("sage_sync.deadline")


def run_overdue(context: Any = None, **kwargs: Any) -> None:
    """Log a loud warning: the sync run risks overlapping the next 15-minute window (G1).

    Airflow passes the deadline's context (and any kwargs given to the callback); only the run id is used.
    """
    run_id = None
    if isinstance(context, dict):
        dag_run = context.get("dag_run")
        run_id = (
            context.get("run_id")
            or getattr(dag_run, "run_id", None)
            or (dag_run.get("run_id") if isinstance(dag_run, dict) else None)
        )
    log.warning(
        "sage50_ssm_sync run %s is not done 12 minutes after it was queued: it risks overlapping the next "
        "15-minute window (G1). Check the SSM rate limit, the ssm_api pool and the slowest task in the run's "
        "report.",
        run_id or "?",
    )
