"""Shared location: no task depends on another task's local disk.

Everything a run shares between its tasks and the API server (step files, reports, Data Docs, deadline alerts,
approval decisions, matching files) lives in ``SAGE_SYNC_SHARED_URL``; the private ``SAGE_SYNC_HOME`` keeps only
the settings, the SQLite state and, when the shared location is an object store, the Data Docs work folder. Each
test points the two at different places and checks where every file lands, and that the plugin serves it back.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from sage_sync.approvals import REJECT, record, rejected_before
from sage_sync.dossiers import parse_dossiers
from sage_sync.engine.pipeline import run_once
from sage_sync.engine.pipeline.run import RunResult
from sage_sync.errors import ConfigurationError
from sage_sync.onboarding.step import match
from sage_sync.operators.deadline import read_alert, run_overdue
from sage_sync.quality.data_docs import INDEX, publish
from sage_sync.reports_app import create_app
from sage_sync.settings import Settings, load_settings
from sage_sync.sync_page import load_reports
from tests.support.memory import SyncWorld, account_row, contact_row

RUN_ID = "scheduled__2026-12-04T10:00:00+00:00"
RUN_NAME = "scheduled__2026-12-04T10_00_00_00_00"
CLIENT = 1


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "SAGE_SYNC_CONFIG",
        "SAGE_SYNC_DOSSIERS",
        "SAGE_SYNC_SHARED_URL",
        "SAGE_SYNC_SHARED_CONN_ID",
        "SAGE_SYNC_STATE_URL",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The private data folder of the component under test."""
    folder = tmp_path / "private"
    monkeypatch.setenv("SAGE_SYNC_HOME", str(folder))
    return folder


@pytest.fixture
def shared_folder(tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A shared location ``file://<tmp>/shared``, away from the private data folder."""
    folder = tmp_path / "shared"
    monkeypatch.setenv("SAGE_SYNC_SHARED_URL", f"file://{folder}")
    return folder


@pytest.fixture
def memory_url(home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A shared location in fsspec's in-memory store (``memory://``), Airflow's registry taught the scheme."""
    from airflow.sdk.io import attach
    from fsspec.implementations.memory import MemoryFileSystem

    attach("memory", fs=MemoryFileSystem())
    bucket = f"sage-sync-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("SAGE_SYNC_SHARED_URL", f"memory://{bucket}/shared")
    yield f"memory://{bucket}/shared"
    MemoryFileSystem().rm(f"/{bucket}", recursive=True)


def _files(folder: Path) -> set[str]:
    """Every file under ``folder``, relative to it; the state's write-ahead log and its index count as the state."""
    names = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    return {"state.db" if n in ("state.db-wal", "state.db-shm") else n for n in names}


def _run(settings: Settings) -> RunResult:
    """One whole run (every entity's steps, then the report) with the folders the DAG's tasks use."""
    settings.home.mkdir(parents=True, exist_ok=True)
    world = SyncWorld(settings.state_database_url)
    for i in range(3):
        world.sage.put("accounts", account_row(f"C00{i}", f"Company {i}", city="Lyon"))
        world.sage.put("contacts", contact_row(f"C00{i}", 1, "Durand"))
    world.ssm.advance(900)
    return run_once(
        world.sage,
        world.ssm,
        world.state,
        world.config,
        run_id=RUN_ID,
        staging_root=settings.shared / "staging",
        reports_dir=settings.reports_dir,
        data_docs=settings.data_docs,
    )


def _signed_in(app: FastAPI, monkeypatch: pytest.MonkeyPatch) -> TestClient:
    """A client of the plugin's app whose caller Airflow's auth manager lets read every DAG."""
    from airflow.api_fastapi.core_api import security
    from airflow.models.dag import DagModel

    class Reader:
        def get_name(self) -> str:
            return "reader"

    class AllowEveryDag:
        def is_authorized_dag(self, **_: Any) -> bool:
            return True

    monkeypatch.setattr(security, "get_auth_manager", AllowEveryDag)
    monkeypatch.setattr(DagModel, "get_team_name", staticmethod(lambda dag_id, **_: None))
    app.dependency_overrides[security.get_user] = Reader
    return TestClient(app)


def test_without_a_shared_url_every_file_stays_in_the_data_folder(home: Path, tmp_path: Path) -> None:
    """Shared location unset: the data folder is the shared location, exactly as before (demo, one machine)."""
    settings = load_settings()
    assert settings.shared == home and isinstance(settings.shared, Path)
    assert settings.staging(RUN_ID).root == home / "staging" / RUN_NAME
    assert settings.approved_staging(RUN_ID).root == home / "staging" / f"{RUN_NAME}__approved"
    assert (settings.reports_dir, settings.matching_dir) == (home / "reports", home / "matching")
    assert settings.data_docs.served == settings.data_docs.build == home / "data_docs"
    assert not settings.data_docs.published
    dossiers = tmp_path / "dossiers.yaml"
    dossiers.write_text("dossiers:\n  lyon:\n    connection: sage50_lyon\n", encoding="utf-8")
    lyon = parse_dossiers(dossiers).settings("lyon")
    assert lyon.shared == lyon.home == home / "dossiers" / "lyon"


def test_a_shared_url_takes_every_shared_file_and_leaves_the_state_private(
    home: Path, shared_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Shared location: staging, reports, matching, Data Docs and each dossier's part follow SAGE_SYNC_SHARED_URL."""
    from airflow.sdk import ObjectStoragePath

    monkeypatch.setenv("SAGE_SYNC_SHARED_CONN_ID", "shared_store")
    settings = load_settings()
    assert isinstance(settings.shared, ObjectStoragePath)
    assert (settings.shared.protocol, settings.shared.path, settings.shared.conn_id) == (
        "file",
        str(shared_folder),
        "shared_store",
    )
    assert str(settings.staging(RUN_ID).root).endswith(f"{shared_folder}/staging/{RUN_NAME}")
    assert str(settings.reports_dir).endswith(f"{shared_folder}/reports")
    assert str(settings.matching_dir).endswith(f"{shared_folder}/matching")
    # A file:// location is a local disk: GX builds right in the served folder, nothing is published.
    assert settings.data_docs.build == shared_folder / "data_docs" and not settings.data_docs.published
    assert settings.state_database_url == f"sqlite:///{home / 'state.db'}"
    assert settings.to_public_dict()["shared"] == str(settings.shared)
    dossiers = tmp_path / "dossiers.yaml"
    dossiers.write_text("dossiers:\n  lyon:\n    connection: sage50_lyon\n", encoding="utf-8")
    lyon = parse_dossiers(dossiers).settings("lyon")
    assert lyon.home == home / "dossiers" / "lyon"
    assert str(lyon.shared).endswith(f"{shared_folder}/dossiers/lyon")


def test_the_state_url_variable_wins_for_one_dossier_and_is_refused_with_a_dossiers_file(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Shared location: SAGE_SYNC_STATE_URL names the single dossier's state; it never merges several dossiers."""
    settings_file = tmp_path / "settings.yaml"
    settings_file.write_text("state_url: sqlite:////srv/from-file.db\n", encoding="utf-8")
    monkeypatch.setenv("SAGE_SYNC_STATE_URL", "postgresql://sync@db/state")
    assert load_settings(settings_file).state_database_url == "postgresql://sync@db/state"
    dossiers = tmp_path / "dossiers.yaml"
    dossiers.write_text("dossiers:\n  lyon:\n    connection: sage50_lyon\n", encoding="utf-8")
    with pytest.raises(ConfigurationError, match="SAGE_SYNC_STATE_URL is set, but the dossiers file"):
        parse_dossiers(dossiers).settings("lyon")


def test_a_shared_url_with_a_query_is_refused(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Shared location: a URL that cannot name a location fails with the variable's name and the accepted form."""
    monkeypatch.setenv("SAGE_SYNC_SHARED_URL", "s3://bucket/prefix?conn_id=aws")
    with pytest.raises(ConfigurationError, match=r"SAGE_SYNC_SHARED_URL: .*s3://<conn_id>@bucket/prefix"):
        load_settings()


def test_a_run_on_a_file_url_writes_nothing_private_but_its_state(
    home: Path, shared_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Shared location: a whole run, its alert, approval and matching files land in the shared folder only.

    The plugin then serves the run's report, sync page and Data Docs from there.
    """
    settings = load_settings()
    result = _run(settings)
    assert result.report["status"] == "ok"
    assert settings.staging(RUN_ID).has("accounts", "commit.json")
    # A task on another worker reads the same files: the report task, the approval, the deadline callback.
    staging = settings.staging(RUN_ID)
    found = {"set": "abc123", "count": 2}
    record(settings.shared, staging, "accounts", found, REJECT, "otto", "2026-12-04T10:05:00Z")
    assert rejected_before(load_settings().shared, "accounts", "abc123") is not None
    run_overdue(context={"run_id": RUN_ID, "dag_run": {"dag_id": "sage50_ssm_sync"}}, deadline_minutes=12.0)
    alert = read_alert(RUN_ID, load_settings().shared)
    assert alert is not None and alert["path"].endswith(f"{shared_folder}/alerts/{RUN_NAME}.json")
    (shared_folder / "matching").mkdir()
    (shared_folder / "matching" / "decisions.csv").write_text(
        "entity,sage_key,ssm_id,decision\naccounts,C009,99,colour\n", encoding="utf-8"
    )
    world = SyncWorld()  # a first sync of another tenant: the match step proposes pairs
    world.sage.put("accounts", account_row("C100", "Boulangerie Elise", postcode="69002"))
    world.ssm.user_create("accounts", {"name": "BOULANGERIE ELISE", "postcode": "69002", "statusId": CLIENT})
    staging = settings.staging("match_run")
    summary = match("match_run", staging, world.sage, world.ssm, world.state, folder=settings.matching_dir)
    assert any("decision 'colour'" in problem for problem in summary.problems)  # read from the shared folder
    assert "C100" in (shared_folder / "matching" / "proposals.csv").read_text(encoding="utf-8")

    assert _files(home) == {"state.db"}
    shared_files = _files(shared_folder)
    assert {f"reports/{RUN_NAME}.json", "reports/latest.json", "approvals.json"} <= shared_files
    assert f"alerts/{RUN_NAME}.json" in shared_files
    assert f"staging/{RUN_NAME}/accounts/commit.json" in shared_files
    assert "data_docs/gx/uncommitted/data_docs/local_site/index.html" in shared_files
    report = json.loads((shared_folder / "reports" / f"{RUN_NAME}.json").read_text(encoding="utf-8"))
    assert report["deadline_missed"] is True  # the late alert amended the shared report

    client = _signed_in(create_app(), monkeypatch)
    page = client.get("/sync")
    assert page.status_code == 200 and RUN_ID in page.text
    link = re.search(r"href='(data-docs/[^']+)'", page.text)
    assert link is not None and link.group(1) == f"data-docs/{INDEX}"
    docs = client.get(f"/{link.group(1)}")
    assert docs.status_code == 200 and docs.headers["content-type"].startswith("text/html")
    assert client.get(f"/reports/{RUN_NAME}.html").status_code == 200
    assert RUN_NAME in client.get("/reports").text
    assert client.get(f"/data-docs/..%2Freports%2F{RUN_NAME}.json").status_code == 404  # outside data_docs


def test_a_dossier_dag_reads_its_part_of_the_shared_location(
    home: Path, shared_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Shared location: a dossier's deadline alert and report go to <shared>/dossiers/<name>, its routes read there."""
    from sage_sync.report import build_report, write_report

    home.mkdir()
    (home / "dossiers.yaml").write_text("dossiers:\n  lyon:\n    connection: sage50_lyon\n", encoding="utf-8")
    lyon = parse_dossiers(home / "dossiers.yaml").settings("lyon")
    write_report(build_report(RUN_ID, lyon.staging(RUN_ID), dry_run=True), lyon.reports_dir, RUN_NAME)
    run_overdue(context={"run_id": RUN_ID}, deadline_minutes=12.0, dossier="lyon")
    assert (shared_folder / "dossiers" / "lyon" / "alerts" / f"{RUN_NAME}.json").is_file()
    assert load_reports(lyon.reports_dir)[0]["deadline_missed"] is True
    assert _files(home) == {"dossiers.yaml"}
    client = _signed_in(create_app(), monkeypatch)
    reply = client.get(f"/dags/sage50_ssm_sync__lyon/reports/{RUN_NAME}.json")
    assert reply.status_code == 200 and reply.json()["run_id"] == RUN_ID
    assert RUN_ID in client.get("/dags/sage50_ssm_sync__lyon/sync").text


def test_an_object_store_gets_the_run_and_a_published_data_docs_site(
    home: Path, memory_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Shared location in an object store (memory://): staging, reports and Data Docs published there, served back.

    GX builds in the private work folder; only the site's changed files are sent again.
    """
    from airflow.sdk import ObjectStoragePath

    settings = load_settings()
    assert isinstance(settings.shared, ObjectStoragePath) and settings.shared.protocol == "memory"
    assert settings.data_docs.published and settings.data_docs.build == home / "data_docs"
    result = _run(settings)
    assert result.report["status"] == "ok"
    assert settings.staging(RUN_ID).read_json("accounts", "commit.json")["counts"]["created"] == 3
    index = settings.shared / "data_docs" / INDEX
    assert index.exists()
    assert result.report["entities"]["accounts"]["data_docs"] == str(index)
    assert publish(settings.data_docs) == []  # nothing changed since the build published its files
    assert {f.split("/", 1)[0] for f in _files(home)} == {"state.db", "data_docs"}  # state and GX work folder
    assert [r["run_id"] for r in load_reports(settings.reports_dir)] == [RUN_ID]

    client = _signed_in(create_app(), monkeypatch)
    page = client.get("/sync")
    assert page.status_code == 200 and RUN_ID in page.text
    assert f"href='data-docs/{INDEX}'" in page.text
    docs = client.get(f"/data-docs/{INDEX}")
    assert docs.status_code == 200 and docs.headers["content-type"].startswith("text/html")
    assert docs.content == index.read_bytes()
    report = client.get(f"/reports/{RUN_NAME}.md")
    assert report.status_code == 200 and report.headers["content-type"].startswith("text/markdown")
    assert client.get("/reports/missing.html").status_code == 404
    outside = "gx%2F..%2F..%2Freports%2Flatest.json"  # decoded: gx/../../reports/latest.json
    assert client.get(f"/data-docs/{outside}").status_code == 404


def test_preflight_probes_the_shared_location_and_leaves_nothing_behind(shared_folder: Path) -> None:
    """Shared location, O2: the preflight writes a probe there, reads it back and removes it."""
    from sage_sync.onboarding.deployment_checks import deployment_checks
    from sage_sync.settings import load_settings

    (check,) = deployment_checks(load_settings(), executor="LocalExecutor")
    assert (check.area, check.status) == ("shared location", "ok"), check
    assert "SAGE_SYNC_SHARED_URL" in check.detail
    assert [p for p in shared_folder.rglob("*") if p.is_file()] == []


def test_preflight_blocks_a_shared_location_it_cannot_write(
    tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Shared location, O2: a location that is not writable (here a file where a folder should be) is blocking."""
    from sage_sync.onboarding.deployment_checks import deployment_checks
    from sage_sync.settings import load_settings

    not_a_folder = tmp_path / "taken"
    not_a_folder.write_text("a file, not a folder")
    monkeypatch.setenv("SAGE_SYNC_SHARED_URL", f"file://{not_a_folder}")
    (check,) = deployment_checks(load_settings(), executor="LocalExecutor")
    assert check.status == "blocking", check
    assert "cannot write and read it back" in check.detail


def test_preflight_warns_when_celery_workers_share_neither_step_files_nor_state(home: Path) -> None:
    """Shared location, O2: under the CeleryExecutor, no shared URL and a SQLite state store are both warned about;
    with both set, only the probe line remains."""
    from sage_sync.onboarding.deployment_checks import deployment_checks
    from sage_sync.settings import load_settings

    checks = deployment_checks(load_settings(), executor="CeleryExecutor")
    assert [(c.area, c.status) for c in checks] == [
        ("shared location", "ok"),
        ("shared location", "warning"),
        ("state store", "warning"),
    ]
    assert "SAGE_SYNC_SHARED_URL is not set" in checks[1].detail
    assert "SAGE_SYNC_STATE_URL" in checks[2].detail


def test_preflight_is_quiet_about_celery_when_the_stack_shares_both(
    shared_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Shared location, O2: the native stack's settings (a shared URL, PostgreSQL state) raise no warning."""
    from sage_sync.onboarding.deployment_checks import deployment_checks
    from sage_sync.settings import load_settings

    monkeypatch.setenv("SAGE_SYNC_STATE_URL", "postgresql+psycopg2://sync@db-host/sage_sync_state")
    checks = deployment_checks(load_settings(), executor="CeleryExecutor")
    assert [(c.area, c.status) for c in checks] == [("shared location", "ok")]
