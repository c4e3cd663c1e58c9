"""An auth manager that grants DAGs one by one, for the tests of the plugin's per-DAG checks.

Airflow's simple auth manager grants by role only (every DAG or none); FAB, Keycloak and others also grant DAG
by DAG. This one is the simple auth manager (its users, roles, passwords and login) with one more rule read from
``SAGE_SYNC_TEST_DAG_ACCESS`` (JSON ``{"user": ["dag_id", ...]}``): a listed user may touch only the listed DAGs.
Point ``AIRFLOW__CORE__AUTH_MANAGER`` at ``tests.support.per_dag_auth.PerDagAuthManager``.
"""

from __future__ import annotations

import json
import os
from typing import Any

from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager

ACCESS_ENV = "SAGE_SYNC_TEST_DAG_ACCESS"


class PerDagAuthManager(SimpleAuthManager):
    """The simple auth manager, with the DAGs of each listed user restricted to the listed ones."""

    def is_authorized_dag(
        self, *, method: Any, user: Any, access_entity: Any = None, details: Any = None
    ) -> bool:
        allowed = super().is_authorized_dag(
            method=method, user=user, access_entity=access_entity, details=details
        )
        grants = json.loads(os.environ.get(ACCESS_ENV, "{}"))
        if not allowed or user.get_name() not in grants:
            return allowed
        dag_id = getattr(details, "id", None) if details is not None else None
        return dag_id is not None and dag_id in grants[user.get_name()]
