"""The operators' contract with Airflow: keyword-only validated arguments, errors mapped at the boundary."""

from __future__ import annotations

from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException

from sage_sync.engine.pipeline import RunFlags
from sage_sync.errors import ConfigurationError, FatalSyncError, RecordRejected, RetriableSyncError
from sage_sync.operators.base import EntityOperator


class _Raising(EntityOperator):
    def __init__(self, *, error: Exception, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.error = error

    def run(self, context: Any) -> Any:
        raise self.error


@pytest.mark.parametrize(
    "error",
    [ConfigurationError("bad code template"), FatalSyncError("400 refused"), RecordRejected(["x too long"])],
)
def test_fatal_and_configuration_errors_fail_without_retry(error: Exception) -> None:
    op = _Raising(task_id="t", entity="accounts", error=error)
    with pytest.raises(AirflowFailException, match=type(error).__name__):
        op.execute({})


def test_retriable_errors_propagate_for_airflow_to_retry() -> None:
    op = _Raising(task_id="t", entity="accounts", error=RetriableSyncError("503 from SSM"))
    with pytest.raises(RetriableSyncError):
        op.execute({})


def test_unknown_entity_is_refused_when_the_dag_is_parsed() -> None:
    with pytest.raises(ValueError, match="suppliers"):
        _Raising(task_id="t", entity="suppliers", error=RuntimeError())


def test_arguments_are_keyword_only() -> None:
    with pytest.raises(TypeError):
        EntityOperator("t", "accounts")  # type: ignore[misc,call-arg]


def test_g8_run_flags_read_the_params_whatever_their_form() -> None:
    flags = EntityOperator.flags
    assert flags({"params": {"dry_run": True, "full_reconcile": "false"}}) == RunFlags(True, False)  # type: ignore[arg-type]
    assert flags({"params": {"dry_run": "true", "full_reconcile": 1}}) == RunFlags(True, True)  # type: ignore[arg-type]
    assert flags({}) == RunFlags(False, False)  # type: ignore[arg-type]
