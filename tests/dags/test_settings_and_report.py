"""Dossier settings (one YAML file with defaults) and the run report files (G7, G8)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sage_sync.engine.plan import Plan
from sage_sync.engine.staging import Staging, run_name
from sage_sync.errors import ConfigurationError
from sage_sync.report import build_report, summary_table, write_report
from sage_sync.settings import load_settings


def test_defaults_without_a_settings_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SAGE_SYNC_CONFIG", raising=False)
    monkeypatch.setenv("SAGE_SYNC_HOME", str(tmp_path / "home"))
    s = load_settings()
    assert s.home == tmp_path / "home"
    assert s.state_database_url == f"sqlite:///{tmp_path / 'home' / 'state.db'}"
    config = s.sync_config()
    assert config.code_template == "C{ssm_id:06d}"
    assert config.winner("accounts") == "sage"  # G2 default
    assert config.guard("products").ratio == 0.5  # G4 default


def test_settings_file_overrides_the_defaults(tmp_path: Path) -> None:
    path = tmp_path / "settings.yaml"
    path.write_text(
        "media_folder: /srv/media\ncode_template: 'S{seq:05d}'\nadmin_user_id: 7\nbranch_id: 2\n"
        "conflict: {contacts: ssm}\nguard_ratio: 0.2\nguard_minimum: 3\n",
        encoding="utf-8",
    )
    s = load_settings(path, home=tmp_path)
    config = s.sync_config()
    assert (config.admin_user_id, config.default_branch_id, config.code_template) == (7, 2, "S{seq:05d}")
    assert config.winner("contacts") == "ssm" and config.winner("accounts") == "sage"
    assert config.guard("accounts").ratio == 0.2 and config.guard("accounts").minimum == 3
    assert str(s.media_folder) == "/srv/media"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("guard_ratio: 1.5\n", "guard_ratio is 1.5; expected between 0.0 and 1.0"),
        ("colour: blue\n", "unknown setting(s) colour"),
        ("conflict: {accounts: crm}\n", "conflict.accounts = 'crm'"),
        ("code_template: 'C{name}'\n", "code_template"),
        ("- a list\n", "expected a mapping"),
    ],
)
def test_bad_settings_name_the_file_the_key_and_the_limit(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "settings.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(
        ConfigurationError, match=message.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")
    ):
        load_settings(path, home=tmp_path)


def test_a_named_settings_file_must_exist(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="does not exist"):
        load_settings(tmp_path / "missing.yaml", home=tmp_path)


def test_run_names_are_file_safe_and_fit_the_ledger() -> None:
    name = run_name("scheduled__2026-11-29T07:15:00.123456+00:00")
    assert len(name) <= 40 and "/" not in name and ":" not in name and "+" not in name
    assert run_name("manual__x") == "manual__x"


def _stage(folder: Path, entity: str, *, dry_run: bool) -> None:
    folder.mkdir(parents=True)
    (folder / "extract.json").write_text(
        json.dumps(
            {"changes": {"created": 1, "updated": 0, "deleted": 0}, "ssm_records_read": 0, "api_calls": 3}
        )
    )
    (folder / "quality.json").write_text(
        json.dumps(
            {
                "stop_load": False,
                "table_failures": [],
                "report": {"counts": {"rows": 2}},
                "data_docs_path": "/d/index.html",
            }
        )
    )
    plan = {
        "entity": entity,
        "ops": [
            {"kind": "ssm_create", "entity": entity, "key": "C1", "rule": "C1", "reason": "new customer"}
        ],
        "conflicts": [
            {
                "entity": entity,
                "key": "C2",
                "field": "name",
                "sage_value": "A",
                "ssm_value": "B",
                "winner": "sage",
            }
        ],
        "quarantined": [
            {"entity": entity, "key": "C3", "rule": "G3", "reason": "name_length: too long", "ssm_id": None}
        ],
        "deferred": [],
        "warnings": [],
        "skipped": [],
        "guard": None,
    }
    Staging(folder.parent).write_plan(entity, Plan.from_dict(plan))
    (folder / "apply.json").write_text(json.dumps({"entity": entity, "outcomes": [], "api_calls": 1}))
    counts = {
        "created": 0 if dry_run else 1,
        "updated": 0,
        "deleted": 0,
        "unchanged": 5,
        "deferred": 0,
        "quarantined": 1,
        "conflicts": 1,
        "failed": 0,
        "api_calls": 4,
    }
    (folder / "commit.json").write_text(json.dumps({"counts": counts, "duration_s": 1.5}))


def test_g7_report_files_per_run_and_latest(tmp_path: Path) -> None:
    staging = tmp_path / "staging" / "run1"
    for entity in ("accounts", "contacts", "products", "invoices"):
        _stage(staging / entity, entity, dry_run=False)
    report = build_report(
        "manual__1", Staging(staging), dry_run=False, settings={"state_url": "postgresql://u:***@h/db"}
    )
    assert report["totals"]["created"] == 4 and report["totals"]["api_calls"] == 16
    assert report["entities"]["accounts"]["conflicts"][0]["field"] == "name"
    assert report["entities"]["accounts"]["quarantined"][0]["reason"] == "name_length: too long"
    assert report["entities"]["accounts"]["data_docs"] == "/d/index.html"
    paths = write_report(report, tmp_path / "reports", "run1")
    assert json.loads(paths["latest"].read_text()) == json.loads(paths["json"].read_text())
    markdown = paths["markdown"].read_text()
    assert "| accounts | ok |" in markdown and "C2 `name`: Sage 'A' / SSM 'B'" in markdown
    assert "<table>" in paths["html"].read_text()
    assert "accounts" in summary_table(report).splitlines()[2]


def test_g8_dry_run_report_lists_planned_writes(tmp_path: Path) -> None:
    staging = tmp_path / "staging" / "dry"
    _stage(staging / "accounts", "accounts", dry_run=True)
    report = build_report("manual__dry", Staging(staging), dry_run=True)
    assert report["writes"] == 0
    assert report["entities"]["accounts"]["planned"][0]["kind"] == "ssm_create"
    assert report["entities"]["contacts"]["status"] == "not run"
