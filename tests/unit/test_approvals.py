"""Approvals of withheld deletions (G4, A1): the question, and which decisions are remembered."""

from __future__ import annotations

from pathlib import Path

from sage_sync.approvals import APPROVE, REJECT, TIMEOUT, question, record, rejected_before, withheld
from sage_sync.engine.plan import Note, Plan
from sage_sync.engine.staging import Staging
from sage_sync.report import decision_sentence


def _staging(tmp_path: Path, keys: list[str], fingerprint: str = "abc123") -> Staging:
    staging = Staging(tmp_path / "staging" / "run1")
    deferred = [Note("accounts", k, "G4", "withheld") for k in keys] + [
        Note("accounts", "C999", "K1", "waits")
    ]
    plan = Plan("accounts", deferred=deferred, guard="12 of 60 accounts vanished from Sage")
    plan.withheld_set = fingerprint
    staging.write_plan("accounts", plan)
    return staging


def test_g4_the_question_gives_the_count_a_sample_and_the_set(tmp_path: Path) -> None:
    keys = [f"C{i:03d}" for i in range(12)]
    found = withheld(_staging(tmp_path, keys), "accounts")
    assert found is not None and found["count"] == 12 and found["set"] == "abc123"
    subject, body = question("accounts", found)
    assert subject == "Delete 12 accounts in Sales Management?"
    assert "`C000`" in body and "`C009`" in body and "`C010`" not in body and "2 more" in body
    assert "C999" not in body and "abc123" in body
    assert withheld(Staging(tmp_path / "empty"), "accounts") is None


def test_g4_a_rejection_is_remembered_for_that_set_only_and_a_timeout_is_not(tmp_path: Path) -> None:
    home = tmp_path / "home"
    staging = _staging(tmp_path, ["C1", "C2", "C3"])
    found = withheld(staging, "accounts")
    assert found is not None
    record(home, staging, "accounts", found, TIMEOUT, None, "2026-12-03T10:00:00+00:00")
    assert rejected_before(home, "accounts", "abc123") is None  # a timeout asks again
    record(home, staging, "accounts", found, REJECT, "otto", "2026-12-03T10:15:00+00:00")
    assert rejected_before(home, "accounts", "abc123") == {
        "set": "abc123",
        "count": 3,
        "decision": REJECT,
        "by": "otto",
        "at": "2026-12-03T10:15:00+00:00",
    }
    assert rejected_before(home, "accounts", "another") is None  # a changed set asks again
    assert rejected_before(home, "contacts", "abc123") is None
    record(home, staging, "accounts", found, APPROVE, "vera", "2026-12-03T10:30:00+00:00")
    assert rejected_before(home, "accounts", "abc123") is None


def test_the_report_sentence_says_who_decided_when_and_what_was_applied() -> None:
    sentence = decision_sentence(
        {
            "set": "abc",
            "count": 5,
            "decision": "approved",
            "by": "otto",
            "at": "T",
            "applied": True,
            "deleted": 5,
        }
    )
    assert (
        sentence
        == "5 withheld deletion(s) (set abc) approved by otto at T; 5 deleted in SSM after checking Sage again"
    )
