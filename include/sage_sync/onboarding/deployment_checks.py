"""Preflight checks of the deployment (O2): every component must reach what the runs share.

* The shared location (``SAGE_SYNC_SHARED_URL``, else the data folder) is written, read back and cleaned up once
  per check: a location the worker cannot write stops the run before any step file is lost.
* Under an executor that runs tasks in several places (Celery, Kubernetes), the step files and the state store must
  be shared: without ``SAGE_SYNC_SHARED_URL`` the steps of one entity may run on workers that do not see each
  other's data folder, and a SQLite state store in a data folder gives each worker its own memory of what was
  synced. Both are warnings, not blocking: several workers on one host sharing one data folder work.
"""

from __future__ import annotations

import os
import uuid
from typing import TYPE_CHECKING

from sage_sync.location import read_bytes_or_none, write_bytes_atomic
from sage_sync.onboarding.doctor import Check

if TYPE_CHECKING:
    from sage_sync.settings import Settings

#: Executors whose tasks may run on several hosts.
DISTRIBUTED_EXECUTORS = ("CeleryExecutor", "KubernetesExecutor", "CeleryKubernetesExecutor", "EdgeExecutor")


def shared_location_check(settings: Settings) -> Check:
    """Write a probe file under the shared location, read it back, remove it."""
    from sage_sync.settings import SHARED_ENV

    where = str(settings.shared)
    probe = settings.shared / ".preflight" / f"{uuid.uuid4().hex}.probe"
    payload = uuid.uuid4().hex.encode()
    try:
        write_bytes_atomic(probe, payload)
        back = read_bytes_or_none(probe)
        probe.unlink()
    except Exception as exc:  # noqa: BLE001 - the reason goes into the table, whatever the store raised
        return Check(
            "shared location",
            where,
            "blocking",
            f"cannot write and read it back: {type(exc).__name__}: {exc}",
        )
    if back != payload:
        return Check("shared location", where, "blocking", "a file written there does not read back the same")
    source = SHARED_ENV if os.environ.get(SHARED_ENV) else "the data folder (no " + SHARED_ENV + ")"
    return Check("shared location", where, "ok", f"writable and readable ({source})")


def executor_checks(settings: Settings, executor: str) -> list[Check]:
    """Warnings when tasks may run on several hosts but the step files or the state store are not shared."""
    from sage_sync.settings import SHARED_ENV, STATE_ENV

    if not any(name in executor for name in DISTRIBUTED_EXECUTORS):
        return []
    checks = []
    if not os.environ.get(SHARED_ENV):
        checks.append(
            Check(
                "shared location",
                executor,
                "warning",
                f"tasks may run on several hosts but {SHARED_ENV} is not set: the step files stay in each "
                "worker's data folder (fine only when every worker shares it)",
            )
        )
    if settings.state_database_url.startswith("sqlite"):
        checks.append(
            Check(
                "state store",
                executor,
                "warning",
                f"tasks may run on several hosts but the state store is SQLite ({settings.state_database_url}): "
                f"every worker must use the same one; set {STATE_ENV} or state_url to PostgreSQL",
            )
        )
    return checks


def configured_executor() -> str:
    """Airflow's ``[core] executor`` (empty when Airflow's configuration cannot be read)."""
    try:
        from airflow.configuration import conf

        return str(conf.get("core", "executor", fallback=""))
    except Exception:  # noqa: BLE001 - outside an Airflow installation there is no executor to check
        return os.environ.get("AIRFLOW__CORE__EXECUTOR", "")


def deployment_checks(settings: Settings, executor: str | None = None) -> list[Check]:
    """The shared location probe, then the executor warnings."""
    return [shared_location_check(settings), *executor_checks(settings, executor or configured_executor())]
