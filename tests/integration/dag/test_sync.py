"""The real DAG under ``airflow dags test``: SQLite dossier through the ODBC driver, SSM simulator over HTTP.

One stack per module and five DAG runs in total (each costs about 30 s, mostly Airflow start-up, on 2 cores):
initial sync; a second run with no change (G6); a day of changes on both sides, planned by a dry run (G8); the
real run, after which both systems are checked per rule, SSM through its API and Sage through SQL; then a run on
a snapshot that lost most of its articles (G4).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from sage_sync_tools.bench_e2e import sage_counts
from sage_sync_tools.stack import DagRunOutcome, DayOfChanges, SyncStack, day_of_changes


def _sage_rows(stack: SyncStack) -> dict[str, list[tuple[Any, ...]]]:
    engine = stack.sage()
    try:
        with engine.connect() as db:
            return {
                table: [tuple(r) for r in db.execute(sa.text(f"SELECT * FROM {table} ORDER BY 1, 2"))]
                for table in ("F_COMPTET", "F_CONTACTT")
            }
    finally:
        engine.dispose()


class Runs:
    """What the module's DAG runs produced."""

    def __init__(self, stack: SyncStack) -> None:
        self.stack = stack
        self.outcomes: dict[str, DagRunOutcome] = {}
        self.stats: dict[str, dict[str, Any]] = {}
        self.day = DayOfChanges()
        self.sage_before_dry: dict[str, list[tuple[Any, ...]]] = {}
        self.sage_after_dry: dict[str, list[tuple[Any, ...]]] = {}
        self.initial_accounts: dict[str, int] = {}
        self.live_products_before_guard = 0

    def run(self, name: str, **flags: bool) -> None:
        self.stack.reset_stats()
        outcome = self.stack.run_dag(**flags)
        assert outcome.report is not None, f"{name}: no report\n{outcome.log_tail()}"
        self.outcomes[name] = outcome
        self.stats[name] = self.stack.stats()

    def report(self, name: str) -> dict[str, Any]:
        report = self.outcomes[name].report
        assert report is not None
        return report


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runs]:
    stack = SyncStack(tmp_path_factory.mktemp("dag-sync"))
    try:
        stack.start(scale="80", seed=11)
        result = Runs(stack)
        result.run("initial")
        result.initial_accounts = _account_codes(stack)
        result.run("no_change")
        result.day = day_of_changes(stack)
        result.sage_before_dry = _sage_rows(stack)
        result.run("dry", dry_run=True)
        result.sage_after_dry = _sage_rows(stack)
        result.run("day")
        # G4: a broken read that loses most articles must not wipe the CRM.
        result.live_products_before_guard = _live_products(stack)
        engine = stack.sage()
        with engine.begin() as db:
            db.execute(sa.text("DELETE FROM F_ARTICLE WHERE rowid % 5 <> 0"))
        engine.dispose()
        result.run("guard")
        yield result
    finally:
        stack.stop()


def _account_codes(stack: SyncStack) -> dict[str, int]:
    engine = stack.sage()
    try:
        with engine.connect() as db:
            rows = db.execute(sa.text("SELECT CT_Num, CT_Prospect FROM F_COMPTET WHERE CT_Type = 0"))
            return {str(r[0]): int(r[1]) for r in rows}
    finally:
        engine.dispose()


def _live_products(stack: SyncStack) -> int:
    client = stack.integration_client()
    try:
        return sum(1 for p in client.list("products") if not p.get("deleted"))
    finally:
        client.close()


def _accounts(stack: SyncStack) -> list[dict[str, Any]]:
    client = stack.integration_client()
    try:
        return client.list("accounts")
    finally:
        client.close()


def _ref(value: Any) -> Any:
    return value.get("id") if isinstance(value, dict) else value


def test_c1_initial_run_creates_every_customer_and_prospect_once(runs: Runs) -> None:
    report = runs.report("initial")
    initial = runs.initial_accounts
    assert report["entities"]["accounts"]["counts"]["created"] == len(initial)
    # At the end of the module's runs: every Sage account has exactly one live SSM account (C1).
    codes = _account_codes(runs.stack)
    accounts = [a for a in _accounts(runs.stack) if not a.get("deleted")]
    by_ext = {a["extId"]: a for a in accounts if a.get("extId")}
    assert set(by_ext) == set(codes)
    assert len(by_ext) == len([a for a in accounts if a.get("extId")]), "duplicate extId in SSM (C1)"
    admin = int(runs.stack.keys["admin_user_id"])
    for code, prospect in initial.items():
        if code in (runs.day.converted_code, runs.day.deleted_code):
            continue
        assert by_ext[code]["readOnly"] is (prospect == 0), (
            code
        )  # C2: customers read-only, prospects editable
        assert _ref(by_ext[code]["salesRepId1"]) == admin, code  # C5
    assert report["entities"]["products"]["counts"]["created"] > 0


def test_g6_second_run_without_change_writes_nothing(runs: Runs) -> None:
    stats = runs.stats["no_change"]
    writes = {
        route: n
        for route, n in stats["by_route"].items()
        if not route.startswith("GET") and "login" not in route
    }
    assert stats["writes"] == 0, writes
    totals = runs.report("no_change")["totals"]
    assert (totals["created"], totals["updated"], totals["deleted"], totals["failed"]) == (0, 0, 0, 0)


def test_g8_dry_run_writes_nothing_to_either_side_but_reports_the_plan(runs: Runs) -> None:
    assert runs.stats["dry"]["writes"] == 0, runs.stats["dry"]["by_route"]
    assert runs.sage_after_dry == runs.sage_before_dry
    report = runs.report("dry")
    assert report["dry_run"] is True and report["writes"] == 0
    planned = {(op["kind"], op["key"]) for s in report["entities"].values() for op in s.get("planned", [])}
    assert ("ssm_delete", runs.day.deleted_code) in planned
    assert any(kind == "sage_insert" for kind, _ in planned)


def test_day_of_changes_reaches_both_systems_per_rule(runs: Runs) -> None:
    day, stack = runs.day, runs.stack
    client = stack.integration_client()
    try:
        status = {label: client.value_id("accountStatuses", label) for label in ("Client", "Prospect")}
        accounts = {int(a["id"]): a for a in client.list("accounts")}
        contacts = {int(c["id"]): c for c in client.list("contacts")}
        products = {p["extId"]: p for p in client.list("products") if p.get("extId")}
    finally:
        client.close()
    engine = stack.sage()
    with engine.connect() as db:
        comptet = {r.CT_Num: r for r in db.execute(sa.text("SELECT * FROM F_COMPTET WHERE CT_Type = 0"))}
        contact_rows = list(db.execute(sa.text("SELECT * FROM F_CONTACTT")))
    engine.dispose()

    # P1: a prospect created in SSM is created in Sage and gets its code back as extId.
    prospect = accounts[day.ssm_prospect_id]
    assert prospect["extId"] in comptet and comptet[prospect["extId"]].CT_Prospect == 1
    assert comptet[prospect["extId"]].CT_Intitule == "Fromagerie des Alpes"
    # C4 + C6: a "Client" company created in SSM becomes a Sage customer, read-only in SSM, SALES_REP filled.
    client_rec = accounts[day.ssm_client_id]
    assert client_rec["extId"] in comptet and comptet[client_rec["extId"]].CT_Prospect == 0
    assert comptet[client_rec["extId"]].SALES_REP == "Camille Martin"
    assert client_rec["readOnly"] is True
    # P2: the prospect converted in Sage is a read-only Client in SSM.
    converted = next(
        a for a in accounts.values() if a.get("extId") == day.converted_code and not a["deleted"]
    )
    assert _ref(converted["statusId"]) == status["Client"] and converted["readOnly"] is True
    # C3: the customer deleted in Sage is soft-deleted in SSM.
    assert accounts[day.deleted_ssm_id]["deleted"] is True
    # G2: the job title edited on both sides: Sage wins on both sides and the conflict is reported.
    code, number = day.edited_contact
    sage_contact = next(r for r in contact_rows if r.CT_Num == code and r.CT_No == number)
    assert sage_contact.CT_Fonction == day.sage_job_title
    assert contacts[day.edited_contact_ssm_id]["Z_JobTitle"] == day.sage_job_title
    conflicts = runs.report("day")["entities"]["contacts"]["conflicts"]
    assert any(c["key"] == f"{code}/{number}" and c["winner"] == "sage" for c in conflicts)
    # K1: the contact added in SSM is created in Sage under the same account, and bound back.
    added = [r for r in contact_rows if r.CT_Num == day.ssm_contact_account and r.CT_Nom == "Moreau"]
    assert len(added) == 1
    assert contacts[day.ssm_contact_id]["extId"] == f"{day.ssm_contact_account}/{added[0].CT_No}"
    # D5: the article put asleep is not available in SSM.
    assert products[day.asleep_ref]["notAvailable"] is True


def test_g4_shrunken_snapshot_withholds_every_deletion_and_says_why(runs: Runs) -> None:
    products = runs.report("guard")["entities"]["products"]
    assert products["status"] == "ok" and not products["table_failures"]
    assert "vanished from Sage" in (products["guard"] or ""), products["guard"]
    withheld = [d for d in products["deferred"] if d["rule"] == "G4"]
    assert withheld and all("deletion withheld" in d["reason"] for d in withheld)
    assert products["counts"]["deleted"] == 0
    assert _live_products(runs.stack) == runs.live_products_before_guard
    writes = {route: n for route, n in runs.stats["guard"]["by_route"].items() if "/products" in route}
    assert not any(route.startswith("DELETE") for route in writes), writes


def test_i1_posted_invoice_is_an_update_of_the_same_sales_order(runs: Runs) -> None:
    assert runs.day.posted_piece, "the dossier has no open invoice to post"
    client = runs.stack.integration_client()
    try:
        orders = [o for o in client.list("salesorders") if o.get("extId") == runs.day.posted_piece]
    finally:
        client.close()
    assert len(orders) == 1 and orders[0]["deleted"] is False


def test_g7_report_files_exist_for_every_run_and_hold_no_secret(runs: Runs) -> None:
    reports = runs.stack.sage_sync_home / "reports"
    names = {p.name for p in reports.glob("*.json")}
    assert "latest.json" in names
    assert len(names - {"latest.json"}) == len(runs.outcomes)
    secrets = [runs.stack.keys[k]["private_key"] for k in ("integration", "user")]
    for path in Path(reports).iterdir():
        text = path.read_text(encoding="utf-8")
        assert not any(s in text for s in secrets), path
    day = runs.report("day")
    assert set(day["entities"]) == {"accounts", "contacts", "products", "invoices"}
    for section in day["entities"].values():
        assert {
            "created",
            "updated",
            "deleted",
            "unchanged",
            "deferred",
            "quarantined",
            "conflicts",
            "failed",
        } <= set(section["counts"])
        assert section["data_docs"] and Path(section["data_docs"]).exists()


def test_bench_naive_baseline_counts_every_header_and_line_as_the_sync_reads_them(runs: Runs) -> None:
    """The bench's naive full push (ADR 0018) is counted from the dossier as read through ODBC: one record per
    account, one per invoice and one per line of an invoice in scope (lines grouped by piece, not built one by one).
    """
    in_scope = "DO_Domaine = 0 AND DO_Type IN (6, 7)"
    engine = runs.stack.sage()
    try:
        with engine.connect() as db:
            accounts = db.execute(sa.text("SELECT COUNT(*) FROM F_COMPTET WHERE CT_Type = 0")).scalar()
            invoices = db.execute(sa.text(f"SELECT COUNT(*) FROM F_DOCENTETE WHERE {in_scope}")).scalar()
            lines = db.execute(
                sa.text(
                    f"SELECT COUNT(*) FROM F_DOCLIGNE WHERE {in_scope} "
                    f"AND DO_Piece IN (SELECT DO_Piece FROM F_DOCENTETE WHERE {in_scope})"
                )
            ).scalar()
    finally:
        engine.dispose()
    counts = sage_counts(runs.stack)
    assert lines and (counts["accounts"], counts["salesorders"], counts["salesordersLines"]) == (
        accounts,
        invoices,
        lines,
    )
