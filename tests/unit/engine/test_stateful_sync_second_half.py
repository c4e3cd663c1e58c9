"""The second half of the stateful test's examples (see test_stateful_sync.py), in its own module for a second worker,
and the regression seeds."""

from __future__ import annotations

import pytest
from hypothesis import settings

from sage_sync.engine import commit_stream
from tests.unit.engine.test_stateful_sync import (
    REGRESSION_SEEDS,
    RUN_SEED,
    SETTINGS,
    STREAM_CHUNK,
    SyncMachine,
    run_with_seed,
)


class SecondHalf(SyncMachine):
    """The machine under its own name: its examples differ from the first half's."""


class Regression(SyncMachine):
    """The machine replaying a fixed seed."""


@pytest.mark.timeout(2400)  # 60 examples of up to 15 steps: minutes, more on a busy machine
def test_stateful_sync_second_half(monkeypatch: pytest.MonkeyPatch) -> None:
    """G5, G6 and every entity's rules under random interleavings and faults (the other half of the examples)."""
    monkeypatch.setattr(commit_stream, "STREAM_CHUNK", STREAM_CHUNK)
    run_with_seed(SecondHalf, RUN_SEED + 1, replay=f"SAGE_SYNC_HYPOTHESIS_SEED={RUN_SEED} pytest {__file__}")


@pytest.mark.parametrize("seed", REGRESSION_SEEDS)
def test_stateful_sync_regression_seed(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """G5, G6 and every entity's rules on the same examples every run (no database: the seed alone decides)."""
    monkeypatch.setattr(commit_stream, "STREAM_CHUNK", STREAM_CHUNK)
    run_with_seed(Regression, seed, settings(SETTINGS, max_examples=20, database=None))
