"""M3: a dossier switched off and on again takes Sage as master on its first run back, SSM-only fields kept."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sage_sync.engine.config import SyncConfig
from sage_sync.engine.pipeline import run_once
from sage_sync.engine.resume import resume_reason
from tests.support.memory import SyncWorld, account_row


def _world() -> SyncWorld:
    w = SyncWorld("sqlite://", SyncConfig())
    w.sage.put("accounts", account_row("C001", "Boulangerie Petit", prospect=True, city="Lyon"))
    w.sage.put("accounts", account_row("C002", "Garage Central", city="Nice"))
    w.run(entities=("accounts",))
    return w


def _city(w: SyncWorld, code: str) -> str:
    (rec,) = w.ssm_by_ext("accounts", code)
    return str(rec["city"])


def test_m3_first_run_back_writes_sage_values_over_ssm_edits_and_keeps_ssm_only_fields() -> None:
    w = _world()
    (rec,) = w.ssm_by_ext("accounts", "C001")
    # While the dossier was off, the sales team edited a synced field and an SSM-only one of a prospect.
    assert w.ssm.user_update("accounts", int(rec["id"]), {"city": "Villeurbanne", "phone2": "0600000000"})
    w.ssm.advance(900)
    result = run_once(w.sage, w.ssm, w.state, w.config, resume=True, entities=("accounts",))
    assert result.counts["accounts"].failed == 0
    (after,) = w.ssm_by_ext("accounts", "C001")
    assert after["city"] == "Lyon"  # Sage is master on the run back
    assert after["phone2"] == "0600000000"  # a field the sync does not map stays as the sales team left it
    assert w.sage.rows("accounts")[("C001",)]["city"] == "Lyon"  # nothing flowed back to Sage
    assert _city(w, "C002") == "Nice"


def test_m3_an_ordinary_run_would_have_taken_the_ssm_edit_to_sage() -> None:
    """The contrast: without the resume mode, the same edit is a two-way change that reaches Sage."""
    w = _world()
    (rec,) = w.ssm_by_ext("accounts", "C001")
    assert w.ssm.user_update("accounts", int(rec["id"]), {"city": "Villeurbanne"})
    w.run(entities=("accounts",))
    assert w.sage.rows("accounts")[("C001",)]["city"] == "Villeurbanne"


def test_m3_a_long_pause_is_recognised_and_a_first_run_is_not_a_return() -> None:
    fresh = SyncWorld("sqlite://", SyncConfig())
    assert resume_reason(fresh.state, 24) is None  # never ran: a first sync (O1), not a resume
    w = _world()
    assert resume_reason(w.state, 24) is None
    later = datetime.now(UTC) + timedelta(hours=30)
    reason = resume_reason(w.state, 24, now=later)
    assert reason is not None and "takes Sage as master (M3)" in reason
    assert resume_reason(w.state, 0, now=later) is None  # 0 turns the automatic detection off
