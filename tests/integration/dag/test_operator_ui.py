"""The operator's Airflow UI against a real API server (simple auth manager, named users and roles).

One stack (stand-in dossier over ODBC, SSM simulator over HTTP), two runs of the real DAG (``airflow dags test``):
1. the first sync, with a customer row saved without ``CT_Num`` (quarantined, G3);
2. a day of changes on both sides (a contact's job title edited in Sage and in SSM: a G2 conflict) and five
   customers deleted in Sage under a tight guard (G4 withholds the deletions).
Then ``airflow api-server`` serves the UI and the plugin. Checked from the outside, over HTTP: anonymous callers
and users the auth manager does not allow on the sync DAG are refused on every plugin route; a viewer sees the
sync page with the quarantined row (first seen, runs since), the conflict (both values, the winner) and the
withheld deletions with their set.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import sqlalchemy as sa

from sage_sync.engine.staging import run_name
from sage_sync.settings import DAG_ID
from sage_sync_tools.api_server import ApiServer
from sage_sync_tools.stack import DayOfChanges, SyncStack, day_of_changes

#: Five deletions of the stand-in's 60 accounts trip it (G4).
GUARD = {"guard_ratio": 0.05, "guard_minimum": 2}
#: viewer: reads DAGs; op: also changes them; "" (no role): the auth manager allows nothing.
USERS = {"vera": "viewer", "otto": "op", "nora": ""}
PLUGIN_ROUTES = ("/sage-sync/sync", "/sage-sync/reports", "/sage-sync/data-docs/index.html")


@dataclass
class Scenario:
    """The stack, its runs' reports and what the test did to both sides."""

    stack: SyncStack
    server: ApiServer
    reports: dict[str, dict[str, Any]] = field(default_factory=dict)
    day: DayOfChanges = field(default_factory=DayOfChanges)
    deleted: list[str] = field(default_factory=list)


def _customer_without_code(stack: SyncStack) -> None:
    engine = stack.sage()
    try:
        with engine.begin() as db:
            db.execute(
                sa.text(
                    "INSERT INTO F_COMPTET (CT_Num, CT_Intitule, CT_Type, CT_Prospect, CT_Ville, CT_Sommeil) "
                    "VALUES (NULL, 'Sans Code SARL', 0, 0, 'Lyon', 0)"
                )
            )
    finally:
        engine.dispose()


def _delete_customers(stack: SyncStack, count: int) -> list[str]:
    """``count`` customers without documents deleted in Sage with their contacts (a purge)."""
    engine = stack.sage()
    try:
        with engine.begin() as db:
            codes = [
                str(r[0])
                for r in db.execute(
                    sa.text(
                        "SELECT CT_Num FROM F_COMPTET c WHERE CT_Type = 0 AND CT_Num IS NOT NULL AND NOT EXISTS "
                        "(SELECT 1 FROM F_DOCENTETE d WHERE d.DO_Tiers = c.CT_Num) AND NOT EXISTS "
                        "(SELECT 1 FROM F_DOCLIGNE l WHERE l.CT_Num = c.CT_Num) ORDER BY CT_Num LIMIT :n"
                    ),
                    {"n": count},
                )
            ]
            for code in codes:
                for table in ("F_CONTACTT", "F_LIVRAISON", "F_COMPTET"):
                    db.execute(sa.text(f"DELETE FROM {table} WHERE CT_Num = :c"), {"c": code})
        return codes
    finally:
        engine.dispose()


def _run(scenario: Scenario, name: str, **conf: Any) -> dict[str, Any]:
    outcome = scenario.stack.run_dag(**conf)
    assert outcome.returncode == 0, f"{name}: rc {outcome.returncode}\n{outcome.log_tail()}"
    assert outcome.report is not None, f"{name}: no report\n{outcome.log_tail()}"
    scenario.reports[name] = outcome.report
    return outcome.report


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    stack = SyncStack(tmp_path_factory.mktemp("operator_ui"), settings=GUARD)
    server = ApiServer(stack, USERS)
    try:
        stack.start(scale="60", seed=5)
        s = Scenario(stack, server)
        _customer_without_code(stack)
        _run(s, "first")
        s.day = day_of_changes(stack)
        s.deleted = _delete_customers(stack, 5)
        _run(s, "day")
        server.start()
        yield s
    finally:
        server.stop()
        stack.stop()


def test_plugin_routes_refuse_anonymous_callers_and_users_without_access_to_the_dag(scenario: Scenario) -> None:
    server = scenario.server
    report = f"/sage-sync/reports/{run_name(str(scenario.reports['day']['run_id']))}.html"
    for path in (*PLUGIN_ROUTES, report):
        anonymous = server.get(path)
        assert anonymous.status_code == 401, (path, anonymous.text[:200])
        assert "Sans Code" not in anonymous.text
        refused = server.get(path, user="nora")
        assert refused.status_code == 403, (path, refused.text[:200])
    forged = server.get(PLUGIN_ROUTES[0], headers={"Authorization": "Bearer not-a-token"})
    assert forged.status_code in (401, 403)
    # The same user is refused by the core API too: the plugin asks the same auth manager the same question.
    assert server.get(f"/api/v2/dags/{DAG_ID}", user="nora").status_code == 403
    assert server.get(report, user="vera").status_code == 200
    assert server.get("/sage-sync/reports/..%2Fstate.db", user="vera").status_code == 404
    assert server.get("/sage-sync/data-docs/../../state.db", user="vera").status_code == 404


def test_g3_g2_g4_the_sync_page_shows_quarantine_conflict_and_withheld_deletions(scenario: Scenario) -> None:
    page = scenario.server.get("/sage-sync/sync", user="vera")
    assert page.status_code == 200, page.text[:500]
    text = page.text
    first, day = scenario.reports["first"], scenario.reports["day"]
    # Both runs are listed, each linked (relatively) to its run in the Airflow UI and to its report.
    for report in (first, day):
        assert str(report["run_id"]) in text
        assert f"reports/{run_name(str(report['run_id']))}.html" in text
    assert "Signed in as <strong>vera</strong>" in text
    # G3: the row without CT_Num, quarantined since the first run, two runs in a row.
    quarantined = [q for q in day["entities"]["accounts"]["quarantined"]]
    assert quarantined, day["entities"]["accounts"]
    assert str(quarantined[0]["reason"]) in text
    assert f"{first['run_id']}</small>" in text and "<span class='n'>2</span>" in text
    # G2: the contact's job title, both values and the winner.
    assert scenario.day.sage_job_title in text and scenario.day.ssm_job_title in text
    conflicts = day["entities"]["contacts"]["conflicts"]
    assert any(c["winner"] == "sage" for c in conflicts)
    # G4: the withheld deletions with their set fingerprint and a sample of the keys.
    accounts = day["entities"]["accounts"]
    assert accounts["withheld_set"] and accounts["withheld_set"] in text
    assert scenario.deleted[0] in text
