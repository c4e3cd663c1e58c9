"""One scenario per SPEC rule through the real DAG (``airflow dags test``), asserting both systems' final state.

One stack for the module (a SQLite stand-in dossier through the SQLite3 ODBC driver, the SSM simulator over HTTP,
an Airflow home) and five DAG runs:

1. ``initial``: the first load (D1, D2, D3, D6, I3, I4, I5, K4 on the generated data);
2. ``day``: a day of changes on both sides, made by this module through the dossier's SQL and the public API
   (C2, C3, C7, P3, P5, K2, K3, K4, D2, D3, D4, I2, G3 with a blocking bad row, I6 with an invoice of that row);
3. ``faults``: the bad row fixed, a prospect converted, a company created in SSM, articles changed, then the
   simulator fails part-way through the loads (G5);
4. ``healed``: a normal run on a healthy API, after drift was made in SSM on read-only records (G3, I6, P5
   released, G5 converged, drift not seen);
5. ``reconcile``: ``full_reconcile=True`` repairs the drift and writes nothing else.

After each run the module keeps what both systems hold (:class:`Observed`): SSM through its API with the
integration key, Sage through SQL on the dossier. Each test names its rule and asserts on those observations.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy as sa

from sage_sync_tools.stack import DagRunOutcome, SyncStack

#: The dossier: big enough for every kind of row (4 prospects, 3 of them with contacts), small enough to be quick.
SCALE = "80"
SEED = 11

#: Hook settings of the fault run: one retry, so injected faults do reach the load instead of being absorbed.
FRAGILE = {"max_retries": 1}
#: The faults of the fault run, armed when the loads start: three calls go through, every later call is refused
#: with 503 until the loads are over. With this seed the second call (the first after the load's login) is
#: applied and its response lost (answered 500), so the run also meets a write whose outcome it cannot know.
FAULTS = {"fail_after": 3, "pdrop_after": 0.4, "p500_after": 0.3, "seed": 6}

#: SSM endpoints dumped after every run, and the Sage tables.
ENDPOINTS = ("accounts", "contacts", "products", "salesorders", "salesordersLines")
TABLES = (
    "F_COMPTET",
    "F_CONTACTT",
    "F_LIVRAISON",
    "F_ARTICLE",
    "F_ARTSTOCK",
    "F_ARTCOMPTA",
    "F_TAXE",
    "F_DOCENTETE",
    "F_DOCLIGNE",
)


@dataclass
class RulesStack(SyncStack):
    """The demo stack, with extra settings merged into the SSM connection's extra for chosen runs."""

    ssm_extra: dict[str, Any] = field(default_factory=dict)

    def env(self) -> dict[str, str]:
        """The parent's environment; ``ssm_extra`` (e.g. fewer retries) goes into ``ssm_default``'s extra."""
        env = super().env()
        if self.ssm_extra:
            conn = json.loads(env["AIRFLOW_CONN_SSM_DEFAULT"])
            conn["extra"] = {**conn.get("extra", {}), **self.ssm_extra}
            env["AIRFLOW_CONN_SSM_DEFAULT"] = json.dumps(conn)
        return env


# --- reading both systems ------------------------------------------------------------------------------------------


def sql(engine: sa.Engine, statement: str, **params: Any) -> list[dict[str, Any]]:
    """Rows of a query on the dossier, as dicts keyed by the Sage column names."""
    with engine.connect() as db:
        return [dict(r._mapping) for r in db.execute(sa.text(statement), params)]


def execute(engine: sa.Engine, statement: str, **params: Any) -> None:
    """A user's edit in Sage: one committed statement."""
    with engine.begin() as db:
        db.execute(sa.text(statement), params)


def copy_row(engine: sa.Engine, table: str, where: str, changes: dict[str, Any], **params: Any) -> None:
    """Insert a copy of the one row of ``table`` matching ``where``, with ``changes`` applied."""
    row = sql(engine, f"SELECT * FROM {table} WHERE {where}", **params)
    assert len(row) == 1, f"{table} has {len(row)} rows where {where} {params}"
    values = {**row[0], **changes}
    columns = ", ".join(values)
    names = ", ".join(f":{c}" for c in values)
    execute(engine, f"INSERT INTO {table} ({columns}) VALUES ({names})", **values)


def ref_id(value: Any) -> int | None:
    """The id of a lookup as the API returns it (``{"id", "value"}``) or a bare id."""
    if isinstance(value, dict):
        return int(value["id"]) if value.get("id") is not None else None
    return None if value is None else int(value)


def label(value: Any) -> str | None:
    """The label of a lookup as the API returns it (``{"id", "value"}``)."""
    return str(value["value"]) if isinstance(value, dict) else None


def sha256_of(path: Path) -> str:
    """The sha256 of a file."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass
class Observed:
    """One DAG run and what both systems held right after it."""

    name: str
    returncode: int
    seconds: float
    log: Path
    report: dict[str, Any]
    stats: dict[str, Any]
    ssm: dict[str, dict[int, dict[str, Any]]]
    sage: dict[str, list[dict[str, Any]]]
    documents: dict[int, list[dict[str, Any]]]

    def live(self, endpoint: str) -> dict[str, dict[str, Any]]:
        """The live SSM records of an endpoint by extId (unbound ones left out)."""
        return {
            str(r["extId"]): r for r in self.ssm[endpoint].values() if r.get("extId") and not r.get("deleted")
        }

    def record(self, endpoint: str, ident: int) -> dict[str, Any]:
        """One SSM record by id (deleted ones included)."""
        return self.ssm[endpoint][int(ident)]

    def rows(self, table: str, **match: Any) -> list[dict[str, Any]]:
        """The Sage rows of ``table`` whose columns equal ``match``."""
        return [r for r in self.sage[table] if all(r[k] == v for k, v in match.items())]

    def section(self, entity: str) -> dict[str, Any]:
        """The report's section of an entity."""
        return dict(self.report["entities"][entity])

    def notes(self, entity: str, kind: str) -> dict[str, str]:
        """Key -> reason of the report's ``quarantined`` or ``deferred`` notes of an entity."""
        return {str(n["key"]): str(n["reason"]) for n in self.section(entity)[kind]}

    def ssm_writes(self) -> dict[str, int]:
        """The simulator's write calls of the run, by route (logins left out)."""
        return {
            route: n
            for route, n in self.stats["by_route"].items()
            if not route.startswith("GET") and "login" not in route and "zapier_schema" not in route
        }


def observe(
    stack: SyncStack, engine: sa.Engine, name: str, outcome: DagRunOutcome, stats: dict[str, Any]
) -> Observed:
    """Read both systems after a run: every SSM record and product document, every synced Sage table."""
    client = stack.integration_client()
    try:
        ssm = {e: {int(r["id"]): r for r in client.list(e)} for e in ENDPOINTS}
        documents = {
            pid: list(client.call("GET", f"products/{pid}/documents"))
            for pid, p in ssm["products"].items()
            if not p.get("deleted")
        }
    finally:
        client.close()
    sage = {t: sql(engine, f"SELECT * FROM {t}") for t in TABLES}
    assert outcome.report is not None, f"run {name} left no report:\n{outcome.log_tail()}"
    return Observed(
        name,
        outcome.returncode,
        outcome.seconds,
        outcome.log_path,
        outcome.report,
        stats,
        ssm,
        sage,
        documents,
    )


# --- the fault injector (G5) ---------------------------------------------------------------------------------------


class FaultsDuringLoads:
    """Arm the simulator's faults once the accounts and products plans are staged, heal once both loads are done.

    In ``airflow dags test`` both task groups advance in step (extract, validate, plan, load, commit), so once
    both ``plan.jsonl`` files exist the next API calls are the loads' writes; the extracts of contacts and invoices
    come after the commits and find the API healed, so the run fails part-way in its loads, not in a read (a
    failed read would only be retried by Airflow 30 s later).
    """

    def __init__(self, stack: SyncStack, faults: dict[str, Any], timeout: float = 300.0) -> None:
        self.stack = stack
        self.faults = faults
        self.timeout = timeout
        self.staging = stack.sage_sync_home / "staging"
        self.before: set[str] = set()
        self.armed = False
        self.healed = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="faults-during-loads", daemon=True)

    def __enter__(self) -> FaultsDuringLoads:
        self.before = {p.name for p in self.staging.iterdir()} if self.staging.exists() else set()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        self._heal()

    def _heal(self) -> None:
        requests.post(f"{self.stack.admin_url}/heal", timeout=10).raise_for_status()

    def _staged(self, name: str) -> bool:
        runs = (
            [p for p in self.staging.glob("*") if p.name not in self.before] if self.staging.exists() else []
        )
        return any(all((run / e / name).exists() for e in ("accounts", "products")) for run in runs)

    def _watch(self) -> None:
        deadline = time.monotonic() + self.timeout
        while not self._stop.is_set() and time.monotonic() < deadline:
            if not self.armed and self._staged("plan.jsonl"):
                requests.post(
                    f"{self.stack.admin_url}/faults", json=self.faults, timeout=10
                ).raise_for_status()
                self.armed = True
            if self.armed and self._staged("apply.json"):
                self._heal()
                self.healed = True
                return
            time.sleep(0.02)


# --- the scenario --------------------------------------------------------------------------------------------------


@dataclass
class Cast:
    """The records each rule's scenario works on, chosen from the generated dossier after the first run."""

    # accounts
    c2_code: str = ""  # a customer renamed in SSM (integration key), later renamed in Sage
    c2_name: str = ""
    c2_ssm_name: str = "Renommé dans SSM"
    c2_sage_name: str = ""
    c7_code: str = ""  # a customer edited on both sides on different fields
    c7_email: str = ""
    c7_ssm_email: str = "achats@modifie-dans-ssm.fr"
    c7_sage_phone: str = "01 45 67 89 10"
    c7_new_code: str = "NOUVEAU000901"  # a customer created in Sage
    c3_code: str = ""  # a customer deleted in SSM (integration key)
    c3_id: int = 0
    p3_sage_code: str = ""  # a prospect deleted in Sage
    p3_sage_id: int = 0
    p3_ssm_code: str = ""  # a prospect deleted in SSM
    p3_ssm_id: int = 0
    p5_code: str = ""  # a prospect with contacts, converted in Sage before the fault run
    p5_contacts: list[str] = field(default_factory=list)
    p5_ssm_contact_id: int = 0  # a contact added to it in SSM
    g3_code: str = (
        "EPICERIE000902"  # a new customer whose name is blank (blocking), fixed before the fault run
    )
    g3_fixed_name: str = "Épicerie Réparée"
    i6_piece: str = "FA00009001"  # an invoice of that customer
    i6_lines: list[int] = field(default_factory=list)
    partner_id: int = 0  # a company created in SSM as "Partenaire" (stays in SSM, K4)
    k4_contact_id: int = 0  # a contact created in SSM on it
    c4_id: int = 0  # a company created in SSM as "Client" during the fault run's window (G5)
    c4_name: str = "Brasserie Créée Avant la Panne"
    # contacts
    k2_key: str = ""  # edited on both sides, different fields
    k2_id: int = 0
    k2_ssm_email: str = "nouvel.email@exemple.fr"
    k2_sage_mobile: str = "06 98 76 54 32"
    k3_sage_key: str = ""  # deleted in Sage
    k3_sage_id: int = 0
    k3_ssm_key: str = ""  # deleted in SSM
    k3_ssm_id: int = 0
    k4_delivery_name: str = "Quai de livraison nord"
    # products
    d2_ref: str = ""  # stock-managed: a depot's quantity changed
    d3_ref: str = ""  # its picture file changed
    d3_same_ref: str = ""  # pictured, its price changed but not its picture
    d4_ref: str = ""  # deleted in Sage
    d4_id: int = 0
    g5_refs: list[str] = field(default_factory=list)  # prices changed before the fault run
    g5_new_ref: str = "NOUV00901"  # an article created before the fault run
    # invoices
    i2_piece: str = ""  # deleted in Sage
    i2_id: int = 0
    # drift made in SSM before the healed run, repaired by the reconcile run
    drift_ref: str = ""
    drift_price: float = 0.0
    drift_piece: str = ""
    drift_total_ht: float = 0.0
    drift_line: str = ""
    drift_quantity: int = 0


def first(engine: sa.Engine, statement: str, **params: Any) -> dict[str, Any]:
    """The first row of a query; fails naming the query when the dossier has none."""
    rows = sql(engine, statement, **params)
    assert rows, f"the generated dossier has no row for: {statement} {params}"
    return rows[0]


def choose_cast(engine: sa.Engine, initial: Observed) -> Cast:
    """Pick distinct records of the generated dossier for each scenario."""
    cast = Cast()
    accounts, contacts = initial.live("accounts"), initial.live("contacts")
    prospects = sql(
        engine,
        "SELECT t.CT_Num AS code, (SELECT COUNT(*) FROM F_CONTACTT c WHERE c.CT_Num = t.CT_Num) AS people "
        "FROM F_COMPTET t WHERE t.CT_Type = 0 AND t.CT_Prospect = 1 ORDER BY t.CT_Num",
    )
    with_people = [p["code"] for p in prospects if p["people"] > 0]
    assert len(prospects) >= 3 and with_people, (
        f"the dossier needs 3 prospects, one with contacts: {prospects}"
    )
    cast.p5_code = with_people[0]
    others = [p["code"] for p in prospects if p["code"] != cast.p5_code]
    cast.p3_sage_code, cast.p3_ssm_code = others[0], others[1]
    cast.p3_sage_id = int(accounts[cast.p3_sage_code]["id"])
    cast.p3_ssm_id = int(accounts[cast.p3_ssm_code]["id"])
    cast.p5_contacts = [
        f"{cast.p5_code}/{r['CT_No']}"
        for r in sql(engine, "SELECT CT_No FROM F_CONTACTT WHERE CT_Num = :c ORDER BY CT_No", c=cast.p5_code)
    ]
    # Customers with at least three contacts: one contact edited (K2), one deleted in Sage, one deleted in SSM (K3).
    busy = first(
        engine,
        "SELECT t.CT_Num AS code FROM F_COMPTET t WHERE t.CT_Type = 0 AND t.CT_Prospect = 0 "
        "AND (SELECT COUNT(*) FROM F_CONTACTT c WHERE c.CT_Num = t.CT_Num) >= 3 ORDER BY t.CT_Num",
    )["code"]
    numbers = [
        r["CT_No"]
        for r in sql(engine, "SELECT CT_No FROM F_CONTACTT WHERE CT_Num = :c ORDER BY CT_No", c=busy)
    ]
    cast.k2_key, cast.k3_sage_key, cast.k3_ssm_key = (f"{busy}/{n}" for n in numbers[:3])
    cast.k2_id = int(contacts[cast.k2_key]["id"])
    cast.k3_sage_id = int(contacts[cast.k3_sage_key]["id"])
    cast.k3_ssm_id = int(contacts[cast.k3_ssm_key]["id"])
    plain = sql(
        engine,
        "SELECT CT_Num AS code, CT_Intitule AS name, CT_EMail AS email FROM F_COMPTET "
        "WHERE CT_Type = 0 AND CT_Prospect = 0 AND CT_Num <> :b ORDER BY CT_Num",
        b=busy,
    )
    cast.c2_code, cast.c2_name = plain[0]["code"], plain[0]["name"]
    cast.c2_sage_name = f"{cast.c2_name[:50]} (renommé)"
    cast.c7_code, cast.c7_email = plain[1]["code"], plain[1]["email"]
    cast.c3_code = first(
        engine,
        "SELECT t.CT_Num AS code FROM F_COMPTET t WHERE t.CT_Type = 0 AND t.CT_Prospect = 0 "
        "AND t.CT_Num NOT IN (:a, :b, :c) AND NOT EXISTS (SELECT 1 FROM F_CONTACTT k WHERE k.CT_Num = t.CT_Num) "
        "AND NOT EXISTS (SELECT 1 FROM F_DOCENTETE d WHERE d.DO_Tiers = t.CT_Num) ORDER BY t.CT_Num",
        a=cast.c2_code,
        b=cast.c7_code,
        c=busy,
    )["code"]
    cast.c3_id = int(accounts[cast.c3_code]["id"])
    # Articles: stock-managed without picture (D2), two pictured ones (D3), one never invoiced (D4), three
    # others for the fault run (G5) and one more for the drift (full reconcile).
    cast.d2_ref = first(
        engine,
        "SELECT a.AR_Ref AS ref FROM F_ARTICLE a WHERE a.AR_SuiviStock > 0 AND a.AR_Photo IS NULL "
        "AND EXISTS (SELECT 1 FROM F_ARTSTOCK s WHERE s.AR_Ref = a.AR_Ref) ORDER BY a.AR_Ref",
    )["ref"]
    pictured = [
        r["ref"]
        for r in sql(engine, "SELECT AR_Ref AS ref FROM F_ARTICLE WHERE AR_Photo IS NOT NULL ORDER BY AR_Ref")
    ]
    cast.d3_ref, cast.d3_same_ref = pictured[0], pictured[1]
    taken = {cast.d2_ref, cast.d3_ref, cast.d3_same_ref}
    unused = [
        r["ref"]
        for r in sql(
            engine,
            "SELECT a.AR_Ref AS ref FROM F_ARTICLE a WHERE a.AR_Photo IS NULL AND NOT EXISTS "
            "(SELECT 1 FROM F_DOCLIGNE l WHERE l.AR_Ref = a.AR_Ref) ORDER BY a.AR_Ref",
        )
        if r["ref"] not in taken
    ]
    assert len(unused) >= 5, f"the dossier needs 5 articles without picture nor invoice line: {unused}"
    cast.d4_ref, cast.g5_refs, cast.drift_ref = unused[0], unused[1:4], unused[4]
    cast.d4_id = int(initial.live("products")[cast.d4_ref]["id"])
    # Invoices: one deleted (I2), another one drifted in SSM (full reconcile).
    pieces = [
        r["piece"]
        for r in sql(
            engine,
            "SELECT DO_Piece AS piece FROM F_DOCENTETE WHERE DO_Domaine = 0 AND DO_Type IN (6, 7) "
            "AND DO_Provenance = 0 AND DO_Tiers NOT IN (:a, :b, :c) ORDER BY DO_Piece",
            a=cast.c2_code,
            b=cast.c7_code,
            c=busy,
        )
    ]
    cast.i2_piece, cast.drift_piece = pieces[0], pieces[1]
    cast.i2_id = int(initial.live("salesorders")[cast.i2_piece]["id"])
    return cast


def make_day_of_changes(stack: SyncStack, engine: sa.Engine, cast: Cast, initial: Observed) -> None:
    """The second day: changes on both sides for C2, C3, C7, P3, P5, K2, K3, K4, D2, D3, D4, I2, G3 and I6."""
    accounts = initial.live("accounts")
    admin, user = stack.integration_client(), stack.user_client()
    partner_status = user.value_id("accountStatuses", "Partenaire")
    rep_id = int(stack.keys["user"]["user_id"])
    try:
        # --- SSM: the salesperson's day (user key), the integration key only where a user cannot write ---
        # C2: a read-only customer renamed in SSM (only the integration key may: a user gets 403).
        admin.call("PUT", f"accounts/{accounts[cast.c2_code]['id']}", {"name": cast.c2_ssm_name})
        # C7: a customer's e-mail changed in SSM (integration key again, a user cannot).
        admin.call("PUT", f"accounts/{accounts[cast.c7_code]['id']}", {"email": cast.c7_ssm_email})
        # C3: a customer deleted in SSM (a user may not: read-only; the integration key can).
        admin.call("DELETE", f"accounts/{cast.c3_id}")
        # P3: a prospect deleted in SSM.
        user.call("DELETE", f"accounts/{cast.p3_ssm_id}")
        # P5: a contact added in SSM to a prospect.
        cast.p5_ssm_contact_id = int(
            user.call(
                "POST",
                "contacts",
                {
                    "accountId": int(accounts[cast.p5_code]["id"]),
                    "firstName": "Inès",
                    "lastName": "Attente",
                    "email": "ines.attente@exemple.fr",
                    "salesRepId": rep_id,
                },
            )["id"]
        )
        # K4: a company that stays in SSM ("Partenaire"), and a contact on it.
        cast.partner_id = int(
            user.call(
                "POST",
                "accounts",
                {
                    "name": "Partenaire Logistique",
                    "statusId": partner_status,
                    "branchId": 1,
                    "salesRepId1": rep_id,
                },
            )["id"]
        )
        cast.k4_contact_id = int(
            user.call(
                "POST",
                "contacts",
                {
                    "accountId": cast.partner_id,
                    "firstName": "Hugo",
                    "lastName": "Sans-Compte",
                    "salesRepId": rep_id,
                },
            )["id"]
        )
        # K2: a contact's e-mail edited in SSM (its mobile is edited in Sage below).
        user.call("PUT", f"contacts/{cast.k2_id}", {"email": cast.k2_ssm_email})
        # K3: a contact deleted in SSM.
        user.call("DELETE", f"contacts/{cast.k3_ssm_id}")
    finally:
        admin.close()
        user.close()

    # --- Sage: the accountant's day (SQL on the dossier) ---
    # C7: a customer's phone changed in Sage, and a new customer created in Sage.
    execute(
        engine,
        "UPDATE F_COMPTET SET CT_Telephone = :p WHERE CT_Num = :c",
        p=cast.c7_sage_phone,
        c=cast.c7_code,
    )
    new_customer = {"CT_Num": cast.c7_new_code, "CT_Intitule": "Nouveau Client Sage"}
    copy_row(engine, "F_COMPTET", "CT_Num = :c", new_customer, c=cast.c7_code)
    # P3: a prospect deleted in Sage (with its people).
    for table in ("F_CONTACTT", "F_LIVRAISON", "F_COMPTET"):
        execute(engine, f"DELETE FROM {table} WHERE CT_Num = :c", c=cast.p3_sage_code)
    # K2 and K3 in Sage.
    code, number = cast.k2_key.rsplit("/", 1)
    execute(
        engine,
        "UPDATE F_CONTACTT SET CT_TelPortable = :m WHERE CT_Num = :c AND CT_No = :n",
        m=cast.k2_sage_mobile,
        c=code,
        n=int(number),
    )
    code, number = cast.k3_sage_key.rsplit("/", 1)
    execute(engine, "DELETE FROM F_CONTACTT WHERE CT_Num = :c AND CT_No = :n", c=code, n=int(number))
    # K4: a new delivery address with a contact name, for the same customer (a copy of the first address).
    next_no = int(first(engine, "SELECT MAX(LI_No) AS n FROM F_LIVRAISON")["n"]) + 1
    address = {
        "LI_No": next_no,
        "CT_Num": code,
        "LI_Intitule": cast.k4_delivery_name,
        "LI_Contact": "Marc Quai",
    }
    copy_row(engine, "F_LIVRAISON", "LI_No = (SELECT MIN(LI_No) FROM F_LIVRAISON)", address)
    # D2: a depot's stock of a managed article; D3: a picture file changed, another article's price changed.
    execute(
        engine,
        "UPDATE F_ARTSTOCK SET AS_QteSto = AS_QteSto + 7 WHERE AR_Ref = :r "
        "AND DE_No = (SELECT MIN(DE_No) FROM F_ARTSTOCK WHERE AR_Ref = :r)",
        r=cast.d2_ref,
    )
    photo = first(engine, "SELECT AR_Photo AS p FROM F_ARTICLE WHERE AR_Ref = :r", r=cast.d3_ref)["p"]
    picture = stack.root / "dossier_media" / str(photo)
    picture.write_bytes(picture.read_bytes() + b"retouched")
    execute(engine, "UPDATE F_ARTICLE SET AR_PrixVen = AR_PrixVen + 1 WHERE AR_Ref = :r", r=cast.d3_same_ref)
    # D4: an article deleted; I2: an invoice deleted (lines first).
    for table in ("F_ARTSTOCK", "F_ARTCOMPTA", "F_ARTICLE"):
        execute(engine, f"DELETE FROM {table} WHERE AR_Ref = :r", r=cast.d4_ref)
    for table in ("F_DOCLIGNE", "F_DOCENTETE"):
        execute(engine, f"DELETE FROM {table} WHERE DO_Domaine = 0 AND DO_Piece = :p", p=cast.i2_piece)
    # G3: a new customer whose name is blank (a blocking expectation), and I6: an invoice of it.
    copy_row(
        engine, "F_COMPTET", "CT_Num = :c", {"CT_Num": cast.g3_code, "CT_Intitule": "   "}, c=cast.c7_code
    )
    template = first(
        engine,
        "SELECT DO_Piece AS piece, DO_Type AS kind FROM F_DOCENTETE WHERE DO_Domaine = 0 AND DO_Type = 6 "
        "AND DO_Provenance = 0 AND DO_Piece <> :p ORDER BY DO_Piece",
        p=cast.i2_piece,
    )
    header = {"DO_Piece": cast.i6_piece, "DO_Tiers": cast.g3_code, "DO_Ref": "I6"}
    where = "DO_Domaine = 0 AND DO_Type = :t AND DO_Piece = :p"
    copy_row(engine, "F_DOCENTETE", where, header, t=template["kind"], p=template["piece"])
    next_line = int(first(engine, "SELECT MAX(DL_No) AS n FROM F_DOCLIGNE")["n"])
    template_lines = sql(
        engine,
        "SELECT DL_No FROM F_DOCLIGNE WHERE DO_Domaine = 0 AND DO_Piece = :p ORDER BY DL_No",
        p=template["piece"],
    )
    for line in template_lines:
        next_line += 1
        changes = {"DL_No": next_line, "DO_Piece": cast.i6_piece, "CT_Num": cast.g3_code}
        copy_row(engine, "F_DOCLIGNE", "DL_No = :n", changes, n=line["DL_No"])
        cast.i6_lines.append(next_line)


def make_fault_run_changes(stack: SyncStack, engine: sa.Engine, cast: Cast) -> None:
    """Before the fault run: G3 row fixed, P5 prospect converted, C2 renamed in Sage, C4 company, articles."""
    execute(
        engine,
        "UPDATE F_COMPTET SET CT_Intitule = :n WHERE CT_Num = :c",
        n=cast.g3_fixed_name,
        c=cast.g3_code,
    )
    execute(engine, "UPDATE F_COMPTET SET CT_Prospect = 0 WHERE CT_Num = :c", c=cast.p5_code)
    execute(
        engine, "UPDATE F_COMPTET SET CT_Intitule = :n WHERE CT_Num = :c", n=cast.c2_sage_name, c=cast.c2_code
    )
    for ref in cast.g5_refs:
        execute(engine, "UPDATE F_ARTICLE SET AR_PrixVen = AR_PrixVen + 2.5 WHERE AR_Ref = :r", r=ref)
    template = cast.g5_refs[0]
    new_article = {"AR_Ref": cast.g5_new_ref, "AR_Design": "Article créé avant la panne"}
    copy_row(engine, "F_ARTICLE", "AR_Ref = :r", new_article, r=template)
    for table in ("F_ARTCOMPTA", "F_ARTSTOCK"):
        for row in sql(engine, f"SELECT rowid AS id FROM {table} WHERE AR_Ref = :r", r=template):
            copy_row(engine, table, "rowid = :i", {"AR_Ref": cast.g5_new_ref}, i=row["id"])
    user = stack.user_client()
    try:
        cast.c4_id = int(
            user.call(
                "POST",
                "accounts",
                {
                    "name": cast.c4_name,
                    "statusId": user.value_id("accountStatuses", "Client"),
                    "branchId": 1,
                    "salesRepId1": int(stack.keys["user"]["user_id"]),
                    "city": "Reims",
                },
            )["id"]
        )
    finally:
        user.close()


def make_drift(stack: SyncStack, cast: Cast, observed: Observed) -> None:
    """Drift in SSM on read-only records, with the integration key: a product, a sales order and one of its lines."""
    product = observed.live("products")[cast.drift_ref]
    order = observed.live("salesorders")[cast.drift_piece]
    line = next(
        x for x in observed.live("salesordersLines").values() if ref_id(x["salesOrderId"]) == int(order["id"])
    )
    cast.drift_price = float(product["price"])
    cast.drift_total_ht = float(order["Z_TotalHT"])
    cast.drift_line = str(line["extId"])
    cast.drift_quantity = int(line["quantity"])
    admin = stack.integration_client()
    try:
        admin.call("PUT", f"products/{product['id']}", {"price": cast.drift_price + 100})
        admin.call("PUT", f"salesorders/{order['id']}", {"Z_TotalHT": cast.drift_total_ht + 100})
        admin.call("PUT", f"salesordersLines/{line['id']}", {"quantity": cast.drift_quantity + 10})
    finally:
        admin.close()


@dataclass
class World:
    """The module's stack, the records of each scenario and what each run left in both systems."""

    stack: RulesStack
    cast: Cast
    runs: dict[str, Observed] = field(default_factory=dict)
    faults: dict[str, Any] = field(default_factory=dict)


def run(
    stack: RulesStack, engine: sa.Engine, world_runs: dict[str, Observed], name: str, **flags: bool
) -> Observed:
    """One DAG run, then what both systems hold."""
    stack.reset_stats()
    outcome = stack.run_dag(**flags)
    stats = stack.stats()
    observed = observe(stack, engine, name, outcome, stats)
    world_runs[name] = observed
    return observed


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """Five DAG runs on one stack (see the module docstring)."""
    stack = RulesStack(tmp_path_factory.mktemp("dag-rules"))
    engine: sa.Engine | None = None
    try:
        stack.start(scale=SCALE, seed=SEED)
        engine = stack.sage()
        runs: dict[str, Observed] = {}
        initial = run(stack, engine, runs, "initial")
        cast = choose_cast(engine, initial)
        result = World(stack, cast, runs)
        make_day_of_changes(stack, engine, cast, initial)
        run(stack, engine, runs, "day")
        make_fault_run_changes(stack, engine, cast)
        stack.ssm_extra = dict(FRAGILE)
        with FaultsDuringLoads(stack, FAULTS) as injector:
            run(stack, engine, runs, "faults")
        stack.ssm_extra = {}
        result.faults = {"armed": injector.armed, "healed": injector.healed}
        make_drift(stack, cast, runs["faults"])
        run(stack, engine, runs, "healed")
        run(stack, engine, runs, "reconcile", full_reconcile=True)
        yield result
    finally:
        if engine is not None:
            engine.dispose()
        stack.stop()


# --- what the rules say SSM holds for the Sage rows --------------------------------------------------------------


def money(value: Any) -> Decimal:
    """A price rounded to the cent, half up."""
    return Decimal(str(value)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def stock_totals(observed: Observed) -> dict[str, Decimal]:
    """D2: the stock of each article summed over its depots, in decimal (SQLite sums REAL columns in binary)."""
    totals: dict[str, Decimal] = {}
    for row in observed.sage["F_ARTSTOCK"]:
        totals[row["AR_Ref"]] = totals.get(row["AR_Ref"], Decimal(0)) + Decimal(str(row["AS_QteSto"]))
    return totals


def quantity_text(total: Decimal) -> str:
    """D2: ``Z_StockDisplay`` of a stock-managed article."""
    return str(int(total)) if total == total.to_integral_value() else format(total.normalize(), "f")


def expected_price(observed: Observed, ref: str) -> Decimal:
    """D6: the price excluding tax of an article, converted with its sales VAT rate when Sage stores it TTC."""
    article = observed.rows("F_ARTICLE", AR_Ref=ref)[0]
    price = Decimal(str(article["AR_PrixVen"]))
    if article["AR_PrixTTC"] != 1:
        return money(price)
    sales = observed.rows("F_ARTCOMPTA", AR_Ref=ref, ACP_Type=0, ACP_Champ=1)[0]
    rate = Decimal(str(observed.rows("F_TAXE", TA_Code=sales["ACP_ComptaCPT_Taxe1"])[0]["TA_Taux"]))
    return money(price / (1 + rate / 100))


def invoice_pieces(observed: Observed) -> set[str]:
    """The sales invoices and credit notes of the dossier (I1)."""
    return {
        r["DO_Piece"] for r in observed.sage["F_DOCENTETE"] if r["DO_Domaine"] == 0 and r["DO_Type"] in (6, 7)
    }


def lines_of(observed: Observed, order_id: int, *, live: bool = True) -> list[dict[str, Any]]:
    """The SSM lines of a sales order (live ones only by default)."""
    return [
        x
        for x in observed.ssm["salesordersLines"].values()
        if ref_id(x["salesOrderId"]) == order_id and not (live and x.get("deleted"))
    ]


def planned_writes(observed: Observed) -> set[tuple[str, str, str]]:
    """(report section, op kind, key) of every write the run planned (reports list them in every mode)."""
    return {
        (e, op["kind"], str(op["key"])) for e, s in observed.report["entities"].items() for op in s["planned"]
    }


# --- one test per rule ---------------------------------------------------------------------------------------------


def test_every_run_completes_and_only_the_fault_run_has_failed_writes(world: World) -> None:
    """Every ``airflow dags test`` run ended (exit 0) and left its report; the fault injector armed and healed."""
    for name, observed in world.runs.items():
        assert observed.returncode == 0, f"{name}: exit {observed.returncode}, see {observed.log}"
    assert world.faults == {"armed": True, "healed": True}, world.faults
    for name in ("initial", "day", "healed", "reconcile"):
        failed = {
            e: s["failures"][:3] for e, s in world.runs[name].report["entities"].items() if s["failures"]
        }
        assert not failed, f"{name}: writes failed on a healthy API: {failed} (log {world.runs[name].log})"


def test_c2_ssm_edit_of_a_read_only_customer_never_reaches_sage_and_the_next_sage_change_overwrites_it(
    world: World,
) -> None:
    """C2: "Edits made in SSM to a read-only account are never written to Sage; the next Sage change overwrites
    the Sage-owned fields."
    """
    cast, day, healed = world.cast, world.runs["day"], world.runs["healed"]
    ssm = day.live("accounts")[cast.c2_code]
    assert ssm["readOnly"] is True and ssm["name"] == cast.c2_ssm_name, "the SSM edit was made"
    assert day.rows("F_COMPTET", CT_Num=cast.c2_code)[0]["CT_Intitule"] == cast.c2_name, (
        "C2: not written to Sage"
    )
    assert not any(k == cast.c2_code and kind.startswith("sage_") for _, kind, k in planned_writes(day))
    # The next Sage change (a rename, applied by the healed run after the fault run lost it) wins in SSM.
    assert healed.rows("F_COMPTET", CT_Num=cast.c2_code)[0]["CT_Intitule"] == cast.c2_sage_name
    assert healed.live("accounts")[cast.c2_code]["name"] == cast.c2_sage_name, "C2: Sage overwrites SSM"
    assert healed.live("accounts")[cast.c2_code]["readOnly"] is True


def test_c3_a_customer_deleted_in_ssm_is_never_deleted_in_sage(world: World) -> None:
    """C3: "A deletion made in SSM is never propagated to Sage." (the Sage-side deletion is in test_dag_sync)"""
    cast = world.cast
    assert world.runs["day"].record("accounts", cast.c3_id)["deleted"] is True, "deleted in SSM"
    for name in ("day", "faults", "healed", "reconcile"):
        rows = world.runs[name].rows("F_COMPTET", CT_Num=cast.c3_code)
        assert len(rows) == 1 and rows[0]["CT_Prospect"] == 0, (
            f"C3: still a Sage customer after the {name} run"
        )
    assert not any(
        k == cast.c3_code and kind.startswith("sage_")
        for r in world.runs.values()
        for _, kind, k in planned_writes(r)
    )


def test_c7_customers_are_created_and_modified_only_in_sage(world: World) -> None:
    """C7: "Apart from C4, customers are created and modified only in Sage."

    A customer created in Sage appears in SSM read-only; a Sage edit reaches SSM; an SSM edit of a customer's
    field is never written to Sage and SSM gets the Sage value back with the next Sage change of the customer; a
    company created in SSM with another status than Client or Prospect stays in SSM only.
    """
    cast, day = world.cast, world.runs["day"]
    created = day.live("accounts").get(cast.c7_new_code)
    assert created is not None, "C7: a customer created in Sage is created in SSM"
    assert created["readOnly"] is True and created["name"] == "Nouveau Client Sage"
    assert label(created["statusId"]) == "Client"
    row = day.rows("F_COMPTET", CT_Num=cast.c7_code)[0]
    ssm = day.live("accounts")[cast.c7_code]
    assert ssm["phone"] == row["CT_Telephone"] == cast.c7_sage_phone, "C7: the Sage edit reaches SSM"
    assert row["CT_EMail"] == cast.c7_email, "C7: the SSM edit of a customer is never written to Sage"
    assert ssm["email"] == cast.c7_email, "C2/C7: the Sage change put the Sage-owned e-mail back in SSM"
    writes_to_sage = {
        (k, kind) for e, kind, k in planned_writes(day) if e == "accounts" and kind.startswith("sage_")
    }
    assert not writes_to_sage, f"C7: no customer is written to Sage in this run: {writes_to_sage}"
    partner = day.record("accounts", cast.partner_id)
    assert partner["extId"] is None and not day.rows("F_COMPTET", CT_Intitule="Partenaire Logistique"), (
        "C4/C7: a 'Partenaire' company stays in SSM only"
    )
    assert not world.runs["reconcile"].rows("F_COMPTET", CT_Intitule="Partenaire Logistique")


def test_p3_prospect_deleted_in_sage_is_deleted_in_ssm_but_an_ssm_deletion_is_not_propagated(
    world: World,
) -> None:
    """P3: "Prospects are deleted only in Sage; a prospect deleted in Sage is deleted in SSM. A deletion in SSM
    is not propagated."
    """
    cast, day, last = world.cast, world.runs["day"], world.runs["reconcile"]
    assert not day.rows("F_COMPTET", CT_Num=cast.p3_sage_code)
    assert day.record("accounts", cast.p3_sage_id)["deleted"] is True, "P3: deleted in SSM"
    assert ("accounts", "ssm_delete", cast.p3_sage_code) in planned_writes(day)
    assert day.record("accounts", cast.p3_ssm_id)["deleted"] is True, "the user deleted it in SSM"
    for observed in (day, world.runs["healed"], last):
        rows = observed.rows("F_COMPTET", CT_Num=cast.p3_ssm_code)
        assert len(rows) == 1 and rows[0]["CT_Prospect"] == 1, (
            f"P3: still a Sage prospect after {observed.name}"
        )


def test_p5_contacts_of_a_prospect_wait_for_the_conversion_then_sync(world: World) -> None:
    """P5: "Contacts of a prospect (either side) are synced only once the prospect is a customer; until then
    they are deferred, not failed."
    """
    cast, day, healed = world.cast, world.runs["day"], world.runs["healed"]
    deferred = day.notes("contacts", "deferred")
    for key in cast.p5_contacts:
        assert key not in day.live("contacts"), f"P5: {key} must wait"
        assert key in deferred and cast.p5_code in deferred[key], f"P5: {key} deferred with its reason"
    assert f"ssm:{cast.p5_ssm_contact_id}" in deferred, "P5: the SSM contact of the prospect is deferred"
    assert day.record("contacts", cast.p5_ssm_contact_id)["extId"] is None
    assert not day.rows("F_CONTACTT", CT_Nom="Attente"), "P5: not written to Sage before the conversion"
    assert day.section("contacts")["counts"]["failed"] == 0
    # After the conversion in Sage (applied by the healed run): the account is a read-only Client (P2) ...
    account = healed.live("accounts")[cast.p5_code]
    assert label(account["statusId"]) == "Client" and account["readOnly"] is True
    # ... its Sage contacts are in SSM on that account, and the SSM contact is in Sage, bound back.
    contacts = healed.live("contacts")
    for key in cast.p5_contacts:
        assert key in contacts and ref_id(contacts[key]["accountId"]) == int(account["id"]), (
            f"P5: {key} synced"
        )
    added = healed.rows("F_CONTACTT", CT_Num=cast.p5_code, CT_Nom="Attente")
    assert len(added) == 1 and added[0]["CT_Prenom"] == "Inès", "P5: the SSM contact reached Sage once"
    ext = healed.record("contacts", cast.p5_ssm_contact_id)["extId"]
    assert ext == f"{cast.p5_code}/{added[0]['CT_No']}"
    assert not any(k.startswith(f"{cast.p5_code}/") for k in healed.notes("contacts", "deferred"))


def test_k2_edits_made_on_either_side_are_applied_to_the_other(world: World) -> None:
    """K2: "Edits made on either side are applied to the other." (an e-mail in SSM, a mobile in Sage)"""
    cast, day = world.cast, world.runs["day"]
    code, number = cast.k2_key.rsplit("/", 1)
    row = day.rows("F_CONTACTT", CT_Num=code, CT_No=int(number))[0]
    ssm = day.record("contacts", cast.k2_id)
    assert row["CT_EMail"] == ssm["email"] == cast.k2_ssm_email, "K2: SSM -> Sage"
    assert row["CT_TelPortable"] == ssm["phone2"] == cast.k2_sage_mobile, "K2: Sage -> SSM"
    assert day.section("contacts")["conflicts"] == [], "different fields: merged, no conflict"


def test_k3_contact_deleted_in_sage_is_deleted_in_ssm_and_an_ssm_deletion_stays_in_ssm(world: World) -> None:
    """K3: "A contact deleted in Sage is marked deleted in SSM; deletions in SSM are not propagated." """
    cast, day = world.cast, world.runs["day"]
    assert day.record("contacts", cast.k3_sage_id)["deleted"] is True, "K3: deleted in SSM"
    assert day.record("contacts", cast.k3_ssm_id)["deleted"] is True, "the user deleted it in SSM"
    code, number = cast.k3_ssm_key.rsplit("/", 1)
    for observed in (day, world.runs["healed"], world.runs["reconcile"]):
        assert len(observed.rows("F_CONTACTT", CT_Num=code, CT_No=int(number))) == 1, (
            f"K3: the SSM deletion reached Sage by the {observed.name} run"
        )


def test_k4_delivery_addresses_never_become_contacts_and_a_contact_on_an_unknown_account_waits(
    world: World,
) -> None:
    """K4: "Only Sage person records (F_CONTACTT) are SSM contacts; delivery addresses (F_LIVRAISON) never are.
    A contact created in SSM on an account unknown to Sage waits (deferred) until the account exists in Sage."
    """
    cast, initial, day = world.cast, world.runs["initial"], world.runs["day"]
    assert initial.sage["F_LIVRAISON"], "the dossier must hold delivery addresses"
    customers = {
        r["CT_Num"] for r in initial.sage["F_COMPTET"] if r["CT_Type"] == 0 and r["CT_Prospect"] == 0
    }
    people = {f"{r['CT_Num']}/{r['CT_No']}" for r in initial.sage["F_CONTACTT"] if r["CT_Num"] in customers}
    assert set(initial.live("contacts")) == people, "K4: the SSM contacts are exactly the customers' people"
    assert len(initial.ssm["contacts"]) == len(people)
    # A delivery address added in Sage with a contact name creates nothing in SSM.
    assert day.rows("F_LIVRAISON", LI_Intitule=cast.k4_delivery_name)
    names = {(c.get("firstName"), c.get("lastName")) for c in day.ssm["contacts"].values()}
    assert ("Marc", "Quai") not in names and not any(last == "Quai" for _, last in names)
    sage_people = {f"{r['CT_Num']}/{r['CT_No']}" for r in day.sage["F_CONTACTT"]}
    assert set(day.live("contacts")) <= sage_people, "K4: every bound SSM contact is a Sage person"
    # The SSM contact on the SSM-only "Partenaire" account waits, run after run, and never reaches Sage.
    for observed in (day, world.runs["healed"]):
        reason = observed.notes("contacts", "deferred").get(f"ssm:{cast.k4_contact_id}")
        assert reason is not None and "unknown to Sage" in reason, f"K4: deferred in {observed.name}"
        assert observed.record("contacts", cast.k4_contact_id)["extId"] is None
        assert not observed.rows("F_CONTACTT", CT_Nom="Sans-Compte")


def test_d1_products_are_read_only_in_ssm_keyed_by_ar_ref_and_never_written_to_sage(world: World) -> None:
    """D1: "Sage -> SSM only; products are readOnly: true in SSM; extId = AR_Ref." """
    initial, healed, cast = world.runs["initial"], world.runs["healed"], world.cast
    for observed in (initial, healed):
        articles = {r["AR_Ref"]: r for r in observed.sage["F_ARTICLE"]}
        products = observed.live("products")
        assert set(products) == set(articles), f"D1: one SSM product per article after {observed.name}"
        for ref, product in products.items():
            assert product["readOnly"] is True, f"D1: {ref} read-only"
            assert product["model"] == articles[ref]["AR_Design"]
    created = [p for p in healed.ssm["products"].values() if p["extId"] == cast.g5_new_ref]
    assert len(created) == 1, "D1: the article created in Sage is one SSM product"
    # Drift made in SSM on a product (its price) is never written back to Sage.
    before = initial.rows("F_ARTICLE", AR_Ref=cast.drift_ref)[0]["AR_PrixVen"]
    assert healed.live("products")[cast.drift_ref]["price"] != float(expected_price(healed, cast.drift_ref))
    assert healed.rows("F_ARTICLE", AR_Ref=cast.drift_ref)[0]["AR_PrixVen"] == before, "D1: one way"


def test_d2_stock_is_the_total_over_depots_a_dash_without_stock_management_and_changes_flow(
    world: World,
) -> None:
    """D2: "SSM stock is the total AS_QteSto over all depots; for articles without stock management SSM shows a
    dash: stock null and Z_StockDisplay "-" (otherwise Z_StockDisplay is the quantity as text)." A depot's change
    in F_ARTSTOCK reaches SSM.
    """
    initial, day, cast = world.runs["initial"], world.runs["day"], world.cast
    before, after = stock_totals(initial)[cast.d2_ref], stock_totals(day)[cast.d2_ref]
    assert after == before + 7
    changed = day.live("products")[cast.d2_ref]
    assert (changed["stock"], changed["Z_StockDisplay"]) == (
        int(after.to_integral_value(rounding=ROUND_HALF_UP)),
        quantity_text(after),
    ), "D2: the stock change flowed"
    depots: dict[str, int] = {}
    for row in initial.sage["F_ARTSTOCK"]:
        depots[row["AR_Ref"]] = depots.get(row["AR_Ref"], 0) + 1
    assert any(n > 1 for n in depots.values()), "the dossier must hold articles stocked in several depots"
    wrong: dict[str, tuple[Any, Any]] = {}
    seen = {"managed": 0, "dash": 0}
    for observed in (initial, day):
        totals, products = stock_totals(observed), observed.live("products")
        for article in observed.sage["F_ARTICLE"]:
            product = products[article["AR_Ref"]]
            shown = (product["stock"], product["Z_StockDisplay"])
            if article["AR_SuiviStock"] > 0:
                seen["managed"] += 1
                total = totals.get(article["AR_Ref"], Decimal(0))
                wanted: tuple[Any, Any] = (
                    int(total.to_integral_value(rounding=ROUND_HALF_UP)),
                    quantity_text(total),
                )
            else:
                seen["dash"] += 1
                wanted = (None, "-")
            if shown != wanted:
                wrong[f"{observed.name} {article['AR_Ref']}"] = (shown, wanted)
    assert all(seen.values()), seen
    assert not wrong, f"D2: (stock, Z_StockDisplay) shown vs expected: {wrong}"


def test_d3_picture_is_a_carrousel_document_uploaded_again_only_when_its_bytes_change(world: World) -> None:
    """D3: "The article picture (AR_Photo) is uploaded as a product document with isCarrousel: true; re-uploaded
    only when the picture bytes change."
    """
    cast, initial, day = world.cast, world.runs["initial"], world.runs["day"]
    media = world.stack.root / "dossier_media"
    pictured = {r["AR_Ref"]: r["AR_Photo"] for r in initial.sage["F_ARTICLE"] if r["AR_Photo"]}
    assert pictured, "the dossier must hold pictures"
    products = initial.live("products")
    for ref, product in products.items():
        documents = initial.documents[int(product["id"])]
        if ref in pictured:
            assert [d["isCarrousel"] for d in documents] == [True], f"D3: one carrousel picture on {ref}"
            assert documents[0]["name"] == Path(pictured[ref]).name
        else:
            assert documents == [], f"D3: no picture, no document on {ref}"
    changed = day.documents[int(products[cast.d3_ref]["id"])]
    assert [d["sha256"] for d in changed if d["isCarrousel"]] == [sha256_of(media / pictured[cast.d3_ref])]
    assert changed[0]["sha256"] != initial.documents[int(products[cast.d3_ref]["id"])][0]["sha256"]
    # Every other picture, including the one of an article whose price changed, is the same document as before.
    for ref in pictured:
        if ref != cast.d3_ref:
            pid = int(products[ref]["id"])
            assert [d["id"] for d in day.documents[pid]] == [d["id"] for d in initial.documents[pid]], ref
    assert ("products", "ssm_update", cast.d3_same_ref) in planned_writes(day)
    uploads = {r: n for r, n in day.ssm_writes().items() if r.startswith("POST") and "documents" in r}
    assert sum(uploads.values()) == 1, f"D3: one upload in the day run: {uploads}"
    for name in ("healed", "reconcile"):
        assert not any("documents" in r for r in world.runs[name].ssm_writes()), f"D3: no upload in {name}"


def test_d4_article_deleted_in_sage_is_deleted_in_ssm(world: World) -> None:
    """D4: "An article deleted in Sage is marked deleted in SSM." """
    cast, day = world.cast, world.runs["day"]
    assert not day.rows("F_ARTICLE", AR_Ref=cast.d4_ref)
    assert day.record("products", cast.d4_id)["deleted"] is True, "D4"
    assert cast.d4_ref not in day.live("products")
    assert day.section("products")["counts"]["deleted"] == 1, "D4: only the deleted article"


def test_d6_price_excluding_tax_converted_with_the_sales_vat_rate(world: World) -> None:
    """D6: "SSM price is the sales price excluding tax; when Sage stores it including tax (AR_PrixTTC=1) it is
    converted with the article's sales VAT rate, rounded to 2 decimals."
    """
    cast = world.cast
    seen_ttc = 0
    for observed in (world.runs["initial"], world.runs["day"]):
        products = observed.live("products")
        for article in observed.sage["F_ARTICLE"]:
            seen_ttc += article["AR_PrixTTC"] == 1
            price = money(products[article["AR_Ref"]]["price"])
            assert price == expected_price(observed, article["AR_Ref"]), f"D6: {article['AR_Ref']}"
    assert seen_ttc, "the dossier must hold TTC-priced articles"
    day = world.runs["day"]
    assert money(day.live("products")[cast.d3_same_ref]["price"]) == expected_price(day, cast.d3_same_ref)


def test_i2_invoice_deleted_in_sage_is_deleted_in_ssm(world: World) -> None:
    """I2: "An invoice deleted in Sage is marked deleted in SSM." (its sales order, and the order's lines)"""
    cast, day = world.cast, world.runs["day"]
    assert cast.i2_piece not in invoice_pieces(day)
    assert day.record("salesorders", cast.i2_id)["deleted"] is True, "I2: the sales order is deleted"
    assert cast.i2_piece not in day.live("salesorders")
    orphans = [int(x["id"]) for x in lines_of(day, cast.i2_id)]
    assert not orphans, f"I2: lines of the deleted sales order {cast.i2_id} are still live in SSM: {orphans}"


def test_i3_synced_invoices_are_marked_z_synced_with_a_utc_time(world: World) -> None:
    """I3: "Synced invoices are marked as synced in SSM: Z_Synced = true and Z_SyncedAt (UTC)." """
    from datetime import datetime

    def when(text: str) -> datetime:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))

    for name in ("initial", "healed"):
        observed = world.runs[name]
        started, finished = when(observed.report["started_at"]), when(observed.report["finished_at"])
        orders = observed.live("salesorders")
        assert set(orders) == invoice_pieces(observed), f"I1: one sales order per invoice after {name}"
        for piece, order in orders.items():
            assert order["Z_Synced"] is True, f"I3: {piece}"
            assert str(order["Z_SyncedAt"]).endswith("Z"), f"I3: {piece} Z_SyncedAt is UTC"
            if name == "initial":
                assert started <= when(order["Z_SyncedAt"]) <= finished, f"I3: {piece} stamped by {name}"
    # The I6 invoice is stamped by the run that synced it: the fault run when its customer got through the
    # faults, else the healed run (which one depends on where the faults fell).
    since = when(world.runs["faults"].report["started_at"])
    until = when(world.runs["healed"].report["finished_at"])
    stamped = when(world.runs["healed"].live("salesorders")[world.cast.i6_piece]["Z_SyncedAt"])
    assert since <= stamped <= until, f"I3: {world.cast.i6_piece} stamped when it was synced"


def test_i4_sage_invoice_number_is_z_sage50invoiceid_and_ext_id(world: World) -> None:
    """I4: "The Sage invoice number is visible in SSM: Z_Sage50InvoiceId = DO_Piece (and extId)." """
    initial = world.runs["initial"]
    orders = initial.live("salesorders")
    assert set(orders) == invoice_pieces(initial)
    for piece, order in orders.items():
        assert order["extId"] == order["Z_Sage50InvoiceId"] == piece, f"I4: {piece}"


def test_i5_invoices_are_read_only_and_credit_notes_are_avoir(world: World) -> None:
    """I5: "Invoices are readOnly: true in SSM. Credit notes (DO_Provenance=2) are synced too, Z_DocType =
    "Avoir"." Each order carries its Sage lines.
    """
    initial = world.runs["initial"]
    orders = initial.live("salesorders")
    headers = [r for r in initial.sage["F_DOCENTETE"] if r["DO_Domaine"] == 0 and r["DO_Type"] in (6, 7)]
    kinds = {"Facture": 0, "Avoir": 0}
    for header in headers:
        order = orders[header["DO_Piece"]]
        kind = "Avoir" if header["DO_Provenance"] == 2 else "Facture"
        kinds[kind] += 1
        assert order["readOnly"] is True, f"I5: {header['DO_Piece']} read-only"
        assert order["Z_DocType"] == kind and label(order["statusId"]) == kind, f"I5: {header['DO_Piece']}"
        lines = initial.rows("F_DOCLIGNE", DO_Domaine=0, DO_Piece=header["DO_Piece"])
        ssm_lines = lines_of(initial, int(order["id"]))
        assert sorted(str(x["extId"]) for x in ssm_lines) == sorted(str(x["DL_No"]) for x in lines)
    assert all(kinds.values()), f"the dossier must hold invoices and credit notes: {kinds}"


def test_i6_invoice_of_a_customer_not_yet_in_ssm_is_deferred_then_synced(world: World) -> None:
    """I6: "An invoice whose customer is not (yet) in SSM is deferred until it is, never dropped."

    The customer is a new Sage row quarantined by a blocking expectation (G3); once fixed, it reaches SSM and
    the invoice follows in the same run, with its lines.
    """
    cast, day, healed = world.cast, world.runs["day"], world.runs["healed"]
    account = healed.live("accounts")[cast.g3_code]
    order = healed.live("salesorders").get(cast.i6_piece)
    assert order is not None, "I6: the invoice is synced once its customer is in SSM"
    assert ref_id(order["accountId"]) == int(account["id"])
    assert sorted(int(x["extId"]) for x in lines_of(healed, int(order["id"]))) == cast.i6_lines
    assert cast.i6_piece not in day.live("salesorders")
    quarantined = day.notes("invoices", "quarantined")
    deferred = day.notes("invoices", "deferred")
    assert cast.i6_piece in deferred and cast.g3_code in deferred[cast.i6_piece], (
        f"I6: the invoice must be deferred (waiting for its customer), not quarantined as bad data; "
        f"deferred={deferred}, quarantined={quarantined} (log {day.log})"
    )


def test_g3_blocking_bad_row_is_quarantined_with_its_reason_others_proceed_and_it_syncs_once_fixed(
    world: World,
) -> None:
    """G3: "A row that fails a blocking data-quality rule is quarantined with its reason and retried on every
    later run; it never blocks the other rows."
    """
    cast, day, healed = world.cast, world.runs["day"], world.runs["healed"]
    reason = day.notes("accounts", "quarantined").get(cast.g3_code)
    assert reason is not None and "name_not_blank" in reason and "CT_Intitule" in reason, (
        f"G3: quarantined with its reason in the report: {day.section('accounts')['quarantined']}"
    )
    assert day.section("accounts")["counts"]["quarantined"] >= 1
    assert day.section("accounts")["status"] == "ok", "a quarantined row does not fail the entity"
    assert cast.g3_code not in day.live("accounts")
    assert cast.c7_new_code in day.live("accounts"), "G3: the other new row of the same run was synced"
    # Fixed in Sage before the fault run, synced by the healed run, no longer quarantined.
    synced = [
        a for a in healed.ssm["accounts"].values() if a.get("extId") == cast.g3_code and not a["deleted"]
    ]
    assert len(synced) == 1 and synced[0]["name"] == cast.g3_fixed_name, "G3: synced once fixed"
    for name in ("faults", "healed"):
        assert cast.g3_code not in world.runs[name].notes("accounts", "quarantined")


def test_g5_faults_mid_run_then_the_healed_run_converges_without_duplicates_or_loss(world: World) -> None:
    """G5: "After any crash, timeout or API error at any point, later runs converge to the state the rules
    define, with no duplicate record on either side and no change lost."
    """
    cast, faults, healed = world.cast, world.runs["faults"], world.runs["healed"]
    assert faults.report["totals"]["failed"] > 0, f"the faults must hurt the run: {faults.report['totals']}"
    served = faults.stats["by_status"]
    assert served.get("503", 0) > 0 and served.get("500", 0) > 0, f"refused and lost calls expected: {served}"
    assert healed.report["totals"]["failed"] == 0
    # Nothing lost: every change made before the fault run is on both sides now.
    for ref in cast.g5_refs:
        assert money(healed.live("products")[ref]["price"]) == expected_price(healed, ref), f"G5: {ref} price"
    assert healed.live("accounts")[cast.c2_code]["name"] == cast.c2_sage_name
    assert label(healed.live("accounts")[cast.p5_code]["statusId"]) == "Client"
    # C4 across the failure: one Sage customer for the SSM company, its code back in SSM as extId.
    rows = healed.rows("F_COMPTET", CT_Intitule=cast.c4_name)
    assert len(rows) == 1 and rows[0]["CT_Prospect"] == 0, f"G5/C4: one Sage customer, got {rows}"
    company = healed.record("accounts", cast.c4_id)
    assert company["extId"] == rows[0]["CT_Num"] and company["readOnly"] is True
    # No duplicates on either side.
    for observed in (healed, world.runs["reconcile"]):
        for endpoint in ENDPOINTS:
            ext = [
                str(r["extId"])
                for r in observed.ssm[endpoint].values()
                if r.get("extId") and not r["deleted"]
            ]
            assert len(ext) == len(set(ext)), f"G5: duplicate extId in SSM {endpoint} after {observed.name}"
        assert not any(observed.stats["duplicate_ext_ids"].values()), observed.stats["duplicate_ext_ids"]
        codes = [r["CT_Num"] for r in observed.sage["F_COMPTET"]]
        names = [r["CT_Intitule"] for r in observed.sage["F_COMPTET"] if r["CT_Intitule"] == cast.c4_name]
        assert len(codes) == len(set(codes)) and len(names) == 1
    # Converged: every Sage account, article and invoice is in SSM once (the prospect and the customer deleted in
    # SSM may stay deleted there: C3, P3).
    accounts = {r["CT_Num"] for r in healed.sage["F_COMPTET"] if r["CT_Type"] == 0}
    assert accounts - {cast.p3_ssm_code, cast.c3_code} <= set(healed.live("accounts")) <= accounts
    assert set(healed.live("products")) == {r["AR_Ref"] for r in healed.sage["F_ARTICLE"]}
    assert set(healed.live("salesorders")) == invoice_pieces(healed)


def test_full_reconcile_repairs_drift_in_ssm_that_a_normal_run_does_not_see_with_minimal_writes(
    world: World,
) -> None:
    """The DAG param ``full_reconcile``: "compare every record of both live sides instead of the changes since the
    last run (repairs drift)". Drift made in SSM with the integration key on a read-only product, a sales order
    and one of its lines is left alone by a normal run and repaired by a full reconcile, which writes only those
    three records and nothing to Sage.
    """
    cast, healed, last = world.cast, world.runs["healed"], world.runs["reconcile"]
    line_of = {str(x["extId"]): x for x in healed.live("salesordersLines").values()}
    # The normal run after the drift did not see it.
    assert healed.live("products")[cast.drift_ref]["price"] == cast.drift_price + 100
    assert healed.live("salesorders")[cast.drift_piece]["Z_TotalHT"] == cast.drift_total_ht + 100
    assert line_of[cast.drift_line]["quantity"] == cast.drift_quantity + 10
    # The full reconcile repaired it.
    assert last.report["full_reconcile"] is True
    assert last.live("products")[cast.drift_ref]["price"] == cast.drift_price
    assert last.live("salesorders")[cast.drift_piece]["Z_TotalHT"] == cast.drift_total_ht
    repaired = {str(x["extId"]): x for x in last.live("salesordersLines").values()}[cast.drift_line]
    assert repaired["quantity"] == cast.drift_quantity
    # Minimal writes: the three drifted records only, and nothing to Sage.
    expected = {
        ("products", "ssm_update", cast.drift_ref),
        ("invoices", "ssm_update", cast.drift_piece),
        ("invoices", "ssm_update", cast.drift_line),
    }
    assert planned_writes(last) == expected, (
        f"full reconcile writes only the drift; planned {planned_writes(last)}"
    )
    for table in ("F_COMPTET", "F_CONTACTT"):
        assert last.sage[table] == healed.sage[table], f"full reconcile wrote to Sage {table}"
