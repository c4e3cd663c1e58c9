"""Fixtures of the hook unit tests."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from tests.unit.hooks.ssm_fakes import BASE, PRIVATE, PUBLIC


@pytest.fixture
def connection(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """Point `ssm_default` at the fake API with the test keys; call it to set other fields or connection ids."""

    def set_connection(conn_id: str = "ssm_default", **fields: Any) -> None:
        conn = {"conn_type": "http", "host": BASE, "login": PUBLIC, "password": PRIVATE, **fields}
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))

    set_connection()
    return set_connection
