"""The committed snapshot keeps each row's key and row hash, so the next diff only hashes the current extract."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd

from sage_sync.engine.codec import clean
from sage_sync.engine.config import SyncConfig
from sage_sync.engine.row_hash import snapshot_hashes
from sage_sync.engine.snapshot import (
    KEY,
    LINES_DIGEST,
    assemble,
    compared_columns,
    group_lines,
    hash_scheme,
    sage_changes,
)
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


def _lines_digest_record_by_record(lines: pd.DataFrame, piece: str) -> str:
    """The lines digest as it is defined: SHA-1 of the JSON list of the header's canonical line records."""
    rows = [{k: clean(v) for k, v in r.items()} for r in lines.to_dict("records")]
    mine = [r for r in rows if str(r["piece"]) == piece]
    mine.sort(key=lambda r: (r.get("position") or 0, r.get("line_id") or 0))
    return hashlib.sha1(json.dumps(mine, sort_keys=True, default=str).encode()).hexdigest()


def test_i1_lines_digest_is_the_digest_of_the_line_records_and_lines_are_built_on_demand() -> None:
    """I1/ADR 0018: the column-wise digest equals the record-by-record one, so a change of any line value shows.

    Awkward cells on purpose: missing and empty values, non-ASCII and quotes, floats with exponents, infinities
    and negative zero, two lines at the same position (they keep the order read), a header without lines.
    """
    lines = pd.DataFrame(
        {
            "line_id": pd.array([3, 1, 2, 4, None, 6], dtype="Int64"),
            "piece": pd.array(["F1", "F1", "F1", "F2", "F2", ""], dtype="string"),
            "position": pd.array([2000, 1000, 1000, None, 1000, 1], dtype="Int64"),
            "designation": pd.array(['Crème "brûlée" – 1', "", None, "x%sy", "ok", "z"], dtype="string"),
            "quantity": pd.array([1e16, -0.0, None, 1.5e-7, 2.0, float("inf")], dtype="Float64"),
            "unit_price": np.array([0.1 + 0.2, 123456789.125, float("nan"), -1e-5, 7.0, 1.0]),
            "in_stock": pd.array([True, False, None, True, True, False], dtype="boolean"),
        }
    )
    headers = pd.DataFrame({"piece": pd.array(["F1", "F2", "F3"], dtype="string")})
    out, grouped = group_lines(headers, lines, {}, "piece")
    expected = [_lines_digest_record_by_record(lines, p) for p in ["F1", "F2", "F3"]]
    assert out[LINES_DIGEST].tolist() == expected
    assert [line["line_id"] for line in grouped.of("F1")] == [1, 2, 3]  # position, then line id
    assert grouped.of("F3") == []
    assert grouped.count(["F1", "F2", "F3"]) == 5  # the line without piece is no header's
    changed = lines.copy()
    changed.loc[4, "designation"] = "ok!"
    assert group_lines(headers, changed, {}, "piece")[0][LINES_DIGEST].tolist() == [
        expected[0],
        _lines_digest_record_by_record(changed, "F2"),
        expected[2],
    ]
    assert expected[1] != _lines_digest_record_by_record(changed, "F2")
    records = {"F1": {"piece": "F1"}, "F2": {"piece": "F2"}}
    grouped.attach(records, ["F2"])
    assert "lines" not in records["F1"]
    assert [line["designation"] for line in records["F2"]["lines"]] == ["x%sy", "ok"]  # no position: 0
