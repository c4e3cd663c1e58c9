"""The deadline alert (G1): its setting, the callback's alert file and log line, and the report's "deadline missed".

The callback is called here the way Airflow 3.3.2's executor calls it: keyword ``context`` holding the run as the
REST API shows it (``dag_run_id``, ``queued_at`` as text) and the deadline (``deadline_time`` as a datetime), plus
the kwargs the DAG gave the ``SyncCallback``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from sage_sync.engine.staging import Staging
from sage_sync.errors import ConfigurationError
from sage_sync.operators.deadline import (
    DEADLINE_ENV,
    alert_path,
    configured_deadline_minutes,
    describe_minutes,
    read_alert,
    run_overdue,
)
from sage_sync.report import build_report, render_html, render_markdown, write_report

RUN_ID = "scheduled__2026-11-29T07:00:00+00:00"


def _context(run_id: str = RUN_ID) -> dict[str, object]:
    """The context ``Deadline.handle_miss`` builds (airflow/models/deadline.py), trimmed to what matters."""
    return {
        "dag_run": {
            "dag_run_id": run_id,
            "dag_id": "sage50_ssm_sync",
            "queued_at": "2026-11-29T07:00:02.123456Z",
            "state": "running",
        },
        "deadline": {"id": "0199", "deadline_time": datetime(2026, 11, 29, 7, 12, 2, tzinfo=UTC)},
    }


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SAGE_SYNC_HOME", str(tmp_path))
    return tmp_path


@pytest.mark.parametrize(
    ("raw", "minutes"),
    [(None, 12.0), ("", 12.0), ("12", 12.0), ("0", 0.0), ("0.25", 0.25), (" 7.5 ", 7.5), ("1440", 1440.0)],
)
def test_g1_deadline_setting_accepts_minutes_with_decimals(
    raw: str | None, minutes: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(DEADLINE_ENV, raising=False)
    if raw is not None:
        monkeypatch.setenv(DEADLINE_ENV, raw)
    assert configured_deadline_minutes() == minutes


@pytest.mark.parametrize("raw", ["twelve", "-1", "nan", "inf", "1441", "12min"])
def test_g1_bad_deadline_setting_names_the_variable_value_and_range(raw: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        configured_deadline_minutes(raw)
    message = str(caught.value)
    assert f"{DEADLINE_ENV}={raw!r}" in message
    assert "from 0 (alert off) to 1440" in message


@pytest.mark.parametrize(
    ("minutes", "text"),
    [
        (12.0, "12 minutes"),
        (1.0, "1 minute"),
        (0.25, "15 seconds"),
        (1.5, "1.5 minutes"),
        (1 / 60, "1 second"),
    ],
)
def test_deadline_is_described_for_people(minutes: float, text: str) -> None:
    assert describe_minutes(minutes) == text


def test_g1_callback_writes_the_alert_file_and_logs_the_late_run(
    home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level("WARNING", logger="sage_sync.deadline"):
        run_overdue(context=_context(), deadline_minutes=12.0)
    path = home / "alerts" / "scheduled__2026-11-29T07_00_00_00_00.json"
    assert path == alert_path(RUN_ID)
    alert = json.loads(path.read_text(encoding="utf-8"))
    assert alert["run_id"] == RUN_ID
    assert alert["dag_id"] == "sage50_ssm_sync"
    assert alert["deadline_minutes"] == 12.0
    assert alert["queued_at"] == "2026-11-29T07:00:02.123456Z"
    assert alert["deadline_time"] == "2026-11-29T07:12:02+00:00"
    assert alert["fired_at"].endswith("Z")
    assert alert["message"].startswith(f"Run {RUN_ID} was not done 12 minutes after it was queued")
    assert f"sage50_ssm_sync run {RUN_ID} is not done 12 minutes after it was queued" in caplog.text
    assert str(path) in caplog.text
    assert read_alert(RUN_ID) == {**alert, "path": str(path)}


def test_g1_callback_without_a_writable_home_still_logs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the data folder should be", encoding="utf-8")
    monkeypatch.setenv("SAGE_SYNC_HOME", str(blocker))
    with caplog.at_level("WARNING", logger="sage_sync.deadline"):
        run_overdue(context=_context(), deadline_minutes=0.25)
    assert f"run {RUN_ID} is not done 15 seconds after it was queued" in caplog.text
    assert "Alert file: not written" in caplog.text


def test_no_alert_for_a_run_that_met_its_deadline(home: Path) -> None:
    assert read_alert("manual__2026-11-29T08:00:00+00:00") is None


def test_g1_report_says_deadline_missed_in_json_markdown_and_html(home: Path) -> None:
    run_overdue(context=_context(), deadline_minutes=0.25)
    report = build_report(
        RUN_ID, Staging(home / "staging" / "none"), dry_run=False, deadline_alert=read_alert(RUN_ID)
    )
    assert report["deadline_missed"] is True
    assert report["deadline"]["deadline_minutes"] == 0.25
    assert report["deadline"]["path"] == str(alert_path(RUN_ID))
    sentence = "the run was not done 15 seconds after it was queued"
    assert f"**Deadline missed** (G1): {sentence}" in render_markdown(report)
    page = render_html(report)
    assert f"<strong>Deadline missed</strong> (G1): {sentence}" in page
    # The sentence stays above the summary table, next to the run's status.
    assert page.index("Deadline missed") < page.index("<table>")


def test_g1_report_of_a_run_on_time_says_nothing_about_deadlines(home: Path) -> None:
    report = build_report(RUN_ID, Staging(home / "staging" / "none"), dry_run=False, deadline_alert=None)
    assert report["deadline_missed"] is False
    assert report["deadline"] is None
    assert "Deadline" not in render_markdown(report)


def test_g1_alert_firing_after_the_report_amends_it(home: Path) -> None:
    """The run ended between its deadline and the callback: the written report gains the miss."""
    reports = home / "reports"
    write_report(
        build_report(RUN_ID, Staging(home / "staging"), dry_run=False), reports, alert_path(RUN_ID).stem
    )
    run_overdue(context=_context(), deadline_minutes=12.0)
    for name in (f"{alert_path(RUN_ID).stem}.json", "latest.json"):
        amended = json.loads((reports / name).read_text(encoding="utf-8"))
        assert amended["deadline_missed"] is True, name
        assert amended["run_id"] == RUN_ID
    assert "Deadline missed" in (reports / f"{alert_path(RUN_ID).stem}.html").read_text(encoding="utf-8")
    assert "Deadline missed" in (reports / "latest.md").read_text(encoding="utf-8")


def test_g1_late_alert_of_an_older_run_leaves_latest_alone(home: Path) -> None:
    reports = home / "reports"
    old_name = alert_path(RUN_ID).stem
    write_report(build_report(RUN_ID, Staging(home / "staging"), dry_run=False), reports, old_name)
    newer = "scheduled__2026-11-29T07:15:00+00:00"
    write_report(
        build_report(newer, Staging(home / "staging"), dry_run=False), reports, alert_path(newer).stem
    )
    run_overdue(context=_context(), deadline_minutes=12.0)
    assert json.loads((reports / f"{old_name}.json").read_text(encoding="utf-8"))["deadline_missed"] is True
    latest = json.loads((reports / "latest.json").read_text(encoding="utf-8"))
    assert (latest["run_id"], latest["deadline_missed"]) == (newer, False)


def test_g1_callback_accepts_a_task_context_too(home: Path) -> None:
    """A task-style context (``run_id`` at the top, the run as an object) names the same run."""

    class DagRun:
        run_id = RUN_ID
        dag_id = "sage50_ssm_sync"
        queued_at = datetime(2026, 11, 29, 7, 0, 2, tzinfo=UTC)

    run_overdue(context={"run_id": RUN_ID, "dag_run": DagRun()})
    alert = read_alert(RUN_ID)
    assert alert is not None
    assert (alert["run_id"], alert["deadline_minutes"], alert["queued_at"]) == (
        RUN_ID,
        12.0,
        "2026-11-29T07:00:02+00:00",
    )
