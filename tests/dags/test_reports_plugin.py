"""The Airflow plugin: reports served read-only under /sage-sync, and the report task's "Sync report" link."""

from __future__ import annotations

import runpy
from pathlib import Path
from types import SimpleNamespace

from fastapi.testclient import TestClient

from sage_sync.operators.links import SyncReportLink
from sage_sync.reports_app import create_app

REPO = Path(__file__).resolve().parents[2]


def test_every_route_refuses_an_anonymous_caller(tmp_path: Path) -> None:
    """No session cookie, no bearer token: 401 on every route (the served files exist)."""
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "manual__1.html").write_text("<p>report</p>")
    (tmp_path / "data_docs").mkdir()
    (tmp_path / "data_docs" / "index.html").write_text("<p>docs</p>")
    client = TestClient(create_app(tmp_path))
    single = ("/sync", "/reports", "/reports/manual__1.html", "/data-docs/index.html")
    per_dag = tuple(f"/dags/sage50_ssm_sync{p}" for p in single)
    for path in (*single, *per_dag):
        reply = client.get(path)
        assert reply.status_code == 401, path
        assert "report" not in reply.text and "docs</p>" not in reply.text


def test_sync_report_link_points_at_the_runs_page_of_its_dag() -> None:
    key = SimpleNamespace(dag_id="sage50_ssm_sync__lyon", run_id="manual__2026-11-29T07:00:00+00:00")
    link = SyncReportLink().get_link(None, ti_key=key)
    # Relative: under the UI's base URL; the DAG's own reports (a dossier's DAG reads its dossier's folder).
    assert link == "sage-sync/dags/sage50_ssm_sync__lyon/reports/manual__2026-11-29T07_00_00_00_00.html"


def test_plugin_declares_the_app_the_view_and_the_link() -> None:
    module = runpy.run_path(str(REPO / "plugins" / "sage_sync_reports.py"))
    plugin = module["SageSyncReportsPlugin"]
    assert plugin.fastapi_apps[0]["url_prefix"] == "/sage-sync"
    views = {(v["destination"], v["href"]) for v in plugin.external_views}
    # The DAG tab's href names the DAG: the UI puts the id of the DAG it shows in place of {DAG_ID}.
    assert views == {("nav", "sage-sync/sync"), ("dag", "sage-sync/dags/{DAG_ID}/sync")}
    assert isinstance(plugin.operator_extra_links[0], SyncReportLink)
