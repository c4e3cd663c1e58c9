"""One sync cycle: extract -> plan -> apply -> commit, per entity in dependency order.

Each step is a separate function with serialisable inputs and outputs (``PlanInput``, ``Plan``, ``ApplyResult``)
so the Airflow operators can call them one task at a time; :func:`run_once` chains them for the tests and the CLI.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sage_sync.engine.apply import ApplyResult, apply_plan, endpoint
from sage_sync.engine.commit import EntityCounts, commit_plan, count_plan
from sage_sync.engine.config import SyncConfig
from sage_sync.engine.inputs import PlanInput
from sage_sync.engine.plan import Plan
from sage_sync.engine.reconcile import reconcile_live, reconciled_unchanged
from sage_sync.engine.rules.accounts import plan_accounts
from sage_sync.engine.rules.contacts import contact_key, plan_contacts, split_key
from sage_sync.engine.rules.invoices import LINES, plan_invoices
from sage_sync.engine.rules.products import plan_products
from sage_sync.engine.sides import SageSide, SsmSide
from sage_sync.engine.snapshot import assemble, records, sage_changes
from sage_sync.engine.state import Binding, StateStore, now_iso
from sage_sync.mapping import transforms as tf

#: Dependency order: contacts and invoices need the account bindings, invoice lines the product bindings.
ORDER = ("accounts", "contacts", "products", "invoices")
TWO_WAY = ("accounts", "contacts")
#: Binding statuses whose SSM record is gone (a failed binding still points at a live record).
DEAD = ("deleted", "ssm_deleted")

PLANNERS = {
    "accounts": plan_accounts,
    "contacts": plan_contacts,
    "products": plan_products,
    "invoices": plan_invoices,
}


def _binding_dict(b: Binding) -> dict[str, Any]:
    return {
        "ssm_id": b.ssm_id,
        "synced": b.synced,
        "status": b.status,
        "ssm_date_updated": b.ssm_date_updated,
    }


def _since(watermark: str | None, overlap_seconds: int) -> str | None:
    """The ``dateUpdated`` lower bound of the next SSM read: the watermark minus the overlap margin."""
    if watermark is None:
        return None
    moment = datetime.fromisoformat(watermark.replace("Z", "+00:00")) - timedelta(seconds=overlap_seconds)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _parents(sage: dict[str, dict[str, Any]], state: StateStore) -> dict[str, dict[str, Any]]:
    binds = state.bindings("accounts")
    out: dict[str, dict[str, Any]] = {}
    for code, rec in sage.items():
        b = binds.get(code)
        live = b is not None and b.ssm_id is not None and b.status not in DEAD
        out[code] = {"ssm_id": b.ssm_id if b else None, "is_prospect": rec.get("is_prospect"), "live": live}
    return out


def _code(template: str, ssm_id: int, seq: int | None = None) -> str:
    return template.format(ssm_id=ssm_id) if "{ssm_id" in template else template.format(seq=seq)


def _reserve_accounts(inp: PlanInput, state: StateStore, config: SyncConfig, dry_run: bool) -> None:
    """C4: reserve a Sage code for each new Client/Prospect company of SSM, BEFORE any Sage insert."""
    bound = {b["ssm_id"] for b in inp.bindings.values() if b.get("ssm_id") is not None}
    taken = set(inp.sage) | set(inp.reserved.values())
    for rec in inp.ssm:
        rid = int(rec["id"])
        if rec.get("extId") or rec.get("deleted") or rid in bound or str(rid) in inp.reserved:
            continue
        status = rec.get("statusId")
        status = status.get("id") if isinstance(status, dict) else status
        if tf.status_from_ssm(status, inp.lists) is None:
            continue
        if "{ssm_id" in config.code_template:
            code = _code(config.code_template, rid)
            if code in taken:
                continue  # someone else holds this code: the plan defers the company and says so
        else:
            seq = state.next_sequence(f"accounts:{config.code_template}") if not dry_run else len(taken) + 1
            code = _code(config.code_template, rid, seq)
            while code in taken:
                seq = state.next_sequence(f"accounts:{config.code_template}") if not dry_run else seq + 1
                code = _code(config.code_template, rid, seq)
        held = code if dry_run else state.reserve("accounts", rid, code)
        inp.reserved[str(rid)] = held
        taken.add(held)


def _reserve_contacts(inp: PlanInput, state: StateStore, dry_run: bool) -> None:
    """K1: reserve the Sage key (account, next number) of each new SSM contact before the Sage insert."""
    bound = {b["ssm_id"] for b in inp.bindings.values() if b.get("ssm_id") is not None}
    by_ssm = {
        int(p["ssm_id"]): c for c, p in inp.parents.items() if p.get("ssm_id") is not None and p.get("live")
    }
    numbers: dict[str, int] = {}
    for key in [*inp.sage, *inp.reserved.values(), *inp.bindings]:
        code, number = split_key(key)
        numbers[code] = max(numbers.get(code, 0), number)
    for rec in inp.ssm:
        rid = int(rec["id"])
        if rec.get("extId") or rec.get("deleted") or rid in bound or str(rid) in inp.reserved:
            continue
        account = rec.get("accountId")
        account = account.get("id") if isinstance(account, dict) else account
        parent = by_ssm.get(int(account)) if account is not None else None
        if parent is None or inp.parents[parent].get("is_prospect") == 1:
            continue
        numbers[parent] = numbers.get(parent, 0) + 1
        key = contact_key(parent, numbers[parent])
        held = key if dry_run else state.reserve("contacts", rid, key)
        inp.reserved[str(rid)] = held


def extract(
    entity: str,
    sage: SageSide,
    ssm: SsmSide,
    state: StateStore,
    config: SyncConfig,
    *,
    lists: tf.ValueLists,
    run_at: str,
    dry_run: bool = False,
    full_reconcile: bool = False,
) -> PlanInput:
    """Read both sides and the state for ``entity``; reserve C4/K1 codes (unless ``dry_run``).

    ``full_reconcile`` compares both live sides instead of the last synced values, to repair drift made in SSM:
    every SSM record is read (no watermark) and every bound record joins the plan (see :mod:`.reconcile`).
    """

    def picture_hash(path: str) -> str | None:
        content = sage.read_picture(path)
        return hashlib.sha256(content).hexdigest() if content is not None else None

    frame = assemble(entity, sage.read_snapshot(entity), picture_hash)
    committed = state.snapshot(entity)
    changes = sage_changes(entity, frame, committed)
    bindings = {k: _binding_dict(b) for k, b in state.bindings(entity).items()}
    inp = PlanInput(
        entity=entity,
        run_at=run_at,
        lists=lists,
        sage=changes.records,
        created=changes.created,
        updated=changes.updated,
        deleted=changes.deleted,
        unchanged=changes.unchanged,
        previous_size=len(committed),
        bindings=bindings,
        reserved={str(k): v for k, v in state.reserved(entity).items()},
        quarantined=state.quarantined(entity),
    )
    point = endpoint(entity)
    if entity in TWO_WAY:
        watermark = None if full_reconcile else state.watermark(entity)
        listed = ssm.list_changed(point, _since(watermark, config.overlap_seconds))
        have = {int(r["id"]) for r in listed}
        bound_codes = {
            k for k, b in bindings.items() if b.get("ssm_id") is not None and b.get("status") == "ok"
        }
        wanted = set(state.pending(entity)) | {
            int(i) for i, code in inp.reserved.items() if code not in bound_codes
        }
        extra = sorted(wanted - have)
        inp.ssm = listed + (ssm.get_by_ids(point, extra) if extra else [])
    if entity in ("contacts", "invoices"):
        # The accounts as last confirmed (committed after this run's accounts step): a contact or an invoice
        # only goes to SSM under an account both sides agree on.
        accounts = {k: v for k, (_, v) in state.snapshot("accounts").items()}
        if dry_run:  # nothing was committed by this run's accounts step: show what a real run would do
            accounts.update(records(assemble("accounts", sage.read_snapshot("accounts")), "accounts"))
        inp.parents = _parents(accounts, state)
    if entity == "invoices":
        inp.products = {
            k: int(b.ssm_id)
            for k, b in state.bindings("products").items()
            if b.ssm_id and b.status not in DEAD
        }
        inp.line_bindings = {k: _binding_dict(b) for k, b in state.bindings(LINES).items()}
        unbound_lines = [
            str(line["line_id"])
            for k in [*inp.created, *inp.updated]
            for line in inp.sage.get(k, {}).get("lines") or []
            if (inp.line_bindings.get(str(line["line_id"])) or {}).get("ssm_id") is None
        ]
        if unbound_lines:
            found_lines = ssm.find_by_ext_ids("salesordersLines", unbound_lines)
            inp.lines_by_ext = {str(r["extId"]): r for r in found_lines if not r.get("deleted")}
    unbound = [k for k in [*inp.created, *inp.updated] if inp.live_binding(k) is None]
    if unbound:
        found = ssm.find_by_ext_ids(point, unbound)
        inp.ssm_by_ext = {str(r["extId"]): r for r in found if not r.get("deleted")}
    if entity == "accounts":
        _reserve_accounts(inp, state, config, dry_run)
    elif entity == "contacts":
        _reserve_contacts(inp, state, dry_run)
    if full_reconcile:
        reconcile_live(inp, ssm)
    return inp


def plan_entity(inp: PlanInput, config: SyncConfig) -> Plan:
    """The plan of one entity (pure: no I/O)."""
    plan = PLANNERS[inp.entity](inp, config)
    if inp.entity in TWO_WAY:
        plan.unchanged += reconciled_unchanged(inp, plan)
    return plan


def known_ids(plan: Plan, state: StateStore) -> dict[str, int]:
    """SSM ids the plan's references point at (``"entity|key"`` -> id), from the bindings."""
    wanted = {ref[0] for op in plan.ops for ref in op.refs.values() if ref[0] != "productFamilies"}
    out: dict[str, int] = {}
    for entity in wanted:
        for key, b in state.bindings(entity).items():
            if b.ssm_id is not None and b.status not in DEAD:
                out[f"{entity}|{key}"] = int(b.ssm_id)
    return out


@dataclass
class RunResult:
    """What one run did: counts per entity, API calls, duration, the plans (G7, G8)."""

    run_id: str
    dry_run: bool
    counts: dict[str, EntityCounts] = field(default_factory=dict)
    plans: dict[str, Plan] = field(default_factory=dict)
    api_calls: int = 0
    duration_s: float = 0.0
    guards: dict[str, str] = field(default_factory=dict)

    @property
    def planned_ops(self) -> int:
        """How many writes the run planned over all entities."""
        return sum(len(p.ops) for p in self.plans.values())

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (without the plans)."""
        return {
            "run_id": self.run_id,
            "dry_run": self.dry_run,
            "counts": {k: asdict(v) for k, v in self.counts.items()},
            "api_calls": self.api_calls,
            "duration_s": self.duration_s,
            "guards": self.guards,
        }

    def render(self) -> str:
        """Every plan as a table (the dry-run report)."""
        return "\n\n".join(p.render() for p in self.plans.values())


def run_once(
    sage: SageSide,
    ssm: SsmSide,
    state: StateStore,
    config: SyncConfig | None = None,
    *,
    dry_run: bool = False,
    full_reconcile: bool = False,
    entities: tuple[str, ...] = ORDER,
) -> RunResult:
    """Run one sync cycle for ``entities`` in dependency order; ``dry_run`` plans and writes nothing (G8).

    ``full_reconcile`` compares both live sides instead of the last synced values (drift repair, see
    :mod:`.reconcile`).
    """
    config = config or SyncConfig()
    run_id = uuid.uuid4().hex[:16]
    started = time.monotonic()
    calls_before = ssm.api_calls()
    if not dry_run:
        state.start_run(run_id, dry_run)
    result = RunResult(run_id, dry_run)
    lists = ssm.value_lists()
    run_at = now_iso()
    for entity in entities:
        t0, c0 = time.monotonic(), ssm.api_calls()
        inp = extract(
            entity,
            sage,
            ssm,
            state,
            config,
            lists=lists,
            run_at=run_at,
            dry_run=dry_run,
            full_reconcile=full_reconcile,
        )
        plan = plan_entity(inp, config)
        result.plans[entity] = plan
        if plan.guard:
            result.guards[entity] = plan.guard
        if dry_run:
            result.counts[entity] = count_plan(plan, None)
            continue
        applied = apply_plan(plan, sage, ssm, known_ids(plan, state))
        committed = commit_plan(plan, applied, state, run_id, seen_dates(inp))
        advance_watermark(inp, state)
        counts = committed.counts
        counts.api_calls = ssm.api_calls() - c0
        result.counts[entity] = counts
        state.record_entity(run_id, entity, counts.to_dict(), counts.api_calls, time.monotonic() - t0)
    result.api_calls = ssm.api_calls() - calls_before
    result.duration_s = time.monotonic() - started
    if not dry_run:
        state.finish_run(run_id, "success", result.api_calls, result.duration_s)
    return result


def seen_dates(inp: PlanInput) -> dict[int, str]:
    """SSM id -> ``dateUpdated`` of every SSM record the extract read (remembered at commit for echo detection)."""
    return {int(r["id"]): str(r["dateUpdated"]) for r in inp.ssm if r.get("dateUpdated")}


def advance_watermark(inp: PlanInput, state: StateStore) -> None:
    """After the commit: the next incremental SSM read starts at the newest ``dateUpdated`` read (minus overlap).

    Records the run could not finish are on the pending list, so moving past them loses nothing.
    """
    seen = seen_dates(inp)
    if inp.entity in TWO_WAY and seen:
        state.set_watermark(inp.entity, max(seen.values()))


def apply_and_commit(
    inp: PlanInput, plan: Plan, sage: SageSide, ssm: SsmSide, state: StateStore, run_id: str
) -> ApplyResult:
    """The load and commit steps of one entity, for an orchestrator that extracted and planned in earlier tasks."""
    applied = apply_plan(plan, sage, ssm, known_ids(plan, state))
    commit_plan(plan, applied, state, run_id, seen_dates(inp))
    advance_watermark(inp, state)
    return applied
