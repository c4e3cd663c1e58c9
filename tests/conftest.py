"""Test configuration: markers follow the folders (unit/, dags/, integration/)."""

from __future__ import annotations

import os

import pytest

# Airflow must never touch a user's home during tests.
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")

_MARKERS = {"unit": "unit", "dags": "dags", "integration": "integration"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        parts = item.path.parts
        for folder, marker in _MARKERS.items():
            if folder in parts:
                item.add_marker(getattr(pytest.mark, marker))
