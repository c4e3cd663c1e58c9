"""The deadline alert of the sync DAG (G1): its setting, its callback, and the alert file the callback leaves.

A run still not done ``SAGE_SYNC_DEADLINE_MINUTES`` (default 12) after it was queued risks overlapping the next
15-minute window. Airflow's scheduler notices the missed deadline and runs :func:`run_overdue` as an executor
callback (a ``SyncCallback``, see docs/adr). The callback makes the miss visible where users look:

* ``<shared>/alerts/<run>.json`` — run id, DAG id, deadline minutes, when the alert fired, a sentence (in the
  shared location of :mod:`sage_sync.settings`: the callback may run on any worker, the report task on another);
* the run report, which says "deadline missed" when that file exists (and is amended if it was already
  written when the alert fired);
* a warning in the callback's log.

The DAG file imports this module at parse time, so it imports nothing heavy (standard library,
:mod:`sage_sync.settings` and :mod:`sage_sync.location` only). Nothing secret is read or written here.
"""

from __future__ import annotations

import json
import logging
import math
import os
from datetime import UTC, datetime
from typing import Any

from sage_sync.errors import ConfigurationError
from sage_sync.location import Location, read_bytes_or_none, write_bytes_atomic
from sage_sync.settings import DAG_ID, shared_location

log = logging.getLogger("sage_sync.deadline")

DEADLINE_ENV = "SAGE_SYNC_DEADLINE_MINUTES"
DEFAULT_DEADLINE_MINUTES = 12.0
#: A deadline longer than a day would never fire before the next runs pile up; it is a typo, not a setting.
MAX_DEADLINE_MINUTES = 24 * 60.0


def configured_deadline_minutes(raw: str | None = None) -> float:
    """The deadline in minutes from ``raw`` (default: ``$SAGE_SYNC_DEADLINE_MINUTES``); 0 turns the alert off.

    Decimals are allowed (``0.25`` is 15 seconds, for tests). Anything else is a :class:`ConfigurationError`
    naming the variable, the value and the accepted range.
    """
    text = os.environ.get(DEADLINE_ENV) if raw is None else raw
    if text is None or not text.strip():
        return DEFAULT_DEADLINE_MINUTES
    try:
        minutes = float(text.strip())
    except ValueError:
        minutes = math.nan
    if not math.isfinite(minutes) or not 0 <= minutes <= MAX_DEADLINE_MINUTES:
        raise ConfigurationError(
            f"{DEADLINE_ENV}={text!r}: expected a number of minutes from 0 (alert off) to "
            f"{MAX_DEADLINE_MINUTES:g}, for example 12 or 0.25"
        )
    return minutes


def describe_minutes(minutes: float) -> str:
    """``12`` -> "12 minutes", ``1`` -> "1 minute", ``0.25`` -> "15 seconds", ``1.5`` -> "1.5 minutes"."""
    if minutes < 1:
        seconds = round(minutes * 60, 1)
        return f"{seconds:g} second{'' if seconds == 1 else 's'}"
    return f"{minutes:g} minute{'' if minutes == 1 else 's'}"


def _shared(folder: Location | None) -> Location:
    """The DAG's shared folder: ``folder``, else the deployment's shared location."""
    return folder if folder is not None else shared_location()


def alerts_dir(folder: Location | None = None) -> Location:
    """Where the alert files live: ``<folder>/alerts`` (default folder: the deployment's shared location)."""
    return _shared(folder) / "alerts"


def alert_path(run_id: str, folder: Location | None = None) -> Location:
    """The alert file of one run (its name is the run id made file-safe, as for the run report)."""
    from sage_sync.engine.staging import run_name

    return alerts_dir(folder) / f"{run_name(run_id)}.json"


def read_alert(run_id: str, folder: Location | None = None) -> dict[str, Any] | None:
    """The deadline alert recorded for ``run_id``, or ``None`` when the run met its deadline (so far)."""
    path = alert_path(run_id, folder)
    data = read_bytes_or_none(path)
    found = json.loads(data) if data is not None else None
    return {**found, "path": str(path)} if isinstance(found, dict) else None


def _field(mapping: Any, *names: str) -> Any:
    """The first of ``names`` set on a dict or an object (the context's DAG run comes in both forms)."""
    for name in names:
        value = mapping.get(name) if isinstance(mapping, dict) else getattr(mapping, name, None)
        if value:
            return value
    return None


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value.isoformat() if isinstance(value, datetime) else str(value)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def record_overdue_run(
    context: Any, minutes: float = DEFAULT_DEADLINE_MINUTES, folder: Location | None = None
) -> dict[str, Any]:
    """Write the alert file of the late run named in ``context``, amend its report if written; return the alert.

    ``folder`` is the DAG's shared folder (default: the deployment's shared location).

    The scheduler's context is ``{"dag_run": <the run as the REST API shows it>, "deadline": {...}}``: the run id
    is ``dag_run.dag_run_id`` there, ``run_id`` in a task context; both are accepted.
    """
    context = context if isinstance(context, dict) else {}
    dag_run = context.get("dag_run") or {}
    deadline = context.get("deadline") or {}
    run_id = str(_field(context, "run_id") or _field(dag_run, "dag_run_id", "run_id") or "unknown-run")
    alert: dict[str, Any] = {
        "run_id": run_id,
        "dag_id": str(_field(dag_run, "dag_id") or DAG_ID),
        "deadline_minutes": minutes,
        "deadline": describe_minutes(minutes),
        "queued_at": _text(_field(dag_run, "queued_at")),
        "deadline_time": _text(_field(deadline, "deadline_time")),
        "fired_at": _now(),
        "message": (
            f"Run {run_id} was not done {describe_minutes(minutes)} after it was queued: it risks overlapping "
            "the next 15-minute window (G1). Check the SSM rate limit, the ssm_api pool and the slowest task "
            "in the run's report."
        ),
    }
    path = alert_path(run_id, folder)
    write_bytes_atomic(path, json.dumps(alert, ensure_ascii=False, indent=1, sort_keys=True).encode("utf-8"))
    alert["path"] = str(path)
    # The run may have ended between the deadline and this callback: its report then exists without the alert.
    from sage_sync.engine.staging import run_name
    from sage_sync.report import amend_report_with_deadline

    amend_report_with_deadline(_shared(folder) / "reports", run_name(run_id), alert)
    return alert


def run_overdue(
    context: Any = None,
    deadline_minutes: float = DEFAULT_DEADLINE_MINUTES,
    dossier: str | None = None,
    **kwargs: Any,
) -> None:
    """The deadline alert's callback: record the late run (alert file, report) and log a warning (G1).

    Airflow passes the deadline's context and the kwargs the DAG gave the callback (``deadline_minutes``, and
    ``dossier`` for a DAG of a dossiers file, whose alert files and reports live in that dossier's part of the
    shared location). A failure to write the alert file is logged, never raised: the warning must still reach the
    log.
    """
    minutes = float(deadline_minutes)
    try:
        from sage_sync.dossiers import dossier_shared

        alert = record_overdue_run(context, minutes, dossier_shared(dossier) if dossier else None)
        run_id, where = alert["run_id"], alert["path"]
    except Exception as exc:  # noqa: BLE001 - a full disk, a store refusing the write, a bad location setting
        dag_run = (context or {}).get("dag_run") if isinstance(context, dict) else None
        run_id, where = str(_field(dag_run or {}, "dag_run_id", "run_id") or "?"), f"not written ({exc})"
    log.warning(
        "sage50_ssm_sync run %s is not done %s after it was queued: it risks overlapping the next 15-minute "
        "window (G1). Check the SSM rate limit, the ssm_api pool and the slowest task in the run's report. "
        "Alert file: %s",
        run_id,
        describe_minutes(minutes),
        where,
    )
