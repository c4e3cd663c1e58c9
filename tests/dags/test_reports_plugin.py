"""The Airflow plugin: reports served read-only under /sage-sync, and the report task's "Sync report" link."""

from __future__ import annotations

import runpy
from pathlib import Path
from types import SimpleNamespace

from fastapi.testclient import TestClient

from sage_sync.operators.links import SyncReportLink
from sage_sync.reports_app import create_app

REPO = Path(__file__).resolve().parents[2]


def test_reports_and_data_docs_are_served_and_nothing_else(tmp_path: Path) -> None:
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "manual__1.html").write_text("<p>report</p>")
    (tmp_path / "data_docs" / "site").mkdir(parents=True)
    (tmp_path / "data_docs" / "site" / "index.html").write_text("<p>docs</p>")
    (tmp_path / "state.db").write_text("secret state")
    client = TestClient(create_app(tmp_path))
    assert "manual__1" in client.get("/reports").text
    assert client.get("/reports/manual__1.html").text == "<p>report</p>"
    assert client.get("/data-docs/site/index.html").text == "<p>docs</p>"
    assert client.get("/reports/..%2Fstate.db").status_code == 404
    assert client.get("/data-docs/../state.db").status_code == 404
    assert client.get("/reports/missing.json").status_code == 404


def test_sync_report_link_points_at_the_runs_page() -> None:
    link = SyncReportLink().get_link(None, ti_key=SimpleNamespace(run_id="manual__2026-11-29T07:00:00+00:00"))
    assert link == "/sage-sync/reports/manual__2026-11-29T07_00_00_00_00.html"


def test_plugin_declares_the_app_the_view_and_the_link() -> None:
    module = runpy.run_path(str(REPO / "plugins" / "sage_sync_reports.py"))
    plugin = module["SageSyncReportsPlugin"]
    assert plugin.fastapi_apps[0]["url_prefix"] == "/sage-sync"
    assert plugin.external_views[0]["href"] == "/sage-sync/reports"
    assert isinstance(plugin.operator_extra_links[0], SyncReportLink)
