"""Onboarding a real deployment (M1, M2, O1, O2) on real ODBC, the SSM simulator and the real DAGs.

One stack for the module (wall-time budget: 3 minutes on 2 cores):

* two dossiers in one dossiers file: ``lyon`` (SQLite through the SQLite3 ODBC driver) and ``paris`` (PostgreSQL
  WIN1252 through psqlODBC), whose account codes overlap, each with its own extId prefix and SSM branch;
* an SSM tenant that a sales team already used: 300 companies without extId in lyon's branch, typed their way
  (same SIRET with spaces, same VAT number, names in capitals without accents, typographic apostrophes, a legal
  form added), 10 Sage customers typed twice (ambiguous pairs) and 60 companies Sage does not know;
* both DAGs ``sage50_ssm_sync__lyon`` and ``sage50_ssm_sync__paris`` run at the same moment under a tenant rate
  limit; then a person confirms the waiting proposals in ``decisions.csv`` and ``sage-sync match`` binds them;
* ``sage-sync doctor`` on a dossiers file seeded with one misconfiguration per entry.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
import unicodedata
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy as sa
import yaml

from sage_sync.onboarding import normalise as nz
from sage_sync_tools.api_server import ApiServer
from sage_sync_tools.stack import SyncStack, _bin
from tests.support.per_dag_auth import ACCESS_ENV
from tests.support.postgres import PostgresServer, postgres_server  # noqa: F401

#: The tenant's API rate limit (requests per second, one bucket for the integration key), also the connection's
#: ``requests_per_second`` as a user sets it: two dossiers running together stay under the limit only if their
#: task processes share the key's pace (M1); each at the full rate would make twice the calls the limit allows.
TENANT_RATE = 8.0
LYON_BRANCH, PARIS_BRANCH = 2, 1


def _strip_accents(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def _typed_by_sales(name: str, i: int) -> str:
    """How a salesperson types a company name: capitals without accents, typographic apostrophes, a legal form."""
    variants = (
        lambda s: _strip_accents(s).upper(),
        lambda s: s.replace("'", "\u2019").lower(),
        lambda s: f"{_strip_accents(s)} SARL",
        lambda s: f"Ets {s.upper()}",
    )
    return variants[i % len(variants)](name)


def _spaced_siret(siret: str) -> str:
    return f"{siret[:3]} {siret[3:6]} {siret[6:9]} {siret[9:]}"


@dataclass
class Truth:
    """What the pre-filled tenant holds and which Sage account each pre-filled company really is."""

    pairs: dict[int, str] = field(default_factory=dict)  # SSM id -> Sage code (bindable pairs)
    tier: dict[int, str] = field(default_factory=dict)  # SSM id -> how it was typed
    ambiguous: dict[str, list[int]] = field(default_factory=dict)  # Sage code -> its two SSM companies
    strangers: list[int] = field(default_factory=list)  # companies Sage does not know


class DossiersStack(SyncStack):
    """A stack with two dossiers: lyon (the stack's SQLite dossier) and paris (a PostgreSQL WIN1252 dossier)."""

    paris: dict[str, Any]
    dossiers_file: Path

    def env(self) -> dict[str, str]:
        env = super().env()
        lyon = json.loads(env["AIRFLOW_CONN_SAGE50_DEFAULT"])
        paris = {
            "conn_type": "odbc",
            "host": self.paris["host"],
            "port": self.paris["port"],
            "login": self.paris["user"],
            "schema": self.paris["database"],
            "extra": {"driver": "PostgreSQL Unicode"},
        }
        env.update(
            {
                "AIRFLOW_CONN_SAGE50_LYON": json.dumps(lyon),
                "AIRFLOW_CONN_SAGE50_PARIS": json.dumps(paris),
                "SAGE_SYNC_DOSSIERS": str(self.dossiers_file),
            }
        )
        return env

    def home_of(self, dossier: str) -> Path:
        return self.sage_sync_home / "dossiers" / dossier

    def run_together(self, dag_ids: list[str]) -> dict[str, subprocess.CompletedProcess[str]]:
        """One ``airflow dags test`` per DAG, running together; waits for all.

        Each starts once the previous one has stored the DAGs (its first task began): two processes storing the
        same new DAGs and assets at the same moment would collide in the metadata database.
        """
        launched = {}
        for dag_id in dag_ids:
            if launched:
                previous = self.root / f"{list(launched)[-1]}.log"
                deadline = time.monotonic() + 120
                while "starting task_id=preflight" not in previous.read_text(errors="replace"):
                    assert time.monotonic() < deadline, previous.read_text(errors="replace")[-3000:]
                    time.sleep(0.2)
            log = (self.root / f"{dag_id}.log").open("w")
            launched[dag_id] = (
                subprocess.Popen(
                    [_bin("airflow"), "dags", "test", dag_id, "--conf", "{}"],
                    env=self.env(),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    text=True,
                ),
                log,
            )
        out = {}
        for dag_id, (process, log) in launched.items():
            code = process.wait(timeout=600)
            log.close()
            text = (self.root / f"{dag_id}.log").read_text(errors="replace")
            out[dag_id] = subprocess.CompletedProcess(process.args, code, text, "")
        return out

    def admin_call(self, path: str, body: Any) -> Any:
        """``POST /__sim/<path>`` on the simulator."""
        reply = requests.post(f"{self.admin_url}/{path}", json=body, timeout=30)
        reply.raise_for_status()
        return reply.json()

    def cli(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """``sage-sync ...`` in the stack's environment."""
        return self.cli_start(*args, env=env).wait_done()

    def cli_start(self, *args: str, env: dict[str, str] | None = None) -> Command:
        """Start ``sage-sync ...`` in the stack's environment; ``wait_done()`` waits for it."""
        return Command([sys.executable, "-m", "sage_sync.cli", *args], env or self.env())


class Command:
    """A command running in the background, its output captured."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.args = args
        self.process = subprocess.Popen(
            args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )

    def wait_done(self) -> subprocess.CompletedProcess[str]:
        out, err = self.process.communicate(timeout=300)
        return subprocess.CompletedProcess(self.args, self.process.returncode, out, err)


def _prefill(stack: DossiersStack, lyon: list[dict[str, Any]]) -> Truth:
    """Type 300 companies into lyon's branch as a sales team would have (see the module docstring)."""
    truth = Truth()
    user = stack.user_client()
    client_status = user.value_id("accountStatuses", "Client")
    prospect_status = user.value_id("accountStatuses", "Prospect")
    user_id = int(user.call("GET", "users")[0]["id"])
    # One SIRET or VAT number per Sage account (a SIREN shared by two establishments would be a real ambiguity).
    siret_count = Counter(nz.siret(r["CT_Siret"]) for r in lyon)
    vat_count = Counter(nz.vat_number(r["CT_Identifiant"]) for r in lyon)
    sirets = [
        r
        for r in lyon
        if (siret := nz.siret(r["CT_Siret"])) and nz.siret_valid(siret) and siret_count[siret] == 1
    ]
    by_siret = sirets[:80]
    doubled = sirets[80:90]
    used = {r["CT_Num"] for r in by_siret + doubled}
    by_vat = [
        r
        for r in lyon
        if r["CT_Num"] not in used and (vat := nz.vat_number(r["CT_Identifiant"])) and vat_count[vat] == 1
    ][:60]
    used |= {r["CT_Num"] for r in by_vat}
    folded = Counter((nz.company_name(r["CT_Intitule"]), nz.postcode(r["CT_CodePostal"])) for r in lyon)
    by_name = [
        r
        for r in lyon
        if r["CT_Num"] not in used
        and r["CT_CodePostal"]
        and nz.company_name(r["CT_Intitule"])
        and folded[(nz.company_name(r["CT_Intitule"]), nz.postcode(r["CT_CodePostal"]))] == 1
    ][:80]
    assert (len(by_siret), len(doubled), len(by_vat), len(by_name)) == (80, 10, 60, 80)
    common = {"branchId": LYON_BRANCH, "salesRepId1": user_id, "statusId": client_status}
    items: list[tuple[str, str | None, dict[str, Any]]] = []  # (tier, Sage code, record)
    for i, r in enumerate(by_siret):
        name = _typed_by_sales(r["CT_Intitule"], i)
        items.append(
            ("SIRET", r["CT_Num"], {"name": name, "Z_Siret": _spaced_siret(nz.siret(r["CT_Siret"]) or "")})
        )
    for i, r in enumerate(doubled):
        for copy in (r["CT_Intitule"], _typed_by_sales(r["CT_Intitule"], i) + " (2)"):
            items.append(("ambiguous", r["CT_Num"], {"name": copy, "Z_Siret": nz.siret(r["CT_Siret"])}))
    for i, r in enumerate(by_vat):
        vat = str(r["CT_Identifiant"])
        items.append(
            ("VAT", r["CT_Num"], {"name": _typed_by_sales(r["CT_Intitule"], i), "vatNumber": vat.lower()})
        )
    for i, r in enumerate(by_name):
        items.append(
            (
                "name",
                r["CT_Num"],
                {"name": _typed_by_sales(r["CT_Intitule"], i), "postcode": r["CT_CodePostal"]},
            )
        )
    for i in range(60):
        items.append(
            (
                "stranger",
                None,
                {"name": f"Comptoir Imaginaire {i:02d}", "postcode": "04100", "statusId": prospect_status},
            )
        )
    assert len(items) == 300
    body = [
        {"guid": f"g{n}", "data": {**common, "phone2": f"04 00 00 {n:04d}"[:14], **rec}}
        for n, (_, _, rec) in enumerate(items)
    ]
    created: list[dict[str, Any]] = []
    for start in range(0, len(body), 150):
        created += user.call("POST", "accounts/bulk", body[start : start + 150])
    user.close()
    assert all(int(c["status"]) == 200 for c in created), [c for c in created if int(c["status"]) != 200][:3]
    for (tier, code, _), answer in zip(items, created, strict=True):
        ssm_id = int(answer["id"])
        truth.tier[ssm_id] = tier
        if tier == "stranger":
            truth.strangers.append(ssm_id)
        elif tier == "ambiguous":
            truth.ambiguous.setdefault(str(code), []).append(ssm_id)
        else:
            truth.pairs[ssm_id] = str(code)
    return truth


def _rows(engine: sa.Engine, sql: str) -> list[dict[str, Any]]:
    try:
        with engine.connect() as db:
            return [dict(r._mapping) for r in db.execute(sa.text(sql))]
    finally:
        engine.dispose()


ACCOUNTS_SQL = (
    "SELECT CT_Num, CT_Intitule, CT_CodePostal, CT_Siret, CT_Identifiant, CT_Prospect FROM F_COMPTET "
    "WHERE CT_Type = 0 ORDER BY CT_Num"
)


def _homonyms(stack: DossiersStack, codes: list[str]) -> list[str]:
    """Give paris accounts with the codes of some lyon accounts (another company, the same CT_Num)."""
    engine = sa.create_engine(stack.paris["url"])
    try:
        with engine.begin() as db:
            for n, code in enumerate(codes):
                db.execute(
                    sa.text(
                        "INSERT INTO F_COMPTET (CT_Num, CT_Intitule, CT_Type, CT_Prospect, CT_CodePostal, CT_Ville, "
                        "CT_Pays) VALUES (:code, :name, 0, 0, '75011', 'Paris', 'France')"
                    ),
                    {"code": code, "name": f"Maison Parisienne {n}"},
                )
    finally:
        engine.dispose()
    return codes


@dataclass
class World:
    stack: DossiersStack
    truth: Truth
    lyon_before: list[dict[str, Any]]
    paris_before: list[dict[str, Any]]
    shared: list[str]
    runs: dict[str, subprocess.CompletedProcess[str]] = field(default_factory=dict)
    run_seconds: float = 0.0
    stats: dict[str, Any] = field(default_factory=dict)
    after_run: list[dict[str, Any]] = field(default_factory=list)
    lyon_after: list[dict[str, Any]] = field(default_factory=list)
    paris_after: list[dict[str, Any]] = field(default_factory=list)
    proposals: list[dict[str, str]] = field(default_factory=list)
    match_cli: subprocess.CompletedProcess[str] | None = None
    after_match: list[dict[str, Any]] = field(default_factory=list)
    doctor: subprocess.CompletedProcess[str] | None = None
    #: The plugin's pages as each user got them: ``(user, path) -> (status, text)``.
    pages: dict[tuple[str, str], tuple[int, str]] = field(default_factory=dict)

    def report(self, dossier: str) -> dict[str, Any]:
        path = self.stack.home_of(dossier) / "reports" / "latest.json"
        return dict(json.loads(path.read_text(encoding="utf-8")))


def _create_dossiers(stack: DossiersStack) -> list[Command]:
    """Start creating both stand-in dossiers (lyon: 300 accounts in SQLite; paris: 40 in PostgreSQL WIN1252)."""
    create = ("standin", "create", "--force", "--engine")
    return [
        stack.cli_start(*create, "sqlite", "--path", str(stack.dossier), "--scale", "300", "--seed", "3",
                        env=dict(os.environ)),
        stack.cli_start(*create, "postgres", "--url", stack.paris["url"], "--media", str(stack.root / "paris_media"),
                        "--scale", "40", "--seed", "9", env=dict(os.environ)),
    ]  # fmt: skip


def _paris_dossier(server: PostgresServer) -> dict[str, Any]:
    url = server.create_database("dossier_paris")
    return {
        "host": server.host,
        "port": server.port,
        "user": server.user,
        "database": "dossier_paris",
        "url": url,
    }


def _write_dossiers(stack: DossiersStack) -> None:
    stack.dossiers_file = stack.root / "dossiers.yaml"
    stack.dossiers_file.write_text(
        yaml.safe_dump(
            {
                "default_dossier": "lyon",
                "defaults": {"match_auto_confidence": 0.95},
                "dossiers": {
                    "lyon": {"connection": "sage50_lyon", "prefix": "LY-", "branches": [LYON_BRANCH]},
                    "paris": {
                        "connection": "sage50_paris",
                        "prefix": "PA-",
                        "branches": [PARIS_BRANCH],
                        "media_folder": str(stack.root / "paris_media"),
                    },
                    # Points at a connection nobody defined: its own DAG fails at preflight, the others sync.
                    "ghost": {"connection": "sage50_ghost", "prefix": "GH-"},
                },
            }
        ),
        encoding="utf-8",
    )


def _doctor(stack: DossiersStack) -> Command:
    """Seed one misconfiguration per dossier entry, plus an undeclared Z_ field in the tenant; run the doctor."""
    broken = stack.root / "broken.sqlite"
    shutil.copyfile(stack.dossier, broken)
    with sqlite3.connect(broken) as db:
        db.execute("ALTER TABLE F_COMPTET DROP COLUMN CT_Siret")
        db.execute("DROP TABLE F_CONTACTT")
        db.execute("ALTER TABLE F_ARTICLE RENAME COLUMN AR_Design TO AR_Design_old")
        db.execute(
            "ALTER TABLE F_ARTICLE ADD COLUMN AR_Design BLOB"
        )  # a designation Sage cannot read as text
    stack.admin_call("custom_fields", {"undeclare": {"accounts": ["Z_Siret"]}})
    lyon = {"conn_type": "odbc", "schema": str(stack.dossier), "extra": {"driver": "SQLite3"}}
    env = stack.env()
    env.update(
        {
            "AIRFLOW_CONN_SAGE50_BROKEN": json.dumps({**lyon, "schema": str(broken)}),
            "AIRFLOW_CONN_SAGE50_NOMEDIA": json.dumps(lyon),
            "AIRFLOW_CONN_SAGE50_BADDRIVER": json.dumps({**lyon, "extra": {"driver": "SQLite 3 (typo)"}}),
        }
    )
    bad = stack.root / "doctor-dossiers.yaml"
    bad.write_text(
        yaml.safe_dump(
            {
                "dossiers": {
                    "broken": {"connection": "sage50_broken", "prefix": "BR-", "branches": [1]},
                    "nomedia": {
                        "connection": "sage50_nomedia",
                        "prefix": "NM-",
                        "media_folder": "/nonexistent/media",
                    },
                    "baddriver": {"connection": "sage50_baddriver", "prefix": "BD-"},
                    "ghost": {"connection": "sage50_ghost", "prefix": "GH-"},
                    "twin_a": {"connection": "sage50_lyon", "prefix": "TW-"},
                    "twin_b": {"connection": "sage50_paris", "prefix": "TW-"},
                }
            }
        ),
        encoding="utf-8",
    )
    return stack.cli_start("doctor", "--dossiers", str(bad), env=env)


@pytest.fixture(scope="module")
def world(postgres_server: PostgresServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:  # noqa: F811
    started = time.monotonic()
    stack = DossiersStack(tmp_path_factory.mktemp("dossiers"), rate_limit=TENANT_RATE)
    try:
        stack.clean()
        stack.paris = _paris_dossier(postgres_server)
        _write_dossiers(stack)
        stack.start_simulator()
        creating = _create_dossiers(stack)  # while Airflow prepares its metadata database
        stack.prepare_airflow()
        for command in creating:
            done = command.wait_done()
            assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        lyon_before = _rows(stack.sage(), ACCOUNTS_SQL)
        truth = _prefill(stack, lyon_before)
        untouched = sorted(
            {r["CT_Num"] for r in lyon_before} - set(truth.pairs.values()) - set(truth.ambiguous)
        )
        shared = _homonyms(stack, untouched[-3:])
        paris_before = _rows(sa.create_engine(stack.paris["url"]), ACCOUNTS_SQL.replace("CT_", "ct_"))
        world = World(stack, truth, lyon_before, paris_before, shared)
        stack.reset_stats()
        begin = time.monotonic()
        world.runs = stack.run_together(["sage50_ssm_sync__lyon", "sage50_ssm_sync__paris"])
        world.run_seconds = time.monotonic() - begin
        world.stats = stack.stats()
        admin = stack.integration_client()
        world.after_run = admin.list("accounts")
        world.lyon_after = _rows(stack.sage(), ACCOUNTS_SQL)
        world.paris_after = _rows(sa.create_engine(stack.paris["url"]), ACCOUNTS_SQL.replace("CT_", "ct_"))
        # A person confirms what the run left waiting: the true pairs bound, the others rejected.
        matching = stack.home_of("lyon") / "matching"
        with (matching / "proposals.csv").open(encoding="utf-8") as fh:
            world.proposals = list(csv.DictReader(fh))
        with (matching / "decisions.csv").open("w", encoding="utf-8", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=["entity", "sage_key", "ssm_id", "decision"])
            writer.writeheader()
            for row in world.proposals:
                if row["status"] == "open":
                    right = truth.pairs.get(int(row["ssm_id"])) == row["sage_key"]
                    writer.writerow({**{k: row[k] for k in ("entity", "sage_key", "ssm_id")},
                                     "decision": "bind" if right else "reject"})  # fmt: skip
        # The person's decisions applied, and the doctor on a misconfigured deployment, side by side.
        match = stack.cli_start("match", "--dossier", "lyon")
        doctor = _doctor(stack)
        world.pages = _plugin_pages(stack)
        world.match_cli = match.wait_done()
        world.doctor = doctor.wait_done()
        world.after_match = admin.list("accounts")
        admin.close()
        print(f"\ntest_dossiers: stack and runs took {time.monotonic() - started:.0f} s")
        yield world
    finally:
        stack.stop()


#: The plugin's users: lea reads only lyon's DAG (an auth manager granting DAG by DAG), vic reads every DAG.
PAGE_USERS = {"lea": "viewer", "vic": "viewer"}
PAGE_PATHS = (
    "/sage-sync/sync",
    "/sage-sync/dags/sage50_ssm_sync__lyon/sync",
    "/sage-sync/dags/sage50_ssm_sync__paris/sync",
    "/sage-sync/dags/sage50_ssm_sync__paris/reports",
    "/sage-sync/dags/sage50_ssm_sync/sync",
    "/sage-sync/reports",
)


def _plugin_pages(stack: DossiersStack) -> dict[tuple[str, str], tuple[int, str]]:
    """The plugin's pages from a real API server, as each user (and an anonymous caller) gets them."""
    server = ApiServer(
        stack,
        PAGE_USERS,
        extra_env={
            "AIRFLOW__CORE__AUTH_MANAGER": "tests.support.per_dag_auth.PerDagAuthManager",
            ACCESS_ENV: json.dumps({"lea": ["sage50_ssm_sync__lyon"]}),
            "PYTHONPATH": os.pathsep.join(
                [str(Path(__file__).resolve().parents[3]), os.environ.get("PYTHONPATH", "")]
            ),
        },
    )
    pages = {}
    with server:
        for user in (None, *PAGE_USERS):
            for path in PAGE_PATHS:
                reply = server.get(path, user=user)
                pages[(user or "anonymous", path)] = (reply.status_code, reply.text)
    return pages


def _live(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in records if not r.get("deleted")]


def test_m1_m2_two_dossiers_sync_to_one_tenant_without_cross_talk_under_its_rate_limit(world: World) -> None:
    """M1: each dossier its own DAG, state and report; M2: one account code, two companies; one rate limit."""
    for dag_id, done in world.runs.items():
        assert done.returncode == 0, f"{dag_id}\n{done.stdout[-4000:]}"
    lyon, paris = world.report("lyon"), world.report("paris")
    assert lyon["run_id"] != paris["run_id"]
    assert lyon["settings"]["dossier"] == "lyon" and paris["settings"]["dossier"] == "paris"
    assert world.stack.home_of("lyon").joinpath("state.db").exists()
    assert world.stack.home_of("paris").joinpath("state.db").exists()
    live = _live(world.after_run)
    ext = [str(r["extId"]) for r in live if r.get("extId")]
    assert len(ext) == len(set(ext))  # no extId twice
    assert all(e.startswith(("LY-", "PA-")) for e in ext)  # nothing written without its dossier's prefix
    # The overlapping account codes: one SSM company per dossier, each with its own dossier's name.
    lyon_names = {r["CT_Num"]: r["CT_Intitule"] for r in world.lyon_before}
    paris_names = {r["ct_num"]: r["ct_intitule"] for r in world.paris_before}
    assert set(world.shared) <= set(lyon_names) & set(paris_names)
    by_ext = {str(r["extId"]): r for r in live if r.get("extId")}
    for code in world.shared:
        lyon_rec, paris_rec = by_ext[f"LY-{code}"], by_ext[f"PA-{code}"]
        assert lyon_rec["id"] != paris_rec["id"]
        assert (lyon_rec["name"], paris_rec["name"]) == (lyon_names[code], paris_names[code])
        assert (lyon_rec["branchId"]["id"], paris_rec["branchId"]["id"]) == (LYON_BRANCH, PARIS_BRANCH)
    assert paris["entities"]["accounts"]["counts"]["created"] == len(world.paris_before)
    # Nothing of lyon's tenant companies reached the paris dossier, and the reverse.
    assert len(world.paris_after) == len(world.paris_before)
    assert {r["CT_Num"] for r in world.lyon_before} <= {r["CT_Num"] for r in world.lyon_after}
    # The tenant's rate limit held for both dossiers together: no request was refused with 429.
    calls = int(world.stats["total"])
    print(f"\nM1: {calls} API calls in {world.run_seconds:.0f} s for two dossiers run together "
          f"(limit {TENANT_RATE:g}/s), 429 served: {world.stats['served_429']}")  # fmt: skip
    assert world.stats["served_429"] == 0 and calls > 50


def test_o1_prefilled_tenant_is_matched_with_the_expected_bindings_and_no_duplicate(world: World) -> None:
    """O1: SIRET and VAT pairs bound, name pairs proposed then confirmed, ambiguous ones held, none duplicated."""
    truth = world.truth
    by_id = {int(r["id"]): r for r in world.after_run}
    prospect = {r["CT_Num"]: int(r["CT_Prospect"]) == 1 for r in world.lyon_before}
    # After the first run: the sure pairs carry the Sage key, their SSM-only fields as the sales team left them.
    for ssm_id, code in truth.pairs.items():
        rec = by_id[ssm_id]
        if truth.tier[ssm_id] in ("SIRET", "VAT"):
            assert rec["extId"] == f"LY-{code}", (truth.tier[ssm_id], code, rec["name"])
            assert rec["phone2"]  # the SSM-only field as the sales team left it
            assert rec["readOnly"] is not prospect[code]  # a customer's company becomes read-only (C2)
        else:
            assert not rec.get("extId"), rec  # waits for a person, held out of the run
    for code, ids in truth.ambiguous.items():
        assert all(not by_id[i].get("extId") for i in ids), code
        assert all(not r.get("deleted") for r in (by_id[i] for i in ids))
    # Zero duplicates: each Sage account at most once in SSM, and no tenant company created again in Sage.
    lyon_ext = Counter(
        str(r["extId"]) for r in _live(world.after_run) if str(r.get("extId") or "").startswith("LY-")
    )
    assert max(lyon_ext.values()) == 1
    held = set(truth.ambiguous) | {c for i, c in truth.pairs.items() if truth.tier[i] == "name"}
    for code in held:
        assert f"LY-{code}" not in lyon_ext, code  # not created while a person has not decided
    new_in_sage = len(world.lyon_after) - len(world.lyon_before)
    assert new_in_sage == len(truth.strangers)  # only the companies Sage did not know (P1)
    # The report's matching table and the proposals file name every pair with its evidence.
    matching = world.report("lyon")["matching"]
    assert matching["rows_total"] == len(world.proposals) and matching["waiting"] > 0
    statuses = Counter(r["status"] for r in world.proposals)
    assert statuses["ambiguous"] == 2 * len(truth.ambiguous)
    assert all(r["evidence"] and r["confidence"] for r in world.proposals)
    # After the person's decisions, `sage-sync match` binds the confirmed pairs.
    cli = world.match_cli
    assert cli is not None
    assert cli.returncode == 0, cli.stdout[-2000:] + cli.stderr[-2000:]
    after = {int(r["id"]): r for r in world.after_match}
    candidates = set(truth.pairs) | {i for ids in truth.ambiguous.values() for i in ids}
    bound = {i: str(after[i]["extId"])[3:] for i in candidates if after[i].get("extId")}
    correct = sum(1 for i, code in bound.items() if truth.pairs.get(i) == code)
    precision = correct / len(bound)
    recall = correct / len(truth.pairs)
    proposed = [r for r in world.proposals if r["status"] in ("open", "bound")]
    p_correct = sum(1 for r in proposed if truth.pairs.get(int(r["ssm_id"])) == r["sage_key"])
    print(f"\nO1 on 300 tenant companies: bindings precision {precision:.3f}, recall {recall:.3f} "
          f"({correct} correct of {len(bound)} bound, {len(truth.pairs)} true pairs); proposals precision "
          f"{p_correct / len(proposed):.3f}; {statuses['ambiguous']} ambiguous pairs reported, none bound")  # fmt: skip
    assert precision == 1.0 and recall >= 0.95
    assert all(not after[i].get("extId") for ids in truth.ambiguous.values() for i in ids)
    # The companies Sage did not know were created in Sage with new codes (P1), never bound to an existing one.
    known = {r["CT_Num"] for r in world.lyon_before}
    assert all(str(after[i].get("extId") or "")[3:] not in known for i in truth.strangers)
    live_ext = Counter(str(r["extId"]) for r in _live(world.after_match) if r.get("extId"))
    assert max(live_ext.values()) == 1


def test_o2_doctor_reports_each_seeded_misconfiguration(world: World) -> None:
    """O2: a table, one line per problem naming the entry, exit 1."""
    done = world.doctor
    assert done is not None
    out = done.stdout
    print("\n" + out[-6000:])
    assert done.returncode == 1
    expected = {
        "broken": ["missing: CT_Siret", "F_CONTACTT", "table missing", "AR_Design is BLOB, expected string"],
        "nomedia": ["/nonexistent/media", "not a readable folder"],
        "baddriver": ["'SQLite 3 (typo)' is not installed"],
        "ghost": ["'sage50_ghost' is not defined"],
        "twin_a": ["prefix 'TW-' is also used by dossier 'twin_b'"],
        "twin_b": ["prefix 'TW-' is also used by dossier 'twin_a'"],
    }
    for entry, needles in expected.items():
        for needle in needles:
            assert needle in out, (entry, needle)
    assert "not declared: Z_Siret" in out  # the tenant lost a Z_ field the mappings write
    assert "BLOCKING" in out and "blocking problem(s)" in out


def test_m1_each_dossiers_pages_are_served_to_the_users_the_auth_manager_allows_on_its_dag(
    world: World,
) -> None:
    """M1 in the UI: each dossier's DAG has its own sync page and reports, checked DAG by DAG by the auth manager."""
    pages = world.pages
    lyon_run, paris_run = world.report("lyon")["run_id"], world.report("paris")["run_id"]
    for path in PAGE_PATHS:
        assert pages[("anonymous", path)][0] == 401, path
    # vic reads both DAGs: the navigation page lists both dossiers; each page shows its own dossier's run only.
    status, index = pages[("vic", "/sage-sync/sync")]
    assert status == 200 and "Dossiers you may read: 3 of 3" in index  # lyon, paris and ghost
    assert "dags/sage50_ssm_sync__lyon/sync" in index and "dags/sage50_ssm_sync__paris/sync" in index
    assert "no run yet" in index  # ghost: its connection does not exist, it never got past preflight
    status, lyon = pages[("vic", "/sage-sync/dags/sage50_ssm_sync__lyon/sync")]
    assert status == 200 and str(lyon_run) in lyon and str(paris_run) not in lyon
    assert "DAG <code>sage50_ssm_sync__lyon</code>" in lyon
    assert "../../../dags/sage50_ssm_sync__lyon/runs/" in lyon  # Airflow's run page, up from the DAG's page
    status, paris = pages[("vic", "/sage-sync/dags/sage50_ssm_sync__paris/sync")]
    assert status == 200 and str(paris_run) in paris and str(lyon_run) not in paris
    status, listing = pages[("vic", "/sage-sync/dags/sage50_ssm_sync__paris/reports")]
    assert status == 200 and "reports/" in listing
    # lea may read lyon's DAG only: paris is refused, and the navigation page lists lyon alone.
    status, index = pages[("lea", "/sage-sync/sync")]
    assert (
        status == 200 and "Dossiers you may read: 1 of 3" in index and "sage50_ssm_sync__paris" not in index
    )
    assert pages[("lea", "/sage-sync/dags/sage50_ssm_sync__lyon/sync")][0] == 200
    assert pages[("lea", "/sage-sync/dags/sage50_ssm_sync__paris/sync")][0] == 403
    assert pages[("lea", "/sage-sync/dags/sage50_ssm_sync__paris/reports")][0] == 403
    # The single-DAG routes do not exist in a deployment of several dossiers.
    assert pages[("vic", "/sage-sync/dags/sage50_ssm_sync/sync")][0] == 404
    assert pages[("vic", "/sage-sync/reports")][0] == 404
