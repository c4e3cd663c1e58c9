"""Test configuration: markers follow the folders (unit/, dags/, integration/)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Airflow must never touch a user's home during tests.
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")

_MARKERS = {"unit": "unit", "dags": "dags", "integration": "integration"}


#: The longest test modules, longest first (paths under tests/). The two test workers (pytest-xdist, one module at
#: a time, modules handed out in this order: --no-loadscope-reorder) each take long ones before the many short
#: ones, so the suite ends when the short ones do. Durations from `pytest --durations=0` on a fresh clone.
LONGEST_FIRST = (
    "unit/engine/test_stateful_sync_second_half.py",
    "unit/engine/test_stateful_sync.py",
    "integration/dag/test_operator_ui.py",
    "integration/dag/test_reliability.py",
    "integration/dag/test_scheduler.py",
    "integration/dag/test_celery_stack.py",
    "integration/dag/test_rules.py",
    "integration/dag/test_sync.py",
    "integration/dag/test_dossiers.py",
    "integration/dag/test_postgres.py",
    "integration/engine/test_state_store_postgres.py",
)
_TESTS = Path(__file__).parent


def _rank(item: pytest.Item) -> int:
    """Where ``item``'s module comes in LONGEST_FIRST (after all of them when it is not there)."""
    try:
        return LONGEST_FIRST.index(item.path.relative_to(_TESTS).as_posix())
    except ValueError:
        return len(LONGEST_FIRST)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    items.sort(key=_rank)  # stable: the tests of a module, and the other modules, keep their order
    for item in items:
        parts = item.path.parts
        for folder, marker in _MARKERS.items():
            if folder in parts:
                item.add_marker(getattr(pytest.mark, marker))
