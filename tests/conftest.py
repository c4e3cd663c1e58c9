"""Test configuration: markers follow the folders (unit/, dags/, integration/)."""

from __future__ import annotations

import os

import pytest

# Airflow must never touch a user's home during tests.
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")

_MARKERS = {"unit": "unit", "dags": "dags", "integration": "integration"}


#: The longest tests, started first so that each test worker (pytest-xdist, one module at a time) takes one of
#: them before the many short ones: the suite then ends when the short ones do.
LONGEST_FIRST = ("test_stateful_sync", "test_stateful_sync_second_half", "test_operator_ui")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: item.path.stem not in LONGEST_FIRST)  # stable: the rest keep their order
    for item in items:
        parts = item.path.parts
        for folder, marker in _MARKERS.items():
            if folder in parts:
                item.add_marker(getattr(pytest.mark, marker))
