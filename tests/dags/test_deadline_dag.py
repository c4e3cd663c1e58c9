"""The DAG's deadline alert follows ``SAGE_SYNC_DEADLINE_MINUTES`` (G1): minutes with decimals, 0 off, bad values refused.

The DAG file is parsed as the DAG processor parses it (no database, no network).
"""

from __future__ import annotations

import runpy
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from sage_sync.errors import ConfigurationError

DAG_FILE = Path(__file__).resolve().parents[2] / "dags" / "sage50_ssm_sync.py"


@pytest.fixture(autouse=True, scope="module")
def _airflow_home_outside_the_users_home(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Airflow reads its home when first imported; keep it in a throw-away folder."""
    import os

    os.environ.setdefault("AIRFLOW_HOME", str(tmp_path_factory.mktemp("airflow-home")))


def _parse(monkeypatch: pytest.MonkeyPatch, minutes: str | None) -> Any:
    if minutes is None:
        monkeypatch.delenv("SAGE_SYNC_DEADLINE_MINUTES", raising=False)
    else:
        monkeypatch.setenv("SAGE_SYNC_DEADLINE_MINUTES", minutes)
    return runpy.run_path(str(DAG_FILE))["dag"]


def _alert(dag: Any) -> Any:
    alerts = dag.deadline if isinstance(dag.deadline, list) else [dag.deadline]
    assert len(alerts) == 1
    return alerts[0]


def test_g1_default_deadline_is_twelve_minutes_and_passes_them_to_the_callback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    alert = _alert(_parse(monkeypatch, None))
    assert alert.interval == timedelta(minutes=12)
    assert alert.callback.path == "sage_sync.operators.deadline.run_overdue"
    assert alert.callback.kwargs == {"deadline_minutes": 12.0}


def test_g1_sub_minute_deadline_for_tests(monkeypatch: pytest.MonkeyPatch) -> None:
    alert = _alert(_parse(monkeypatch, "0.25"))
    assert alert.interval == timedelta(seconds=15)
    assert alert.callback.kwargs == {"deadline_minutes": 0.25}


def test_g1_zero_turns_the_alert_off(monkeypatch: pytest.MonkeyPatch) -> None:
    assert not _parse(monkeypatch, "0").deadline


def test_g1_bad_deadline_fails_the_parse_with_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(
        ConfigurationError, match=r"SAGE_SYNC_DEADLINE_MINUTES='soon': expected a number of minutes"
    ):
        _parse(monkeypatch, "soon")
