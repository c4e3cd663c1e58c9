"""The second half of the stateful test's examples (see test_stateful_sync.py), in its own module for a second worker."""

from __future__ import annotations

from tests.unit.engine.test_stateful_sync import SETTINGS, SyncMachine


class SecondHalf(SyncMachine):
    """The machine under its own name: its examples differ from the first half's."""


SecondHalf.TestCase.settings = SETTINGS
TestStatefulSyncSecondHalf = SecondHalf.TestCase
