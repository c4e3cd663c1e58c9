"""Step 1, extract: read the entity's Sage snapshot and its SSM changes, and stage them with the state's view.

The Sage snapshot is read whole (ODBC) and diffed against the committed snapshot; SSM is read since the watermark
(by ``dateUpdated``, ``overlap_seconds`` early against clock skew), plus the records the state still waits for.
Unbound Sage keys are looked up by ``extId`` (C1 adoption), and C4/K1 keys are reserved (except in a dry run).
``full_reconcile`` reads every SSM record and bases the plan on the live records (:mod:`~sage_sync.engine.reconcile`).

Rows whose key is missing or shared are set aside (:mod:`~sage_sync.engine.bad_keys`): the validate step quarantines
them with their reason and the rest of the entity goes on. Stages ``sage.parquet`` (the assembled snapshot; an
entity's lines in ``lines.parquet``), ``extract_input.jsonl`` (the plan input, read by the validate step only) and
``extract.json`` (what the later steps and the report read: the keys set aside, the state token, the API calls,
the start time, the change counts and the ``dateUpdated`` of each SSM record read).
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

import pandas as pd

from sage_sync.engine.bad_keys import set_aside
from sage_sync.engine.bindings import Binding, BindingScope, Parent, Status
from sage_sync.engine.codec import ssm_scalar
from sage_sync.engine.heap import return_freed_memory
from sage_sync.engine.holds import MATCH_FILE, Holds, apply_holds
from sage_sync.engine.inputs import PlanInput
from sage_sync.engine.own_creates import CreatedRange, OwnCreates, settled, user_id
from sage_sync.engine.pipeline.context import StepContext
from sage_sync.engine.pipeline.lease_step import hold
from sage_sync.engine.reconcile import reconcile_live, reconcile_summary
from sage_sync.engine.resume import take_sage_as_master
from sage_sync.engine.rules import RULES
from sage_sync.engine.sides import SageSide, SsmSide
from sage_sync.engine.snapshot import (
    KEY,
    SageChanges,
    SageLines,
    assemble,
    assemble_with_lines,
    records,
    sage_changes,
)
from sage_sync.engine.staging import EXTRACTED_INPUT
from sage_sync.engine.state import StateStore, now_iso
from sage_sync.mapping.transforms import ValueLists


@dataclass(frozen=True)
class ExtractSummary:
    """What the extract read (the task's XCom)."""

    entity: str
    sage_rows: int
    bad_keys: int
    created: int
    updated: int
    deleted: int
    unchanged: int
    ssm_records: int
    api_calls: int
    full_reconcile: dict[str, int] | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


class StateReservations:
    """C4/K1 keys held by the state store; a dry run only shows the keys a real run would reserve."""

    def __init__(self, state: StateStore, entity: str, *, dry_run: bool) -> None:
        """Reserve in ``state`` for ``entity``, or only pretend to when ``dry_run``."""
        self.state, self.entity, self.dry_run = state, entity, dry_run

    def reserve(self, ssm_id: int, key: str) -> str:
        """Hold ``key`` for SSM record ``ssm_id`` (an earlier reservation wins)."""
        return key if self.dry_run else self.state.reserve(self.entity, ssm_id, key)

    def next_number(self, counter: str, *, after: int) -> int:
        """The next value of ``counter`` (a dry run counts on from ``after`` without touching the state)."""
        return after + 1 if self.dry_run else self.state.next_sequence(counter)


#: The staged plan input of the extract (large: every record of a two-way entity), read by the validate step only.


def seen_dates(inp: PlanInput) -> dict[int, str]:
    """SSM id -> ``dateUpdated`` of every SSM record the extract read (remembered at commit for echo detection)."""
    return {int(r["id"]): str(r["dateUpdated"]) for r in inp.ssm if r.get("dateUpdated")}


def _own_creates(
    ssm: SsmSide, endpoint: str, ranges: list[CreatedRange], since: str | None
) -> tuple[OwnCreates | None, list[CreatedRange]]:
    """What the SSM read skips of our own creates (None: nothing), and the ranges to keep (``settled``).

    One read of the newest range's first record and of the last record of each range without ``until``: the first
    one's creator is the integration's user, the last ones' ``dateCreated`` gives ``until``. Nothing is skipped
    when there is no range or the first record cannot be read.
    """
    if not ranges:
        return None, []
    newest = ranges[-1]
    wanted = {newest.lo} | {r.hi for r in ranges if r.until is None}
    found = {int(r["id"]): r for r in ssm.get_by_ids(endpoint, sorted(wanted))}
    created = {i: str(r["dateCreated"]) for i, r in found.items() if r.get("dateCreated")}
    kept = settled(ranges, created, since)
    user = user_id(found[newest.lo].get("salesRepIdCreated")) if newest.lo in found else None
    return (None if user is None or not kept else OwnCreates(user, tuple(kept))), kept


def value_lists(ctx: StepContext, ssm: SsmSide) -> ValueLists:
    """The SSM value lists, read once per run and shared by the entities' extract steps (fewer API reads)."""
    if ctx.staging.has(None, "value_lists.json"):
        return ValueLists.from_dict(ctx.staging.read_json(None, "value_lists.json"))
    lists = ssm.value_lists()
    ctx.staging.write_json(None, "value_lists.json", lists.to_dict())
    return lists


def _since(watermark: str | None, overlap_seconds: int) -> str | None:
    """The ``dateUpdated`` lower bound of the next SSM read: the watermark minus the overlap margin."""
    if watermark is None:
        return None
    moment = datetime.fromisoformat(watermark.replace("Z", "+00:00")) - timedelta(seconds=overlap_seconds)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _parents(ctx: StepContext, sage: SageSide, state: StateStore) -> dict[str, Parent]:
    """The accounts as contacts and invoices see them: as last committed (after this run's accounts step).

    A contact or an invoice only goes to SSM under an account both sides agree on. A dry run committed nothing,
    so it shows what a real run would do: the accounts Sage has now.
    """
    prospect = state.snapshot_field("accounts", "is_prospect")
    if ctx.flags.dry_run:
        if ctx.staging.has("accounts", "sage.parquet"):
            frame = ctx.staging.read_frame("accounts", "sage.parquet")
        else:
            frame = assemble("accounts", sage.read_snapshot("accounts"))
        prospect.update({code: rec.get("is_prospect") for code, rec in records(frame, "accounts").items()})
    binds = state.binding_states("accounts")
    planned = _planned_creations(ctx, "accounts")
    out: dict[str, Parent] = {}
    for code, is_prospect in prospect.items():
        if code not in binds and code in planned:
            out[code] = Parent(planned[code], is_prospect, True)
            continue
        ssm_id, live = binds.get(code, (None, False))
        out[code] = Parent(ssm_id, is_prospect, live)
    return out


def _planned_creations(ctx: StepContext, entity: str) -> dict[str, int]:
    """G8: in a dry run, the records ``entity``'s plan creates in SSM, each with a stand-in id (negative).

    Nothing was created, yet a real run would create them before their dependants: with these ids the dependants
    are planned as the real run would plan them, instead of waiting for records that do not exist yet.
    """
    if not ctx.flags.dry_run or not ctx.staging.has_plan(entity):
        return {}
    ops = ctx.staging.read_plan(entity, commits=False).ops
    keys = [op.key for op in ops if op.kind == "ssm_create"]
    return {key: -(n + 1) for n, key in enumerate(keys)}


def _bound_twins(inp: PlanInput) -> list[int]:
    """The bound SSM ids of keys that another live SSM record read this run also carries as ``extId`` (C1)."""
    bound = {int(b.ssm_id) for b in inp.bindings.values() if b.ssm_id is not None}
    out = set()
    for rec in inp.ssm:
        ext = rec.get("extId")
        binding = inp.live_binding(str(ext)) if ext else None
        if binding is not None and int(rec["id"]) not in bound and not rec.get("deleted"):
            out.add(int(binding.ssm_id or 0))
    return sorted(out)


def _all_bindings(ctx: StepContext) -> bool:
    """Whether the planner may read any binding of the entity (else only those :func:`_bindings` selects).

    A two-way entity's SSM records pair with any key; a full reconcile and a run taking Sage as master look at
    every binding; an entity whose input is not narrowed reads them all.
    """
    flags = ctx.flags
    return (
        ctx.entity.two_way or flags.full_reconcile or flags.sage_master or RULES[ctx.name].read_beyond is None
    )


def _bindings(ctx: StepContext, state: StateStore, changes: SageChanges) -> dict[str, Binding]:
    """The bindings the extract and the planner read: all (:func:`_all_bindings`), or a one-way entity's few.

    Those of the created, updated and deleted keys and the failed creates (G5 orphans); the extract adds those of
    the invoices with a line binding loaded (a line to link, I1). Not the 235,000 of an unchanged ``large``
    dossier (ADR 0018).
    """
    if _all_bindings(ctx):
        return state.bindings(ctx.name)
    keys = frozenset([*changes.created, *changes.updated, *changes.deleted])
    return state.bindings(ctx.name, scope=BindingScope(keys=keys, failed_creates=True))


def read_plan_input(
    ctx: StepContext,
    frame: pd.DataFrame,
    sage: SageSide,
    ssm: SsmSide,
    state: StateStore,
    lists: ValueLists,
    shared: frozenset[str] = frozenset(),
    lines: SageLines | None = None,
) -> PlanInput:
    """Everything the entity's planner needs: the Sage changes, the SSM changes, the state's bindings.

    ``shared`` are keys two Sage rows hold (set aside): their committed records are neither updated nor deleted.
    ``lines`` (an entity with lines) are read by line id while the input is made; the records given their lines
    here are those a full reconcile compares (all of them) and those with a loaded line binding (a line to link).
    The others get theirs when staged (:meth:`~sage_sync.engine.staging.Staging.write_input`), a part at a time:
    a first load's million lines are never records all at once (ADR 0018).
    """
    spec, entity = ctx.entity, ctx.name
    committed = state.committed(entity)
    changes = sage_changes(entity, frame, committed)
    for key in shared:
        changes.deleted.pop(key, None)
    inp = PlanInput(
        entity=entity,
        run_at=now_iso(),
        lists=lists,
        sage=changes.records,
        created=changes.created,
        updated=changes.updated,
        deleted=changes.deleted,
        unchanged=changes.unchanged,
        previous_size=len(committed),
        bindings=_bindings(ctx, state, changes),
        reserved={str(k): v for k, v in state.reserved(entity).items()},
        quarantined=state.quarantined(entity),
    )
    beyond = None if ctx.flags.full_reconcile else RULES[entity].read_beyond
    if lines is not None and beyond is None:
        lines.attach(inp.sage)
    if spec.two_way:
        watermark = None if ctx.flags.full_reconcile else state.watermark(entity)
        since = _since(watermark, ctx.config.overlap_seconds)
        ranges = state.own_creates(entity)
        skip, kept = _own_creates(ssm, spec.endpoint, ranges, since)
        listed = ssm.list_changed(spec.endpoint, since, None if ctx.flags.full_reconcile else skip)
        if kept != ranges and not ctx.flags.dry_run:
            state.set_own_creates(entity, kept)
        have = {int(r["id"]) for r in listed}
        bound_codes = {k for k, b in inp.bindings.items() if b.ssm_id is not None and b.status == "ok"}
        wanted = set(state.pending(entity)) | {
            int(i) for i, code in inp.reserved.items() if code not in bound_codes
        }
        extra = sorted(wanted - have)
        inp.ssm = listed + (ssm.get_by_ids(spec.endpoint, extra) if extra else [])
    if "accounts" in spec.depends_on:
        inp.parents = _parents(ctx, sage, state)
    if "products" in spec.depends_on:
        inp.products = {**_planned_creations(ctx, "products"), **state.live_ssm_ids("products")}
    if spec.lines is not None and spec.lines_entity is not None:
        read_lines = RULES[entity].read_lines
        if ctx.flags.full_reconcile or read_lines is None or lines is None:
            inp.line_bindings = state.bindings(spec.lines_entity)
        else:
            scope, keep = read_lines(inp, lines)
            inp.line_bindings = state.bindings(spec.lines_entity, keep, scope)
        if lines is not None:
            pieces = {str(b.base[lines.join]) for b in inp.line_bindings.values() if b.base.get(lines.join)}
            lines.attach(inp.sage, pieces)
            if not _all_bindings(ctx) and pieces - set(inp.bindings):
                missing = frozenset(pieces - set(inp.bindings))
                inp.bindings.update(state.bindings(entity, scope=BindingScope(keys=missing)))
        unbound_lines = [
            line_id
            for line_id in (
                lines.line_ids(inp.sage, [*inp.created, *inp.updated]) if lines is not None else []
            )
            if (lb := inp.line_bindings.get(line_id)) is None or lb.ssm_id is None
        ]
        if unbound_lines:
            found_lines = ssm.find_by_ext_ids(spec.lines.endpoint, unbound_lines)
            inp.lines_by_ext = {str(r["extId"]): r for r in found_lines if not r.get("deleted")}
    if spec.two_way:
        twins = _bound_twins(inp)
        if twins:
            inp.creators = {
                int(r["id"]): ssm_scalar(r.get("salesRepIdCreated"))
                for r in ssm.get_by_ids(spec.endpoint, twins)
            }
    # G5: a create whose response was lost may have applied; if Sage deleted the record since, its SSM twin must go.
    # A key reserved for an SSM record (C4, K1) whose Sage insert failed is no such create: it is inserted again.
    reserved_keys = set(inp.reserved.values())
    inp.orphans = sorted(
        k
        for k, b in inp.bindings.items()
        if b.ssm_id is None
        and b.status == Status.FAILED
        and k not in inp.sage
        and k not in inp.deleted
        and k not in reserved_keys
    )
    wait = RULES[entity].waiting
    waiting = wait(inp) if wait is not None else set()
    unbound = [
        k
        for k in [*inp.created, *inp.updated, *inp.orphans]
        if inp.live_binding(k) is None and k not in waiting
    ]
    if unbound:
        found = ssm.find_by_ext_ids(spec.endpoint, unbound)
        inp.ssm_by_ext = {str(r["extId"]): r for r in found if not r.get("deleted")}
    # O1: records a first-sync match holds until a person decides are neither created nor given a code.
    apply_holds(inp, Holds.from_dict((ctx.staging.read_json_or_none(None, MATCH_FILE) or {}).get("held")))
    reserve = RULES[entity].reserve
    # An empty read of a dossier that had rows is a broken read (G4): no Sage key is reserved on it.
    if reserve is not None and (inp.sage_size or not inp.previous_size):
        reserve(inp, StateReservations(state, entity, dry_run=ctx.flags.dry_run), ctx.config)
    if ctx.flags.full_reconcile:
        reconcile_live(inp, ssm)
    if ctx.flags.sage_master:
        take_sage_as_master(inp)  # M3: the first run back after the dossier was switched off
    if beyond is not None:
        inp.narrow(beyond(inp), lines)  # unchanged records are neither staged nor read again (ADR 0018)
    return inp


def extract(ctx: StepContext, sage: SageSide, ssm: SsmSide, state: StateStore) -> ExtractSummary:
    """Read both sides for the entity, stage the snapshot and the plan input; return what was read."""
    started = time.time()
    hold(ctx.run_id, state, ctx.flags)  # the extract reserves C4/K1 keys: a write to the state
    calls_before = ssm.api_calls()
    token = state.token(ctx.name)
    lists = value_lists(ctx, ssm)

    def picture_hash(path: str) -> str | None:
        content = sage.read_picture(path)
        return hashlib.sha256(content).hexdigest() if content is not None else None

    frames = sage.read_snapshot(ctx.name)
    return_freed_memory()  # the read's buffers (half a gigabyte for a million invoice lines)
    assembled, sage_lines = assemble_with_lines(ctx.name, frames, picture_hash)
    frame, bad = set_aside(ctx.entity, assembled)
    inp = read_plan_input(ctx, frame, sage, ssm, state, lists, bad.shared, sage_lines)
    ctx.staging.write_frame(ctx.name, "sage.parquet", frame)
    lines = ctx.entity.lines
    if lines is not None and lines.source in frames:
        ctx.staging.write_frame(ctx.name, "lines.parquet", frames[lines.source])
    api_calls = ssm.api_calls() - calls_before
    ctx.staging.write_input(ctx.name, EXTRACTED_INPUT, inp, sage_lines)
    ctx.staging.write_json(
        ctx.name,
        "extract.json",
        {
            "bad_keys": bad.reasons,
            "token": token,
            "api_calls": api_calls,
            "started": started,
            "dry_run": ctx.flags.dry_run,
            "full_reconcile": ctx.flags.full_reconcile,
            "changes": {
                "created": len(inp.created),
                "updated": len(inp.updated),
                "deleted": len(inp.deleted),
            },
            "ssm_records_read": len(inp.ssm),
            "seen": seen_dates(inp),
        },
    )
    return ExtractSummary(
        entity=ctx.name,
        sage_rows=len(frame) + len(bad.reasons),
        bad_keys=len(bad.reasons),
        created=len(inp.created),
        updated=len(inp.updated),
        deleted=len(inp.deleted),
        unchanged=inp.unchanged,
        ssm_records=len(inp.ssm),
        api_calls=api_calls,
        full_reconcile=reconcile_summary(inp) if ctx.flags.full_reconcile else None,
    )


__all__ = [
    "KEY",
    "ExtractSummary",
    "StateReservations",
    "extract",
    "read_plan_input",
    "seen_dates",
    "value_lists",
]
