"""The core scenario on a PostgreSQL ``WIN1252`` dossier read and written through psqlODBC (``PostgreSQL Unicode``).

Two DAG runs (initial sync, then a day of changes on both sides); the SQLite module covers the remaining rules.
Accented names created in SSM must reach the WIN1252 database intact.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from sage_sync_tools.stack import DagRunOutcome, DayOfChanges, SyncStack, day_of_changes
from tests.support.postgres import PostgresServer, postgres_server  # noqa: F401


class PgRuns:
    def __init__(self, stack: SyncStack) -> None:
        self.stack = stack
        self.initial: DagRunOutcome | None = None
        self.final: DagRunOutcome | None = None
        self.day = DayOfChanges()
        self.initial_accounts = 0


def _one(stack: SyncStack, sql: str, **params: Any) -> Any:
    engine = stack.sage()
    try:
        with engine.connect() as db:
            return db.execute(sa.text(sql), params).one()
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def pg_runs(postgres_server: PostgresServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PgRuns]:  # noqa: F811
    url = postgres_server.create_database("dag_dossier")
    target = {
        "host": postgres_server.host,
        "port": postgres_server.port,
        "user": postgres_server.user,
        "database": "dag_dossier",
        "url": url,
    }
    stack = SyncStack(tmp_path_factory.mktemp("dag-pg"), postgres=target)
    try:
        stack.start(scale="60", seed=5)
        runs = PgRuns(stack)
        runs.initial = stack.run_dag()
        assert runs.initial.report is not None, runs.initial.log_tail()
        runs.initial_accounts = int(_one(stack, "SELECT COUNT(*) FROM F_COMPTET WHERE CT_Type = 0")[0])
        runs.day = day_of_changes(stack)
        runs.final = stack.run_dag()
        assert runs.final.report is not None, runs.final.log_tail()
        yield runs
    finally:
        stack.stop()


def test_core_scenario_on_a_postgresql_win1252_dossier(pg_runs: PgRuns) -> None:
    """C1, P1, C4, C6, C3, K1, G2 on PostgreSQL, both systems checked at the end."""
    assert pg_runs.initial is not None and pg_runs.initial.report is not None
    assert pg_runs.final is not None and pg_runs.final.report is not None
    stack, day = pg_runs.stack, pg_runs.day
    assert pg_runs.initial.report["entities"]["accounts"]["counts"]["created"] == pg_runs.initial_accounts
    client = stack.integration_client()
    try:
        accounts = {int(a["id"]): a for a in client.list("accounts")}
        contacts = {int(c["id"]): c for c in client.list("contacts")}
    finally:
        client.close()
    live_ext = [a["extId"] for a in accounts.values() if a.get("extId") and not a["deleted"]]
    assert len(live_ext) == len(set(live_ext))  # C1: no duplicate extId
    # P1: prospect created in SSM, now in Sage.
    prospect_code = accounts[day.ssm_prospect_id]["extId"]
    row = _one(stack, "SELECT CT_Prospect, CT_Intitule FROM F_COMPTET WHERE CT_Num = :c", c=prospect_code)
    assert (row[0], row[1]) == (1, "Fromagerie des Alpes")
    # C4 + C6: "Client" company created in SSM, a Sage customer with its sales rep's name.
    client_code = accounts[day.ssm_client_id]["extId"]
    row = _one(stack, "SELECT CT_Prospect, SALES_REP FROM F_COMPTET WHERE CT_Num = :c", c=client_code)
    assert (row[0], row[1]) == (0, "Camille Martin")
    assert accounts[day.ssm_client_id]["readOnly"] is True
    # C3: customer deleted in Sage, soft-deleted in SSM.
    assert accounts[day.deleted_ssm_id]["deleted"] is True
    # K1: the SSM contact with an accented first name, stored intact in the WIN1252 database.
    row = _one(
        stack,
        "SELECT CT_Prenom, CT_No FROM F_CONTACTT WHERE CT_Num = :c AND CT_Nom = 'Moreau'",
        c=day.ssm_contact_account,
    )
    assert row[0] == "Léa"
    assert contacts[day.ssm_contact_id]["extId"] == f"{day.ssm_contact_account}/{row[1]}"
    # G2: same field edited on both sides, Sage wins on both sides.
    code, number = day.edited_contact
    row = _one(stack, "SELECT CT_Fonction FROM F_CONTACTT WHERE CT_Num = :c AND CT_No = :n", c=code, n=number)
    assert row[0] == day.sage_job_title
    assert contacts[day.edited_contact_ssm_id]["Z_JobTitle"] == day.sage_job_title
    conflicts = pg_runs.final.report["entities"]["contacts"]["conflicts"]
    assert any(c["key"] == f"{code}/{number}" for c in conflicts)
