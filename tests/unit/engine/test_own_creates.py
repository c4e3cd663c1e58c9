"""The id ranges of our own creates that incremental SSM reads skip (ADR 0018, decision 22).

The ``where`` is checked against the real simulator in ``tests/integration/adapters/test_ssm_api.py`` and the
whole behaviour through the pipeline steps in ``test_narrow_input.py``; here, how ranges are kept and dropped.
"""

from __future__ import annotations

from types import SimpleNamespace

from sage_sync.engine.own_creates import (
    MAX_RANGES,
    CreatedRange,
    OwnCreates,
    confirmed_range,
    settled,
    with_range,
)


def _out(kind: str, entity: str, ok: bool = True, ident: int | None = 1) -> SimpleNamespace:
    return SimpleNamespace(kind=kind, entity=entity, ok=ok, id=ident)


def test_g2_only_a_run_whose_writes_were_all_confirmed_remembers_its_creates() -> None:
    confirmed = [_out("ssm_create", "contacts", ident=12), _out("ssm_update", "contacts", ident=3),
                 _out("ssm_create", "contacts", ident=10), _out("ssm_create", "accounts", ok=False)]  # fmt: skip
    assert confirmed_range(confirmed, "contacts") == (10, 12)
    assert confirmed_range([*confirmed, _out("ssm_update", "contacts", ok=False)], "contacts") is None
    assert confirmed_range([_out("ssm_create", "contacts", ident=None)], "contacts") is None
    assert confirmed_range([_out("ssm_update", "contacts")], "contacts") is None  # nothing created


def test_g2_a_range_is_dated_by_its_last_create_and_dropped_once_spent_or_unreadable() -> None:
    ranges = [CreatedRange(1, 5, "2026-01-01T10:00:00.001Z"), CreatedRange(6, 9), CreatedRange(10, 12)]
    kept = settled(ranges, {9: "2026-01-01T11:00:00.000Z"}, since="2026-01-01T10:30:00.000Z")
    # The first is older than the read's lower bound, the third's last record could not be read.
    assert kept == [CreatedRange(6, 9, "2026-01-01T11:00:00.001Z")]
    own = OwnCreates(99, tuple(kept))
    mine = {"id": 7, "salesRepIdCreated": 99, "salesRepIdUpdated": {"id": 99}}
    assert own.skips({**mine, "dateUpdated": "2026-01-01T11:00:00.000Z"})
    assert not own.skips({**mine, "dateUpdated": "2026-01-01T11:00:00.001Z"})  # written after the load
    assert not own.skips({**mine, "salesRepIdUpdated": 7, "dateUpdated": "2026-01-01T10:59:00.000Z"})
    assert not own.skips({**mine, "id": 10, "dateUpdated": "2026-01-01T10:59:00.000Z"})


def test_g2_the_newest_ranges_are_kept_within_the_cap() -> None:
    ranges: list[CreatedRange] = []
    for n in range(MAX_RANGES + 3):
        ranges = with_range(ranges, n * 10, n * 10 + 5)
    assert len(ranges) == MAX_RANGES and ranges[0].lo == 30 and ranges[-1].lo == (MAX_RANGES + 2) * 10
