"""The operator's sync page, rendered from run reports (G7, G3, G2, G4): what a person sees, relative links only."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from sage_sync.sync_page import load_reports, open_quarantine, render_sync_page


def _report(run: str, *, quarantined: list[str], status: str = "attention", **extra: Any) -> dict[str, Any]:
    accounts = {
        "status": "ok",
        "tasks": {"accounts.apply": "success"},
        "counts": {"created": 2, "updated": 1, "quarantined": len(quarantined)},
        "quarantined": [{"key": k, "rule": "G3", "reason": "CT_Num is empty"} for k in quarantined],
        "conflicts": [],
        "deferred": [],
        **extra,
    }
    return {
        "run_id": run,
        "status": status,
        "started_at": f"{run}-start",
        "finished_at": f"{run}-end",
        "dry_run": False,
        "totals": {"created": 2, "updated": 1, "failed": 0},
        "entities": {"accounts": accounts},
    }


def test_g3_open_quarantine_says_when_each_row_was_first_seen_and_for_how_many_runs() -> None:
    reports = [  # newest first
        _report("r4", quarantined=["<no code>", "C2"]),
        {"run_id": "r3b", "status": "skipped", "entities": {}},
        _report("r3", quarantined=["<no code>", "C2"]),
        _report("r2", quarantined=["<no code>"]),
        _report("r1", quarantined=[]),
    ]
    rows = {r["key"]: r for r in open_quarantine(reports)}
    assert rows["<no code>"]["runs"] == 3 and rows["<no code>"]["first_run"] == "r2"
    assert rows["C2"]["runs"] == 2 and rows["C2"]["first_seen"] == "r3-start"


def test_g2_g4_the_page_shows_conflicts_withheld_deletions_and_links_only_relatively(tmp_path: Path) -> None:
    latest = _report(
        "scheduled__2026-12-03T10:00:00+00:00",
        quarantined=["C9"],
        conflicts=[
            {"key": "C1", "field": "city", "sage_value": "Quimper", "ssm_value": "Brest", "winner": "sage"}
        ],
        deferred=[
            {"key": "C5", "rule": "G4", "reason": "mass deletion"},
            {"key": "C7", "rule": "K1", "reason": "waits for its account"},
        ],
        withheld_set="ab12cd34",
        guard="5 deletion(s) withheld",
        data_docs=str(tmp_path / "data_docs" / "validations" / "accounts.html"),
    )
    page = render_sync_page([latest], dag_id="sage50_ssm_sync", home=tmp_path, user="alice")
    assert "Quimper" in page and "Brest" in page and "<strong>sage</strong>" in page
    assert "ab12cd34" in page and "approve_deletions" in page and "C5" in page
    assert "waits for its account" in page  # deferred (not G4)
    assert "CT_Num is empty" in page and "Signed in as <strong>alice</strong>" in page
    assert "href='data-docs/validations/accounts.html'" in page
    assert (
        "href='../dags/sage50_ssm_sync/runs/scheduled__2026-12-03T10%3A00%3A00%2B00%3A00/tasks/accounts.apply'"
        in page
    )
    hrefs = re.findall(r"href='([^']*)'", page)
    assert hrefs and all(not h.startswith(("/", "http")) for h in hrefs), hrefs


def test_the_page_of_a_sync_that_never_ran_says_so(tmp_path: Path) -> None:
    assert load_reports(tmp_path / "reports") == []
    assert "has not run yet" in render_sync_page([], dag_id="d")


def test_load_reports_newest_first_without_latest_json(tmp_path: Path) -> None:
    import os

    for i, run in enumerate(("a", "b", "c")):
        path = tmp_path / f"{run}.json"
        path.write_text(json.dumps({"run_id": run}))
        os.utime(path, (i, i))
    (tmp_path / "latest.json").write_text(json.dumps({"run_id": "c"}))
    (tmp_path / "broken.json").write_text("{")
    os.utime(tmp_path / "broken.json", (0.5, 0.5))
    assert [r["run_id"] for r in load_reports(tmp_path, limit=2)] == ["c", "b"]
