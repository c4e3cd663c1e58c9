"""Reliability under operators' hands, through the real DAG (``airflow dags test``, SQLite dossier over ODBC, SSM
simulator over HTTP).

One stack and six DAG runs, each scenario building on the last as an operator's first week would:
1. G8: a dry run on a fresh state plans the whole first sync and writes nothing to either side;
2. G3/C1/I1 and the run lease: a Sage row without ``CT_Num`` and a ``DO_Piece`` saved as type 6 and 7 are in the
   dossier; two runs are started at the same moment: one syncs, the other is skipped and says so; only the two
   bad keys are quarantined, everything else reaches SSM exactly once;
3. G4: five customers are deleted in Sage (with a tight guard), one is added and one edited: the creation and the
   edit reach SSM, the deletions are withheld; a later dry run with the A1 approval shows the deletions it would
   apply and writes nothing; the real run with that approval applies them.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import sqlalchemy as sa

from sage_sync_tools.stack import DagRunOutcome, SyncStack
from tests.support.sage_edits import insert_customer_without_code, purge_customers

#: Tight enough for the stand-in's 60 accounts: five deletions (8 %) are a mass deletion (G4).
GUARD = {"guard_ratio": 0.05, "guard_minimum": 2}
NEW_CODE = "CNEW0001"


@dataclass
class Week:
    """What the module's runs produced, and the facts of the dossier they were checked against."""

    stack: SyncStack
    outcomes: dict[str, DagRunOutcome] = field(default_factory=dict)
    writes: dict[str, int] = field(default_factory=dict)
    sage_rows: dict[str, int] = field(default_factory=dict)
    together: list[DagRunOutcome] = field(default_factory=list)
    duplicate_piece: str = ""
    deleted: list[str] = field(default_factory=list)
    edited: str = ""
    withheld: dict[str, int] = field(default_factory=dict)

    def run(self, name: str, **conf: Any) -> dict[str, Any]:
        self.stack.reset_stats()
        outcome = self.stack.run_dag(**conf)
        self.outcomes[name] = outcome
        self.writes[name] = int(self.stack.stats()["writes"])
        assert outcome.returncode == 0, f"{name}: rc {outcome.returncode}\n{outcome.log_tail()}"
        assert outcome.report is not None, f"{name}: no report\n{outcome.log_tail()}"
        return outcome.report

    def report(self, name: str) -> dict[str, Any]:
        report = self.outcomes[name].report
        assert report is not None
        return report


def _count_rows(stack: SyncStack) -> dict[str, int]:
    engine = stack.sage()
    try:
        with engine.connect() as db:
            counts = {
                t: int(db.execute(sa.text(f"SELECT COUNT(*) FROM {t}")).scalar_one())
                for t in ("F_COMPTET", "F_CONTACTT", "F_ARTICLE", "F_DOCENTETE", "F_DOCLIGNE")
            }
            # What the sync reads of them: customers and prospects (CT_Type 0) and their contacts.
            counts["customers"] = int(
                db.execute(sa.text("SELECT COUNT(*) FROM F_COMPTET WHERE CT_Type = 0")).scalar_one()
            )
            counts["customer contacts"] = int(
                db.execute(
                    sa.text(
                        "SELECT COUNT(*) FROM F_CONTACTT k JOIN F_COMPTET c ON c.CT_Num = k.CT_Num "
                        "WHERE c.CT_Type = 0"
                    )
                ).scalar_one()
            )
            return counts
    finally:
        engine.dispose()


def _seed_bad_keys(stack: SyncStack) -> str:
    """A customer row without CT_Num, and an open invoice whose piece was also saved as posted (type 7)."""
    insert_customer_without_code(stack)
    engine = stack.sage()
    try:
        with engine.begin() as db:
            piece = str(
                db.execute(
                    sa.text("SELECT DO_Piece FROM F_DOCENTETE WHERE DO_Type = 6 ORDER BY DO_Piece LIMIT 1")
                ).scalar_one()
            )
            columns = [r[1] for r in db.execute(sa.text("PRAGMA table_info(F_DOCENTETE)"))]
            select = ", ".join("7" if c == "DO_Type" else c for c in columns)
            db.execute(
                sa.text(
                    f"INSERT INTO F_DOCENTETE ({', '.join(columns)}) SELECT {select} FROM F_DOCENTETE "
                    "WHERE DO_Type = 6 AND DO_Piece = :p"
                ),
                {"p": piece},
            )
        return piece
    finally:
        engine.dispose()


def _a_day_that_trips_the_guard(stack: SyncStack) -> tuple[list[str], str]:
    """Five customers without documents deleted with their contacts, one customer added, one edited."""
    deleted = purge_customers(stack, 5)
    engine = stack.sage()
    try:
        with engine.begin() as db:
            db.execute(
                sa.text(
                    "INSERT INTO F_COMPTET (CT_Num, CT_Intitule, CT_Type, CT_Prospect, CT_Ville, CT_Sommeil) "
                    "VALUES (:c, 'Nouvelle Cliente SAS', 0, 0, 'Nantes', 0)"
                ),
                {"c": NEW_CODE},
            )
            edited = str(
                db.execute(
                    sa.text(
                        "SELECT CT_Num FROM F_COMPTET c WHERE CT_Type = 0 AND CT_Num IS NOT NULL AND EXISTS "
                        "(SELECT 1 FROM F_DOCENTETE d WHERE d.DO_Tiers = c.CT_Num) ORDER BY CT_Num LIMIT 1"
                    )
                ).scalar_one()
            )
            db.execute(sa.text("UPDATE F_COMPTET SET CT_Ville = 'Quimper' WHERE CT_Num = :c"), {"c": edited})
        return deleted, edited
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def week(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Week]:
    root = tmp_path_factory.mktemp("reliability")
    stack = SyncStack(root, settings=GUARD, lineage_file=root / "lineage.jsonl")
    try:
        stack.start(scale="60", seed=5)
        w = Week(stack)
        w.sage_rows = _count_rows(stack)
        w.run("dry_first", dry_run=True)
        assert _count_rows(stack) == w.sage_rows, "G8: the dry run changed the dossier"
        w.duplicate_piece = _seed_bad_keys(stack)
        stack.reset_stats()
        w.together = stack.run_dags([{}, {}])
        w.deleted, w.edited = _a_day_that_trips_the_guard(stack)
        guarded = w.run("guarded")
        w.withheld = {
            entity: sum(1 for d in section.get("deferred") or [] if d["rule"] == "G4")
            for entity, section in guarded["entities"].items()
            if section.get("withheld_set")
        }
        w.run("dry_approved", dry_run=True, approve_deletions=w.withheld)
        w.run("approved", approve_deletions=w.withheld)
        yield w
    finally:
        stack.stop()


def _ssm(stack: SyncStack, endpoint: str) -> list[dict[str, Any]]:
    client = stack.integration_client()
    try:
        return client.list(endpoint)
    finally:
        client.close()


def _live_by_ext(stack: SyncStack, endpoint: str) -> Counter[str]:
    return Counter(r["extId"] for r in _ssm(stack, endpoint) if r.get("extId") and not r.get("deleted"))


def _planned(report: dict[str, Any]) -> Counter[tuple[str, str]]:
    return Counter(
        {
            (entity, kind): n
            for entity, s in report["entities"].items()
            for kind, n in (s.get("planned_by_kind") or {}).items()
        }
    )


def test_g8_a_dry_run_on_a_fresh_state_plans_the_first_sync_and_writes_nothing(week: Week) -> None:
    report = week.report("dry_first")
    assert week.writes["dry_first"] == 0
    assert report["dry_run"] is True and report["writes"] == 0
    assert not [
        e for e, s in report["entities"].items() if s["status"] in ("failed", "incomplete", "not run")
    ]
    planned = _planned(report)
    # The whole first sync is in the plan, dependants included: what the first real run then created (the
    # accounts and the invoice the real run found quarantined aside: a row without CT_Num, a piece saved twice).
    first_real = next(o.report for o in week.together if o.report and not o.report.get("skipped"))
    assert first_real is not None
    created = {e: s["counts"]["created"] for e, s in first_real["entities"].items()}
    assert planned[("accounts", "ssm_create")] == week.sage_rows["customers"] == created["accounts"]
    assert planned[("contacts", "ssm_create")] == created["contacts"] > 0
    assert planned[("products", "ssm_create")] == week.sage_rows["F_ARTICLE"] == created["products"]
    engine = week.stack.sage()
    with engine.connect() as db:
        lines = db.execute(
            sa.text("SELECT COUNT(*) FROM F_DOCLIGNE WHERE DO_Type = 6 AND DO_Piece = :p"),
            {"p": week.duplicate_piece},
        ).scalar_one()
    engine.dispose()
    # Sales orders and their lines: all but the piece saved twice (its header and its lines).
    assert planned[("invoices", "ssm_create")] == created["invoices"] + 1 + int(lines) > 1
    # Nothing waits for a record the run itself would create; only what the rules hold back (P5: prospects' contacts).
    assert {d["rule"] for s in report["entities"].values() for d in s.get("deferred") or []} <= {"P5"}


def test_lease_two_runs_started_together_one_syncs_and_the_other_is_skipped(week: Week) -> None:
    assert [o.returncode for o in week.together] == [0, 0], [o.log_tail() for o in week.together]
    reports = [o.report for o in week.together]
    assert all(r is not None for r in reports), [o.log_tail() for o in week.together]
    skipped = [r for r in reports if r and r.get("skipped")]
    synced = [r for r in reports if r and not r.get("skipped")]
    assert len(skipped) == 1 and len(synced) == 1, [(r or {}).get("status") for r in reports]
    assert skipped[0]["status"] == "skipped" and "held the sync" in skipped[0]["skipped"]
    assert skipped[0]["writes"] == 0
    # C1/G5: every Sage account, contact and invoice is in SSM exactly once, whatever the overlap did.
    for endpoint in ("accounts", "contacts", "products", "salesorders"):
        twice = {k: n for k, n in _live_by_ext(week.stack, endpoint).items() if n > 1}
        assert not twice, f"{endpoint} created twice: {twice}"


def test_g3_only_the_null_code_and_the_shared_piece_are_quarantined_the_rest_syncs(week: Week) -> None:
    synced = next(o.report for o in week.together if o.report and not o.report.get("skipped"))
    assert synced is not None
    sections = synced["entities"]
    assert [q["key"] for q in sections["accounts"]["quarantined"]] == [
        "no CT_Num: CT_Intitule='Sans Code SARL', CT_Ville='Lyon'"
    ]
    assert "without CT_Num" in sections["accounts"]["quarantined"][0]["reason"]
    assert [q["key"] for q in sections["invoices"]["quarantined"]] == [week.duplicate_piece]
    assert "DO_Type 6 / 7" in sections["invoices"]["quarantined"][0]["reason"]
    for entity in ("accounts", "contacts", "products", "invoices"):
        assert sections[entity]["status"] == "ok", (entity, sections[entity])
    # Everything else reached SSM (checked on the final state, after the guard scenario's changes).
    engine = week.stack.sage()
    with engine.connect() as db:
        codes = {
            str(r[0])
            for r in db.execute(
                sa.text("SELECT CT_Num FROM F_COMPTET WHERE CT_Type = 0 AND CT_Num IS NOT NULL")
            )
        }
        pieces = {
            str(r[0])
            for r in db.execute(
                sa.text(
                    "SELECT DISTINCT DO_Piece FROM F_DOCENTETE WHERE DO_Domaine = 0 AND DO_Type IN (6, 7)"
                )
            )
        }
    engine.dispose()
    assert set(_live_by_ext(week.stack, "accounts")) == codes
    assert set(_live_by_ext(week.stack, "salesorders")) == pieces - {week.duplicate_piece}


def test_g4_guard_withholds_only_deletions_creations_and_edits_flow(week: Week) -> None:
    report = week.report("guarded")
    accounts = report["entities"]["accounts"]
    assert accounts["counts"]["created"] == 1 and accounts["counts"]["deleted"] == 0
    assert accounts["counts"]["updated"] >= 1
    assert week.withheld["accounts"] == len(week.deleted) == 5
    assert "withheld" in accounts["guard"] and accounts["withheld_set"]
    assert sorted(d["key"] for d in accounts["deferred"] if d["rule"] == "G4") == sorted(week.deleted)
    by_ext = {a["extId"]: a for a in _ssm(week.stack, "accounts") if a.get("extId")}
    assert by_ext[NEW_CODE]["name"] == "Nouvelle Cliente SAS" and not by_ext[NEW_CODE]["deleted"]
    assert by_ext[week.edited]["city"] == "Quimper"


def test_g8_a_later_dry_run_shows_what_the_approval_would_delete_and_writes_nothing(week: Week) -> None:
    report = week.report("dry_approved")
    assert week.writes["dry_approved"] == 0 and report["writes"] == 0
    deletes = sorted(
        op["key"] for op in report["entities"]["accounts"]["planned"] if op["kind"] == "ssm_delete"
    )
    assert deletes == sorted(week.deleted)


def test_a1_the_conf_approval_applies_exactly_the_withheld_deletions(week: Week) -> None:
    report = week.report("approved")
    accounts = report["entities"]["accounts"]
    assert accounts["counts"]["deleted"] == 5
    assert accounts["approval"] == "5" and "approved for this run" in accounts["guard"]
    by_ext = {a["extId"]: a for a in _ssm(week.stack, "accounts") if a.get("extId")}
    assert all(by_ext[code]["deleted"] for code in week.deleted)
    live = [a for a in by_ext.values() if not a["deleted"]]
    assert len(live) == len(_live_by_ext(week.stack, "accounts"))
    # The contacts of the deleted customers went with them, when their deletion was withheld too.
    if "contacts" in week.withheld:
        assert report["entities"]["contacts"]["counts"]["deleted"] == week.withheld["contacts"]


def test_lineage_each_entity_load_emits_its_sage_tables_and_ssm_endpoints(week: Week) -> None:
    """OpenLineage (file transport): every load names what it read and wrote, and no secret."""
    assert week.stack.lineage_file is not None
    text = week.stack.lineage_file.read_text(encoding="utf-8")
    events = [json.loads(line) for line in text.splitlines() if line.strip()]
    loads = {
        e["job"]["name"].split(".")[-2]: e
        for e in events
        if e["eventType"] == "COMPLETE" and e["job"]["name"].endswith(".load")
    }
    assert set(loads) == {"accounts", "contacts", "products", "invoices"}

    def names(event: dict[str, Any], side: str) -> set[str]:
        return {d["name"] for d in event.get(side) or []}

    assert names(loads["products"], "inputs") >= {"F_ARTICLE", "F_ARTSTOCK", "F_FAMILLE"}
    assert names(loads["products"], "outputs") == {"products"}
    assert names(loads["invoices"], "outputs") == {"salesorders", "salesordersLines"}
    assert names(loads["accounts"], "outputs") == {"accounts", "F_COMPTET"}  # two-way: written back to Sage
    sage = next(d for d in loads["accounts"]["inputs"] if d["name"] == "F_COMPTET")
    assert sage["namespace"] == f"sage50://file/{str(week.stack.dossier).lstrip('/')}"
    for key in ("integration", "user"):
        assert week.stack.keys[key]["private_key"] not in text
