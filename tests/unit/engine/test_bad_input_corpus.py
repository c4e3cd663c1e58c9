"""G3 (with C1, I1, I6, K1, P1): a corpus of bad input, both directions, each row quarantined, warned or deferred
with its reason, and nothing else lost.

Two worlds run the real pipeline (extract, Great Expectations validation, plan, load, commit) on in-memory sides:
one dossier holds every kind of bad Sage row beside good neighbours; one tenant, synced from a clean dossier, then
receives every kind of bad SSM input a salesperson can type. (A ``DO_Piece`` saved as type 6 and 7 needs the real
table's key: it is in tests/integration/dag/test_reliability.py.) Each case names what it puts in, the outcome the rules
require and a phrase of the reason a person reads in the report. ``python -m tests.unit.engine.test_bad_input_corpus``
prints the table (kind, direction, outcome, reason).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from sage_sync.engine.pipeline.run import RunResult
from tests.support.memory import (
    SyncWorld,
    account_row,
    contact_row,
    put_article,
    put_invoice,
    put_invoice_line,
)

QUARANTINED, WARNED, DEFERRED = "quarantined", "warned", "deferred"
LINE_IDS = itertools.count(900)
EMOJI = "Café ☕"  # not in cp1252: Sage cannot store it


@dataclass(frozen=True)
class Case:
    """One kind of bad input: what it puts in, and what must become of it."""

    kind: str
    entity: str
    outcome: str
    reason: str
    #: Puts the bad input into the world and returns the key the plan names it by.
    put: Callable[[SyncWorld], str]


def _account(code: str, **values: Any) -> Callable[[SyncWorld], str]:
    def put(w: SyncWorld) -> str:
        w.sage.put("accounts", account_row(code, values.pop("name", f"Société {code}"), **values))
        return code

    return put


def _null_code(w: SyncWorld) -> str:
    w.sage.put("accounts", {**account_row("X", "Sans Code", city="Lyon"), "code": None})
    return "no CT_Num: CT_Intitule='Sans Code', CT_Ville='Lyon'"


def _contact(code: str, number: int, **values: Any) -> Callable[[SyncWorld], str]:
    def put(w: SyncWorld) -> str:
        w.sage.put("contacts", contact_row(code, number, values.pop("last_name", "Durand"), **values))
        return f"{code}/{number}"

    return put


def _contact_of_bad_account(w: SyncWorld) -> str:
    w.sage.put("accounts", account_row("QBAD01", EMOJI))
    w.sage.put("contacts", contact_row("QBAD01", 1, "Martin"))
    return "QBAD01/1"


def _article(ref: str, **values: Any) -> Callable[[SyncWorld], str]:
    def put(w: SyncWorld) -> str:
        put_article(w.sage, ref, **values)
        return ref

    return put


def _invoice(piece: str, header: dict[str, Any] | None = None, **line: Any) -> Callable[[SyncWorld], str]:
    def put(w: SyncWorld) -> str:
        put_invoice(w.sage, piece, "GOOD01", **(header or {}))
        put_invoice_line(w.sage, piece, next(LINE_IDS), **line)
        return piece

    return put


def _invoice_of_bad_account(w: SyncWorld) -> str:
    w.sage.put("accounts", account_row("QBAD02", "x" * 70))
    put_invoice(w.sage, "FQBAD1", "QBAD02")
    put_invoice_line(w.sage, "FQBAD1", 991)
    return "FQBAD1"


SAGE_CASES = [
    Case("account without CT_Num", "accounts", QUARANTINED, "without CT_Num", _null_code),
    Case("account code in lower case", "accounts", QUARANTINED, "upper case", _account("c lower")),
    Case("account code of 18 characters", "accounts", QUARANTINED, "at most 17", _account("C" * 18)),
    Case(
        "company name missing",
        "accounts",
        QUARANTINED,
        "company name (CT_Intitule) is missing",
        _account("QNAME1", name=None),
    ),
    Case("company name blank", "accounts", QUARANTINED, "is blank", _account("QNAME2", name="   ")),
    Case(
        "company name of 70 characters",
        "accounts",
        QUARANTINED,
        "at most 69",
        _account("QNAME3", name="N" * 70),
    ),
    Case(
        "control character in a company name",
        "accounts",
        QUARANTINED,
        "control character",
        _account("QNAME4", name="Dupont\x07 SA"),
    ),
    Case("emoji in a company name", "accounts", QUARANTINED, "cp1252", _account("QNAME5", name=EMOJI)),
    Case(
        "prospect flag neither 0 nor 1",
        "accounts",
        QUARANTINED,
        "expected 0 (customer) or 1",
        _account("QFLAG1", is_prospect=2),
    ),
    Case(
        "malformed account e-mail",
        "accounts",
        WARNED,
        "not a well-formed address",
        _account("WMAIL1", email="compta@@dupont"),
    ),
    Case(
        "postcode that is not French",
        "accounts",
        WARNED,
        "not a French postcode",
        _account("WPOST1", postcode="7500", country="France"),
    ),
    Case(
        "SIRET failing its check digit",
        "accounts",
        WARNED,
        "SIRET",
        _account("WSIRE1", siret="73282932000075"),
    ),
    Case(
        "VAT number with a wrong key",
        "accounts",
        WARNED,
        "VAT number",
        _account("WVAT01", vat_number="FR00732829320"),
    ),
    Case("country unknown to SSM", "accounts", WARNED, "Atlantis", _account("WCTRY1", country="Atlantis")),
    Case(
        "contact without last name",
        "contacts",
        QUARANTINED,
        "missing",
        _contact("GOOD01", 11, last_name=None),
    ),
    Case("contact last name blank", "contacts", QUARANTINED, "blank", _contact("GOOD01", 12, last_name=" ")),
    Case(
        "contact last name of 36 characters",
        "contacts",
        QUARANTINED,
        "at most 35",
        _contact("GOOD01", 13, last_name="L" * 36),
    ),
    Case(
        "emoji in a contact first name",
        "contacts",
        QUARANTINED,
        "cp1252",
        _contact("GOOD01", 14, first_name=EMOJI),
    ),
    Case(
        "control character in a job title",
        "contacts",
        QUARANTINED,
        "control character",
        _contact("GOOD01", 15, job_title="Achats\x01"),
    ),
    Case(
        "contact e-mail a@b@c",
        "contacts",
        WARNED,
        "not a well-formed address",
        _contact("GOOD01", 16, email="a@b@c"),
    ),
    Case("contact of a quarantined account", "contacts", DEFERRED, "QBAD01", _contact_of_bad_account),
    Case("article reference in lower case", "products", QUARANTINED, "upper case", _article("ref bas")),
    Case("article designation blank", "products", QUARANTINED, "blank", _article("QDES01", designation="  ")),
    Case(
        "article designation missing",
        "products",
        QUARANTINED,
        "missing",
        _article("QDES02", designation=None),
    ),
    Case(
        "article designation of 70 characters",
        "products",
        QUARANTINED,
        "at most 69",
        _article("QDES03", designation="D" * 70),
    ),
    Case(
        "emoji in an article designation",
        "products",
        QUARANTINED,
        "cp1252",
        _article("QDES04", designation=EMOJI),
    ),
    Case("negative sales price", "products", QUARANTINED, "negative", _article("QPRI01", sales_price=-5.0)),
    Case(
        "negative purchase price",
        "products",
        QUARANTINED,
        "negative",
        _article("QPRI02", purchase_price=-1.0),
    ),
    Case("sales price missing", "products", QUARANTINED, "missing", _article("QPRI03", sales_price=None)),
    Case("invoice date missing", "invoices", QUARANTINED, "date", _invoice("FDAT01", {"date": None})),
    Case(
        "invoice dated 9999-12-31",
        "invoices",
        QUARANTINED,
        "9999",
        _invoice("FDAT02", {"date": "9999-12-31"}),
    ),
    Case(
        "invoice dated 0001-01-01",
        "invoices",
        QUARANTINED,
        "0001",
        _invoice("FDAT03", {"date": "0001-01-01"}),
    ),
    Case(
        "invoice date that does not parse",
        "invoices",
        QUARANTINED,
        "date",
        _invoice("FDAT04", {"date": "31/02/2026"}),
    ),
    Case(
        "invoice of a customer Sage does not have",
        "invoices",
        QUARANTINED,
        "NOPE99",
        _invoice("FCUS01", {"customer_code": "NOPE99"}),
    ),
    Case(
        "line whose article does not exist",
        "invoices",
        QUARANTINED,
        "GHOST1",
        _invoice("FART01", article_ref="GHOST1"),
    ),
    Case(
        "control character in a line designation",
        "invoices",
        QUARANTINED,
        "control character",
        _invoice("FTXT01", designation="Livraison\x02"),
    ),
    Case(
        "line quantity 1e12",
        "invoices",
        WARNED,
        "quantity",
        _invoice("FQTY01", quantity=1e12, amount_ht=25.0 * 1e12),
    ),
    Case(
        "line unit price 1e15",
        "invoices",
        WARNED,
        "price",
        _invoice("FPRC01", quantity=1.0, unit_price=1e15, amount_ht=1e15),
    ),
    Case(
        "negative quantity on an invoice",
        "invoices",
        WARNED,
        "negative",
        _invoice("FNEG01", quantity=-2.0, amount_ht=-50.0),
    ),
    Case("invoice of a quarantined customer", "invoices", DEFERRED, "QBAD02", _invoice_of_bad_account),
]


def _ssm_account(name: str, **fields: Any) -> Callable[[SyncWorld], str]:
    """A prospect company a salesperson creates in SSM (P1: it becomes a Sage prospect)."""

    def put(w: SyncWorld) -> str:
        return f"ssm:{w.ssm.user_create('accounts', {'name': name, 'statusId': 2, **fields})}"

    return put


def _ssm_contact(**fields: Any) -> Callable[[SyncWorld], str]:
    """A contact a salesperson adds to a bound company in SSM (K1: it becomes a Sage contact)."""

    def put(w: SyncWorld) -> str:
        (account,) = w.ssm_by_ext("accounts", "GOOD01")
        data = {"accountId": account["id"], "lastName": fields.pop("lastName", "Moreau"), **fields}
        return f"ssm:{w.ssm.user_create('contacts', data)}"

    return put


def _ssm_edit(code: str, **fields: Any) -> Callable[[SyncWorld], str]:
    """An edit a salesperson makes to a bound prospect (P3: it flows to Sage)."""

    def put(w: SyncWorld) -> str:
        (account,) = w.ssm_by_ext("accounts", code)
        w.ssm.user_update("accounts", account["id"], fields)
        return code

    return put


SSM_CASES = [
    Case(
        "SSM company name of 70 characters",
        "accounts",
        QUARANTINED,
        "column holds 69",
        _ssm_account("S" * 70),
    ),
    Case("emoji in an SSM company name", "accounts", QUARANTINED, "cp1252", _ssm_account(EMOJI)),
    Case(
        "control character in an SSM company name",
        "accounts",
        QUARANTINED,
        "control character",
        _ssm_account("Durand\x03 SARL"),
    ),
    Case("SSM company name blank", "accounts", QUARANTINED, "name is required", _ssm_account("   ")),
    Case(
        "SSM phone longer than CT_Telephone",
        "accounts",
        QUARANTINED,
        "column holds 21",
        _ssm_account("Téléphone Long", phone="+33 1 23 45 67 89 00 11 22"),
    ),
    Case(
        "malformed e-mail typed in SSM",
        "accounts",
        WARNED,
        "not a well-formed address",
        _ssm_account("Courriel SARL", email="a@b@c"),
    ),
    Case(
        "SIRET typed in SSM failing its check digit",
        "accounts",
        WARNED,
        "SIRET",
        _ssm_account("Siret SARL", Z_Siret="12345678900000"),
    ),
    Case(
        "emoji typed into a bound prospect's city",
        "accounts",
        QUARANTINED,
        "cp1252",
        _ssm_edit("PGOOD1", city="Lille 🚲"),
    ),
    Case(
        "SSM contact first name of 80 characters",
        "contacts",
        QUARANTINED,
        "column holds 35",
        _ssm_contact(firstName="F" * 80),
    ),
    Case(
        "emoji in an SSM contact last name", "contacts", QUARANTINED, "cp1252", _ssm_contact(lastName=EMOJI)
    ),
    Case(
        "SSM contact phone longer than CT_Telephone",
        "contacts",
        QUARANTINED,
        "column holds 21",
        _ssm_contact(phone1="06 12 34 56 78 / 01 23 45 67 89"),
    ),
    Case(
        "SSM contact last name blank",
        "contacts",
        QUARANTINED,
        "last_name is required",
        _ssm_contact(lastName="  "),
    ),
    Case(
        "SSM contact e-mail a@b@c",
        "contacts",
        WARNED,
        "not a well-formed address",
        _ssm_contact(email="a@b@c"),
    ),
]


def _good_dossier(w: SyncWorld) -> None:
    """The neighbours every case sits beside; all of them must reach SSM whatever the bad rows do."""
    w.sage.put("accounts", account_row("GOOD01", "Dupont & Fils", city="Lyon", email="achats@dupont.fr"))
    w.sage.put("accounts", account_row("GOOD02", "Zoé Martin", city="Lille"))
    w.sage.put("accounts", account_row("PGOOD1", "Prospect Bleu", prospect=True, city="Nantes"))
    w.sage.put("contacts", contact_row("GOOD01", 1, "Durand", first_name="Anne"))
    w.sage.put("contacts", contact_row("GOOD02", 1, "Petit"))
    put_article(w.sage, "GOODART")
    put_invoice(w.sage, "FGOOD1", "GOOD01")
    put_invoice_line(
        w.sage, "FGOOD1", 1, article_ref="GOODART", quantity=1.0, unit_price=12.0, amount_ht=12.0
    )


def _outcomes(result: RunResult, entity: str) -> dict[str, dict[str, str]]:
    """The keys the plan names per outcome; a record from SSM is also named ``ssm:<id>``."""
    plan = result.plans[entity]
    out: dict[str, dict[str, str]] = {}
    for outcome, notes in (
        (QUARANTINED, plan.quarantined),
        (WARNED, plan.warnings),
        (DEFERRED, plan.deferred),
    ):
        out[outcome] = {n.key: n.reason for n in notes}
        out[outcome].update({f"ssm:{n.ssm_id}": n.reason for n in notes if n.ssm_id is not None})
    return out


ENDPOINT = {"accounts": "accounts", "contacts": "contacts", "products": "products", "invoices": "salesorders"}


@dataclass
class Outcome:
    case: Case
    key: str
    found: str  # the outcome the run gave the key ("" when none)
    reason: str


def run_corpus(cases: list[Case], sage_to_ssm: bool) -> tuple[SyncWorld, list[Outcome]]:
    """Put every case into one world (Sage rows before the first run, SSM input after it), run, collect."""
    w = SyncWorld()
    _good_dossier(w)
    if sage_to_ssm:
        keys = [case.put(w) for case in cases]
    else:
        w.run()
        keys = [case.put(w) for case in cases]
    result = w.run()
    outcomes = []
    for case, key in zip(cases, keys, strict=True):
        seen = _outcomes(result, case.entity)
        # A record created in SSM is bound back to the Sage key it got (P1, K1): the plan may name it by that key.
        names = {key, *_bound_key(w, case.entity, key)}
        found = next((o for o in (QUARANTINED, DEFERRED, WARNED) if names & set(seen[o])), "")
        reason = next((seen[found][n] for n in names if n in seen.get(found, {})), "")
        outcomes.append(Outcome(case, key, found, reason))
    return w, outcomes


def _bound_key(w: SyncWorld, entity: str, key: str) -> set[str]:
    if not key.startswith("ssm:"):
        return set()
    ident = int(key[4:])
    return {str(r["extId"]) for r in w.ssm.live(ENDPOINT[entity]) if r["id"] == ident and r.get("extId")}


@pytest.fixture(scope="module")
def sage_corpus() -> tuple[SyncWorld, list[Outcome]]:
    return run_corpus(SAGE_CASES, sage_to_ssm=True)


@pytest.fixture(scope="module")
def ssm_corpus() -> tuple[SyncWorld, list[Outcome]]:
    return run_corpus(SSM_CASES, sage_to_ssm=False)


def test_the_corpus_has_at_least_forty_kinds_in_both_directions() -> None:
    kinds = [c.kind for c in SAGE_CASES + SSM_CASES]
    assert len(set(kinds)) == len(kinds) >= 40
    assert len(SSM_CASES) >= 10


@pytest.mark.parametrize("index", range(len(SAGE_CASES)), ids=[c.kind for c in SAGE_CASES])
def test_g3_each_bad_sage_row_gets_its_outcome_and_reason(
    sage_corpus: tuple[SyncWorld, list[Outcome]], index: int
) -> None:
    w, outcomes = sage_corpus
    got = outcomes[index]
    assert (got.found, got.case.reason in got.reason) == (got.case.outcome, True), (
        f"{got.case.kind}: {got.key} was {got.found or 'not named'} ({got.reason!r}); expected "
        f"{got.case.outcome} with {got.case.reason!r}"
    )
    live = {r.get("extId") for r in w.ssm.live(ENDPOINT[got.case.entity])}
    # Quarantined and deferred rows never reach SSM; warned ones do, with the warning in the report (G3).
    assert (got.key in live) is (got.case.outcome == WARNED), (
        f"{got.case.kind}: {got.key} in SSM: {got.key in live}"
    )


@pytest.mark.parametrize("index", range(len(SSM_CASES)), ids=[c.kind for c in SSM_CASES])
def test_g3_each_bad_ssm_input_gets_its_outcome_and_reason(
    ssm_corpus: tuple[SyncWorld, list[Outcome]], index: int
) -> None:
    w, outcomes = ssm_corpus
    got = outcomes[index]
    assert (got.found, got.case.reason in got.reason) == (got.case.outcome, True), (
        f"{got.case.kind}: {got.key} was {got.found or 'not named'} ({got.reason!r}); expected "
        f"{got.case.outcome} with {got.case.reason!r}"
    )


def test_g3_nothing_else_is_lost_sage_to_ssm(sage_corpus: tuple[SyncWorld, list[Outcome]]) -> None:
    w, outcomes = sage_corpus
    held = {(o.case.entity, o.key) for o in outcomes if o.case.outcome != WARNED}
    held |= {
        ("accounts", "QBAD01"),
        ("accounts", "QBAD02"),
    }  # the quarantined accounts behind the deferred cases
    for entity, endpoint in ENDPOINT.items():
        sage_keys = {key for key in _sage_keys(w, entity)} - {k for e, k in held if e == entity}
        live = [r.get("extId") for r in w.ssm.live(endpoint)]
        assert sorted(live) == sorted(sage_keys), entity  # each once: no loss, no duplicate
    assert {"GOOD01", "GOOD02", "PGOOD1"} <= {r["extId"] for r in w.ssm.live("accounts")}


def test_g3_nothing_else_is_lost_ssm_to_sage(ssm_corpus: tuple[SyncWorld, list[Outcome]]) -> None:
    w, outcomes = ssm_corpus
    sage_names = {r.get("name") for r in w.sage.rows("accounts").values()}
    sage_people = {(r.get("last_name"), r.get("first_name")) for r in w.sage.rows("contacts").values()}
    for o in outcomes:
        if o.case.outcome == WARNED and o.case.entity == "accounts":
            (rec,) = [
                r for r in w.ssm.live("accounts") if f"ssm:{r['id']}" == o.key or r.get("extId") == o.key
            ]
            assert rec["name"] in sage_names and rec.get("extId"), o.case.kind  # P1: created in Sage, bound
        if o.case.outcome == WARNED and o.case.entity == "contacts":
            assert ("Moreau", None) in sage_people, o.case.kind  # K1: created in Sage
    quarantined_names = {"S" * 70, EMOJI, "Durand\x03 SARL", "   ", "Téléphone Long"}
    assert not quarantined_names & sage_names, "a quarantined SSM company reached Sage"
    # The bound prospect whose city was mangled in SSM keeps its last storable value in Sage.
    assert w.sage.rows("accounts")[("PGOOD1",)]["city"] == "Nantes"


def _sage_keys(w: SyncWorld, entity: str) -> set[str]:
    rows = w.sage.rows(entity)
    if entity == "contacts":
        return {f"{r['account_code']}/{r['number']}" for r in rows.values()}
    if entity == "products":
        return {str(r["ref"]) for r in rows.values()}
    if entity == "invoices":
        return {str(r["piece"]) for r in rows.values()}
    return {str(r["code"]) for r in rows.values() if r.get("code") is not None}


def table(outcomes: list[Outcome], direction: str) -> list[str]:
    """The corpus as Markdown rows: kind, direction, outcome, reason."""
    return [f"| {o.case.kind} | {direction} | {o.found or 'none'} | {o.reason} |" for o in outcomes]


if __name__ == "__main__":
    rows = ["| kind | direction | outcome | reason |", "|---|---|---|---|"]
    rows += table(run_corpus(SAGE_CASES, sage_to_ssm=True)[1], "Sage → SSM")
    rows += table(run_corpus(SSM_CASES, sage_to_ssm=False)[1], "SSM → Sage")
    print("\n".join(rows))
