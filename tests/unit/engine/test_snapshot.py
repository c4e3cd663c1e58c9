"""The committed snapshot keeps each row's key and row hash, so the next diff only hashes the current extract."""

from __future__ import annotations

import numpy as np

from sage_sync.engine.config import SyncConfig
from sage_sync.engine.row_hash import snapshot_hashes
from sage_sync.engine.snapshot import KEY, assemble, compared_columns, hash_scheme, sage_changes
from tests.support.memory import Fault, SyncWorld, account_row


def world(size: int = 3) -> SyncWorld:
    w = SyncWorld("sqlite://", SyncConfig())
    for i in range(size):
        w.sage.put("accounts", account_row(f"C{i:04d}", f"Company {i}", city="Lyon"))
    return w


def stored_hashes(w: SyncWorld) -> dict[str, tuple[int, int]]:
    out = {}
    for key, (digest, _) in w.state.snapshot("accounts").items():
        out[key] = (int(digest[-32:-16], 16), int(digest[-16:], 16))
    return out


def extract_hashes(w: SyncWorld) -> dict[str, tuple[int, int]]:
    frame = assemble("accounts", w.sage.read_snapshot("accounts"))
    cols = [c for c in compared_columns("accounts") if c in frame.columns]
    h = snapshot_hashes(frame, [KEY], cols)
    return {str(k): (int(a), int(b)) for k, a, b in zip(frame[KEY], h.key_hashes, h.row_hashes, strict=True)}


def test_committed_digests_equal_the_hashes_of_the_unchanged_extract() -> None:
    """ADR 0002: what the commit stores is what the next run computes for an unchanged row (no re-check needed)."""
    w = world()
    w.run()
    frame = assemble("accounts", w.sage.read_snapshot("accounts"))
    cols = [c for c in compared_columns("accounts") if c in frame.columns]
    assert all(d.startswith(hash_scheme(cols)) for d, _ in w.state.snapshot("accounts").values())
    assert stored_hashes(w) == extract_hashes(w)


def test_g5_failed_update_keeps_the_previous_values_and_digest_and_is_planned_again() -> None:
    w = world()
    w.run()
    before = w.state.snapshot("accounts")
    w.sage.edit("accounts", ("C0001",), city="Lille")
    w.sage.edit("accounts", ("C0002",), city="Nice")
    w.ssm.faults.armed.append(Fault("refuse", "update", "accounts", item=0))
    first = w.run()
    assert first.counts["accounts"].failed == 1 and first.counts["accounts"].updated == 1
    after = w.state.snapshot("accounts")
    failed = next(k for k in ("C0001", "C0002") if after[k] == before[k])
    passed = "C0002" if failed == "C0001" else "C0001"
    assert after[passed] != before[passed]  # the confirmed row advanced, values and digest
    assert stored_hashes(w)[passed] == extract_hashes(w)[passed]
    second = w.run()
    assert [(o.kind, o.key) for o in second.plans["accounts"].ops] == [("ssm_update", failed)]
    assert stored_hashes(w) == extract_hashes(w)
    assert w.run().planned_ops == 0


def test_digests_of_another_scheme_are_recomputed_and_classify_the_same() -> None:
    """Rows stored by an older scheme (or with no usable digest) are hashed again; the classification is unchanged."""
    w = world(2500)  # above the former 2,000-row threshold of the dict path: one path for every size
    w.run(entities=("accounts",))
    w.sage.edit("accounts", ("C0001",), city="Lille")
    w.sage.delete("accounts", ("C0002",))
    w.sage.put("accounts", account_row("C9999", "New"))
    frame = assemble("accounts", w.sage.read_snapshot("accounts"))
    committed = w.state.snapshot("accounts")
    legacy = {k: ("0" * 40 if i % 2 else "", v) for i, (k, (_, v)) in enumerate(committed.items())}
    for snapshot in (committed, legacy):
        c = sage_changes("accounts", frame, snapshot)
        assert (c.created, c.updated, sorted(c.deleted), c.unchanged) == (
            ["C9999"],
            {"C0001": ["city"]},
            ["C0002"],
            2498,
        )


def test_a_stored_hash_that_lies_is_caught_by_the_value_check() -> None:
    """The hashes are a filter: a row whose stored hash differs but whose values match is still unchanged."""
    w = world()
    w.run()
    committed = w.state.snapshot("accounts")
    digest, values = committed["C0000"]
    flipped = f"{int(digest[-16:], 16) ^ 1:016x}"
    committed["C0000"] = (digest[:-16] + flipped, values)
    frame = assemble("accounts", w.sage.read_snapshot("accounts"))
    c = sage_changes("accounts", frame, committed)
    assert (c.created, c.updated, c.deleted, c.unchanged) == ([], {}, {}, 3)
    assert np.uint64(int(flipped, 16)) != np.uint64(int(digest[-16:], 16))
