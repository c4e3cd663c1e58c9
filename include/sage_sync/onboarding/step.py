"""The match step of a run (O1): propose, apply a person's decisions, bind what is sure, hold what is not.

It runs before every entity's extract:

1. **Propose** on the first sync of a dossier (no matching pass yet, no account bound) and whenever asked (the DAG's
   ``match`` param, ``sage-sync match``): SSM records without ``extId`` are matched to unbound Sage records
   (:mod:`.matcher`). Pairs decided earlier stay decided; waiting pairs no longer proposed are superseded.
2. **Decide**: the rows of ``decisions.csv`` a person filled in are applied (:mod:`.decisions`); a ``bind`` for a
   pair no pass proposed is accepted when both records exist and are unbound (a person knows better).
3. **Bind** the pairs a person confirmed and the open ones at or above ``match_auto_confidence`` (a contact only once
   its company is bound): :mod:`.binder`. A rejected pair is released: its SSM record is read again next extract.
4. **Hold** what still waits: the run's extracts leave those records out (:mod:`sage_sync.engine.holds`), so no
   duplicate is created on either side while a person has not decided.

A dry run proposes and reports, binds nothing and remembers nothing (every proposed record is held, so the plan
shows no duplicate either). The step stages ``match.json`` and ``proposals.csv`` (also written to the dossier's
``matching/`` folder, beside the ``decisions.csv`` a person fills in).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

from sage_sync.engine.holds import MATCH_FILE, Holds
from sage_sync.engine.sides import SageSide, SsmSide
from sage_sync.engine.snapshot import assemble, records
from sage_sync.engine.staging import Staging
from sage_sync.engine.state import StateStore
from sage_sync.location import Location, write_bytes_atomic
from sage_sync.mapping.registry import registry
from sage_sync.mapping.transforms import ValueLists
from sage_sync.onboarding.binder import BindOutcome, bind
from sage_sync.onboarding.decisions import Decision, proposals_csv, read_decisions
from sage_sync.onboarding.matcher import Proposal, match_accounts, match_contacts, match_products
from sage_sync.onboarding.store import WAITING, MatchStore, Stored

MATCHED = ("accounts", "contacts", "products")
PROPOSALS_CSV = "proposals.csv"
DECISIONS_CSV = "decisions.csv"


@dataclass(frozen=True)
class MatchSummary:
    """What the match step did (the task's XCom and the report's matching section)."""

    proposed: bool
    reason: str
    counts: dict[str, int] = field(default_factory=dict)
    held_sage: int = 0
    held_ssm: int = 0
    problems: tuple[str, ...] = ()
    threshold: float = 0.95

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        out = asdict(self)
        out["problems"] = list(self.problems)
        return out

    def sentence(self) -> str:
        """One line for the task log and the report."""
        parts = ", ".join(f"{n} {s}" for s, n in sorted(self.counts.items()) if n)
        held = (
            f"; held out of this run: {self.held_sage} Sage and {self.held_ssm} SSM record(s)"
            if self.held_sage or self.held_ssm
            else ""
        )
        return f"{self.reason}. Matches: {parts or 'none'}{held}."


@dataclass
class _Pass:
    """The working set of one match step: the remembered pairs as this step changes them, and its problems."""

    rows: dict[tuple[str, str, int], Stored]
    before: dict[tuple[str, str, int], Stored]
    problems: list[str] = field(default_factory=list)

    def newly(self, pair: tuple[str, str, int], status: str) -> bool:
        """True when ``pair`` has ``status`` now and did not have it before this step."""
        old = self.before.get(pair)
        return self.rows[pair].status == status and (old is None or old.status != status)

    def bound(self, entity: str, *, written: bool = False) -> tuple[set[str], set[int]]:
        """The Sage keys and SSM ids of ``entity`` that a bound pair holds (``written``: bound before this step)."""
        rows = self.before if written else self.rows
        pairs = [s.proposal for s in rows.values() if s.status == "bound" and s.proposal.entity == entity]
        return {p.sage_key for p in pairs}, {p.ssm_id for p in pairs}


def _unbound_sage(sage: SageSide, state: StateStore, entity: str) -> dict[str, dict[str, Any]]:
    """The Sage records of ``entity`` without a live SSM binding (canonical values by key)."""
    bound = set(state.live_ssm_ids(entity))
    current = records(assemble(entity, sage.read_snapshot(entity)), entity)
    return {k: v for k, v in current.items() if k not in bound}


def _unbound_ssm(ssm: SsmSide, state: StateStore, entity: str) -> list[dict[str, Any]]:
    """The live SSM records of ``entity`` without ``extId`` that no binding points at."""
    bound = set(state.live_ssm_ids(entity).values())
    endpoint = registry()[entity].endpoint
    return [
        r
        for r in ssm.list_changed(endpoint, None)
        if not r.get("extId") and not r.get("deleted") and int(r["id"]) not in bound
    ]


def propose(
    sage: SageSide, ssm: SsmSide, state: StateStore
) -> tuple[list[Proposal], dict[tuple[str, str], dict[str, Any]]]:
    """Every proposal of a matching pass, and the Sage records it looked at (by entity and key)."""
    accounts = _unbound_sage(sage, state, "accounts")
    found = match_accounts(accounts.values(), _unbound_ssm(ssm, state, "accounts"))
    companies = dict(state.live_ssm_ids("accounts"))
    companies.update({p.sage_key: p.ssm_id for p in found if p.status == "proposed"})
    contacts = _unbound_sage(sage, state, "contacts")
    found += match_contacts(contacts.values(), _unbound_ssm(ssm, state, "contacts"), companies)
    products = _unbound_sage(sage, state, "products")
    found += match_products(products.values(), _unbound_ssm(ssm, state, "products"))
    seen = {("accounts", k): v for k, v in accounts.items()}
    return found, seen


def _standing(ssm: SsmSide, work: _Pass) -> None:
    """Supersede waiting pairs whose SSM record went away or got an extId some other way (nothing to decide)."""
    for entity in MATCHED:
        waiting = [s for s in work.rows.values() if s.waiting and s.proposal.entity == entity]
        if not waiting:
            continue
        ids = sorted({s.proposal.ssm_id for s in waiting})
        found = {int(r["id"]): r for r in ssm.get_by_ids(registry()[entity].endpoint, ids)}
        for s in waiting:
            rec = found.get(s.proposal.ssm_id)
            why = None
            if rec is None or rec.get("deleted"):
                why = f"SSM record {s.proposal.ssm_id} is gone"
            elif rec.get("extId"):
                why = f"SSM record {s.proposal.ssm_id} now carries extId {rec.get('extId')}"
            if why is not None:
                work.rows[s.proposal.pair] = replace(s, status="superseded", decided_by=why)


def _manual(d: Decision, sage: SageSide, ssm: SsmSide, state: StateStore) -> tuple[Proposal | None, str]:
    """A pair a person named that no pass proposed: accepted when both records exist and are unbound."""
    where = f"{DECISIONS_CSV} line {d.line}"
    if d.decision != "bind":
        return None, f"{where}: {d.sage_key} / {d.ssm_id} was never proposed; only `bind` can name a new pair"
    if d.sage_key not in _unbound_sage(sage, state, d.entity):
        return None, f"{where}: Sage {d.entity} {d.sage_key} does not exist or is already bound"
    found = ssm.get_by_ids(registry()[d.entity].endpoint, [d.ssm_id])
    if not found or found[0].get("deleted") or found[0].get("extId"):
        return None, f"{where}: SSM record {d.ssm_id} does not exist, is deleted or already has an extId"
    rec = found[0]
    label = " ".join(str(rec.get(n) or "") for n in ("name", "model", "firstName", "lastName")).strip()
    account = rec.get("accountId")
    parent = None
    if d.entity == "contacts":
        parent = (
            f"{d.sage_key.rpartition('/')[0]}|{account.get('id') if isinstance(account, dict) else account}"
        )
    evidence = f"named by a person in {DECISIONS_CSV} (line {d.line})"
    return Proposal(d.entity, d.sage_key, d.ssm_id, 1.0, evidence, "proposed", d.sage_key, label, parent), ""


def _decide(
    work: _Pass, decisions: list[Decision], sage: SageSide, ssm: SsmSide, state: StateStore
) -> list[Proposal]:
    """Apply a person's decisions to the waiting pairs (a decided pair keeps its decision); returns new pairs."""
    manual: list[Proposal] = []
    for d in decisions:
        current = work.rows.get(d.pair)
        if current is None:
            proposal, problem = _manual(d, sage, ssm, state)
            if proposal is None:
                work.problems.append(problem)
                continue
            manual.append(proposal)
            current = Stored(proposal, "open")
        if current.waiting:
            work.rows[d.pair] = replace(current, status=d.status, decided_by=f"{DECISIONS_CSV} line {d.line}")
        elif current.status != d.status:
            work.problems.append(
                f"{DECISIONS_CSV} line {d.line}: {d.sage_key} / {d.ssm_id} is already {current.status} "
                f"({current.decided_by}); a decided pair is not changed"
            )
    return manual


def _company_status(work: _Pass, proposal: Proposal) -> str:
    """Where the company pair a contact proposal hangs off stands ("bound" for entities without a parent)."""
    if proposal.parent is None:
        return "bound"
    code, _, ssm_id = proposal.parent.partition("|")
    company = work.rows.get(("accounts", code, int(ssm_id))) if ssm_id.isdigit() else None
    return company.status if company is not None else "superseded"


def _to_bind(work: _Pass, entity: str, threshold: float) -> list[Stored]:
    """The pairs of ``entity`` to bind now: confirmed by a person, or open and sure, whose company is bound.

    One record is bound to one record only: a sure pair whose Sage key or SSM record another pair holds becomes
    ambiguous (a person decides), and a person's ``bind`` of a record already bound is refused and reported.
    """
    keys, ids = work.bound(entity)
    written_keys, written_ids = work.bound(entity, written=True)
    out: list[Stored] = []
    for s in sorted(
        (s for s in work.rows.values() if s.proposal.entity == entity), key=lambda s: s.proposal.pair
    ):
        p = s.proposal
        confirmed = work.newly(p.pair, "bound")
        sure = s.status == "open" and p.status == "proposed" and p.confidence >= threshold
        company = _company_status(work, p)
        if not (confirmed or sure):
            continue
        if company not in ("bound", *WAITING):
            work.rows[p.pair] = replace(s, status="superseded", decided_by=f"its company pair is {company}")
        elif confirmed and (p.sage_key in written_keys or p.ssm_id in written_ids):
            work.problems.append(f"{s.decided_by}: {p.sage_key} / {p.ssm_id}: one of them is already bound")
            work.rows[p.pair] = work.before.get(p.pair) or replace(s, status="ambiguous", decided_by=None)
        elif sure and (p.sage_key in keys or p.ssm_id in ids):
            work.rows[p.pair] = replace(s, status="ambiguous", decided_by=None)
        elif company == "bound":
            by = s.decided_by if confirmed else f"confidence {p.confidence:.2f} >= {threshold:.2f}"
            out.append(replace(s, status="bound", decided_by=by))
            keys.add(p.sage_key)
            ids.add(p.ssm_id)
    return out


class _Needs:
    """What binding needs, read only when something is bound: the accounts' Sage rows, the value lists."""

    def __init__(
        self,
        sage: SageSide,
        state: StateStore,
        staging: Staging,
        ssm: SsmSide,
        seen: dict[tuple[str, str], dict[str, Any]],
    ) -> None:
        self.sage, self.state, self.staging, self.ssm, self.seen = sage, state, staging, ssm, seen
        self._lists: ValueLists | None = None

    def sage_rows(self, entity: str) -> dict[tuple[str, str], dict[str, Any]]:
        """The unbound Sage rows of ``entity`` (a customer's company becomes read-only, a prospect's does not)."""
        if entity == "accounts" and not self.seen:
            self.seen = {("accounts", k): v for k, v in _unbound_sage(self.sage, self.state, entity).items()}
        return self.seen

    def lists(self) -> ValueLists:
        """The tenant's value lists: staged by the preflight when it ran, else read once."""
        if self._lists is None:
            staged = self.staging.read_json_or_none(None, "value_lists.json")
            self._lists = ValueLists.from_dict(staged) if staged else self.ssm.value_lists()
        return self._lists


def _bind_all(work: _Pass, ssm: SsmSide, needs: _Needs, threshold: float, dry_run: bool) -> None:
    """Bind what :func:`_to_bind` picks, companies first; a dry run only says what it would bind."""
    for entity in MATCHED:
        wanted = _to_bind(work, entity, threshold)
        if not wanted:
            continue
        outcome = BindOutcome(bound=[s.proposal.pair for s in wanted])
        if not dry_run:
            outcome = bind(ssm, [s.proposal for s in wanted], needs.sage_rows(entity), needs.lists())
        for s in wanted:
            pair = s.proposal.pair
            if pair in outcome.bound:
                work.rows[pair] = s
            elif pair in outcome.superseded:
                work.rows[pair] = replace(s, status="superseded", decided_by=outcome.superseded[pair])
            else:
                work.problems.append(
                    f"{pair[0]} {pair[1]} / SSM {pair[2]}: not bound, tried again next run: {outcome.failed.get(pair)}"
                )
                work.rows[pair] = work.before.get(pair) or replace(s, status="open", decided_by=None)


def _holds(work: _Pass, dry_run: bool) -> Holds:
    """What the run's extracts leave out: both records of a waiting pair, the SSM record kept in SSM only.

    A record a bound pair holds is never held (it is adopted). A dry run wrote nothing, so the pairs it would have
    bound are held too: its plan shows no duplicate either.
    """
    sage: dict[str, set[str]] = {}
    ssm: dict[str, set[int]] = {}
    for entity in MATCHED:
        keys, ids = work.bound(entity, written=dry_run)
        for s in work.rows.values():
            p = s.proposal
            if p.entity != entity:
                continue
            held = s.waiting or (dry_run and work.newly(p.pair, "bound"))
            if held and p.sage_key not in keys:
                sage.setdefault(entity, set()).add(p.sage_key)
            if (held or s.status == "ssm_only") and p.ssm_id not in ids:
                ssm.setdefault(entity, set()).add(p.ssm_id)
    return Holds({e: frozenset(k) for e, k in sage.items()}, {e: frozenset(i) for e, i in ssm.items()})


def _remember(
    store: MatchStore,
    state: StateStore,
    work: _Pass,
    proposals: list[Proposal] | None,
    manual: list[Proposal],
) -> None:
    """Store the pass and the decisions; release the SSM records of rejected and superseded pairs."""
    if proposals is not None:
        store.refresh(proposals, MATCHED)
    for p in manual:
        store.add_manual(p)
    released: set[tuple[str, int]] = set()
    for pair, s in work.rows.items():
        old = work.before.get(pair)
        if old is not None and old.status == s.status:
            continue
        if s.status in WAITING and (old is None or old.waiting):
            continue  # stored as waiting by the refresh
        store.decide(pair, s.status, s.decided_by or "")
        if s.status in ("rejected", "superseded"):
            released.add((pair[0], pair[2]))
    for entity, ssm_id in sorted(released):
        # The watermark may have passed the record while it was held: the next extract reads it by id.
        state.set_pending(entity, ssm_id, "O1", "first-sync match released: synced on its own")


def _write(
    staging: Staging, folder: Location, summary: MatchSummary, work: _Pass, held: Holds, dry_run: bool
) -> None:
    """Stage ``match.json`` and ``proposals.csv``; refresh the dossier's ``matching/proposals.csv``."""
    listed = [s.to_dict() for s in sorted(work.rows.values(), key=lambda s: s.proposal.pair)]
    staging.write_json(
        None,
        MATCH_FILE,
        {"summary": summary.to_dict(), "dry_run": dry_run, "rows": listed, "held": held.to_dict()},
    )
    if not listed:
        return
    text = proposals_csv(listed)
    with staging.path(None, PROPOSALS_CSV).open("w") as fh:
        fh.write(text)
    write_bytes_atomic(folder / PROPOSALS_CSV, text.encode("utf-8"))


def match(
    run_id: str,
    staging: Staging,
    sage: SageSide,
    ssm: SsmSide,
    state: StateStore,
    *,
    folder: Location,
    threshold: float = 0.95,
    dry_run: bool = False,
    requested: bool = False,
) -> MatchSummary:
    """Run the match step (see the module docstring); ``folder`` is the dossier's ``matching/`` folder."""
    store = MatchStore(state)
    store.migrate()
    before = {s.proposal.pair: s for s in store.all()}
    work = _Pass(dict(before), before)
    seen: dict[tuple[str, str], dict[str, Any]] = {}
    proposals: list[Proposal] | None = None
    passing = requested or (not store.has_run() and not state.live_ssm_ids("accounts"))
    if passing:
        reason = (
            "matching asked for"
            if requested
            else "first sync of this dossier: SSM records without extId matched"
        )
        proposals, seen = propose(sage, ssm, state)
        fresh = {p.pair for p in proposals}
        for p in proposals:
            old = work.rows.get(p.pair)
            if old is None or old.waiting:
                work.rows[p.pair] = Stored(p, "open" if p.status == "proposed" else "ambiguous")
        for pair, old in before.items():
            if old.waiting and pair not in fresh:
                work.rows[pair] = replace(old, status="superseded", decided_by="a new matching pass")
    else:
        waiting = sum(1 for s in before.values() if s.waiting)
        reason = (
            f"no new matching pass ({waiting} pair(s) wait for a decision)"
            if waiting
            else "no matching needed"
        )
        _standing(ssm, work)
    decisions, work.problems = read_decisions(folder / DECISIONS_CSV)
    manual = _decide(work, decisions, sage, ssm, state)
    _bind_all(work, ssm, _Needs(sage, state, staging, ssm, seen), threshold, dry_run)
    if not dry_run:
        _remember(store, state, work, proposals, manual)
        if passing:
            store.record_run(
                run_id, len(proposals or []), sum(1 for s in work.rows.values() if s.status == "bound")
            )
    held = _holds(work, dry_run)
    counts: dict[str, int] = {}
    for s in work.rows.values():
        counts[s.status] = counts.get(s.status, 0) + 1
    summary = MatchSummary(
        proposed=passing,
        reason=reason,
        counts=counts,
        held_sage=sum(len(v) for v in held.sage.values()),
        held_ssm=sum(len(v) for v in held.ssm.values()),
        problems=tuple(work.problems),
        threshold=threshold,
    )
    _write(staging, folder, summary, work, held, dry_run)
    return summary
