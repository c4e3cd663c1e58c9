"""Helpers shared by the per-entity rule functions."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Literal, Protocol

from sage_sync.engine.bindings import Binding, Pairs, Record
from sage_sync.engine.codec import Spec, check_sage_value, ssm_scalar
from sage_sync.engine.config import SyncConfig
from sage_sync.engine.inputs import PlanInput
from sage_sync.engine.plan import Commit, Note, Op, Plan


class Reservations(Protocol):
    """Sage keys reserved for records created in SSM (C4, K1), held by the state store before any Sage insert."""

    def reserve(self, ssm_id: int, key: str) -> str:
        """Reserve ``key`` for SSM record ``ssm_id``; returns the key held for it (an earlier one wins)."""
        ...

    def next_number(self, counter: str, *, after: int) -> int:
        """The next value of ``counter`` for a ``{seq}`` code template (``after``: the last one tried)."""
        ...


def deletion_set(keys: Iterable[str]) -> str:
    """A short fingerprint of a set of deleted keys: an approval names exactly the set it approves (G4, A1)."""
    return hashlib.sha1("\n".join(sorted(keys)).encode()).hexdigest()[:12]


def guard_deletions(inp: PlanInput, config: SyncConfig, plan: Plan) -> bool:
    """G4: True when the entity's deletions may go ahead; otherwise sets ``plan.guard`` and returns False.

    Only deletions are withheld: creations and updates are planned whatever the guard says. A withheld set may be
    approved for one run (A1): by its size (``approve_deletions: {entity: count}`` in the run's conf) or by its
    fingerprint (``plan.withheld_set``); the approval holds only while the set is the one approved, since it is
    compared with this run's deletions.
    """
    guard = config.guard(inp.entity)
    deletions = len(inp.deleted)
    if not deletions:
        return True
    if not inp.sage_size:
        reason = f"the Sage snapshot of {inp.entity} is empty (the last one had {inp.previous_size} rows)"
    elif deletions > guard.minimum and inp.previous_size and deletions / inp.previous_size > guard.ratio:
        reason = (
            f"{deletions} of {inp.previous_size} {inp.entity} vanished from Sage "
            f"({deletions / inp.previous_size:.0%} > {guard.ratio:.0%}, above the minimum of {guard.minimum})"
        )
    else:
        return True
    fingerprint = deletion_set(inp.deleted)
    if inp.approved_deletions is not None and str(inp.approved_deletions) in (str(deletions), fingerprint):
        plan.guard = (
            f"{reason}; the {deletions} deletion(s) were approved for this run ({inp.approved_deletions})"
        )
        plan.approval = str(inp.approved_deletions)
        return True
    plan.guard = (
        f"{reason}; {deletions} deletion(s) withheld (set {fingerprint}: approve with "
        f"approve_deletions {{{inp.entity}: {deletions}}})"
    )
    plan.withheld_set = fingerprint
    return False


def withheld(plan: Plan, entity: str, key: str, rule: str) -> None:
    """Record a deletion withheld by the G4 guard (it is planned again next run)."""
    plan.deferred.append(Note(entity, key, "G4", f"{rule} deletion withheld: {plan.guard}"))


def plan_sage_deletion(
    plan: Plan,
    key: str,
    live: Binding | None,
    may_delete: bool,
    rule: str,
    names: tuple[str, str],
) -> None:
    """A one-way record gone from Sage: forget it, withhold its deletion (G4), or soft-delete it in SSM.

    Forgotten when it never reached SSM; ``names`` are the record's names on each side, e.g. ("article", "product").
    """
    if live is None:
        plan.commits.append(Commit(plan.entity, key, delete_row=True))
    elif not may_delete:
        withheld(plan, plan.entity, key, rule)
    else:
        sid = int(live.ssm_id or 0)
        sage_name, ssm_name = names
        reason = f"{sage_name} {key} deleted in Sage: soft-delete SSM {ssm_name} {sid}"
        plan.ops.append(Op("ssm_delete", plan.entity, key, rule, reason, ssm_id=sid))
        plan.commits.append(Commit(plan.entity, key, delete_row=True, ssm_id=sid, binding="deleted"))


def sage_problems(entity: str, key: str, specs: list[Spec], values: dict[str, Any]) -> list[str]:
    """G3 blocking problems of values about to be written to Sage."""
    by_name = {s.name: s for s in specs}
    problems = []
    for name, value in values.items():
        spec = by_name.get(name)
        if spec is not None:
            problem = check_sage_value(entity, key, spec, value)
            if problem:
                problems.append(problem)
    return problems


def describe(fields: dict[str, Any]) -> str:
    """Short list of field names for a reason sentence."""
    return ", ".join(sorted(fields)) or "no field"


def quarantine_ssm_values(plan: Plan, key: str, ssm_id: int, problems: list[str]) -> None:
    """G3: SSM values Sage cannot store; the record is quarantined with each reason and re-read every run."""
    for problem in problems:
        plan.quarantined.append(Note(plan.entity, key, "G3", problem, ssm_id))
    plan.pending[ssm_id] = "G3: quarantined SSM values"


def insert_in_sage_and_write_back(
    plan: Plan,
    key: str,
    rule: str,
    reason: str,
    *,
    row: dict[str, Any],
    synced: dict[str, Any],
    ssm_id: int,
    write_back: dict[str, Any],
    write_back_reason: str,
) -> None:
    """A record created in SSM (C4, P1, K1): insert it in Sage under its reserved key, then write the key back.

    The insert only sets the columns that have a value (the others keep Sage's defaults); the SSM update carries
    ``write_back`` (``extId``, and for accounts the status and read-only flag).
    """
    columns = {k: v for k, v in row.items() if v is not None}
    plan.ops.append(Op("sage_insert", plan.entity, key, rule, reason, fields=columns, reserved=True))
    plan.ops.append(
        Op(
            "ssm_update",
            plan.entity,
            key,
            rule,
            write_back_reason,
            ssm_id=ssm_id,
            fields=write_back,
        )
    )
    plan.commits.append(
        Commit(plan.entity, key, row=row, synced=synced, ssm_id=ssm_id, binding="ok", ssm_ids=[ssm_id])
    )


SsmRole = Literal["echo", "changed", "reserved", "deleted", "ext", "new"]
"""What an SSM record read this run is to a two-way planner (see :func:`ssm_roles`)."""


def ssm_roles(inp: PlanInput) -> Iterator[tuple[SsmRole, str | None, Record]]:
    """Each SSM record read this run, with its role and the Sage key it names (None for a deleted or new one).

    ``echo``: bound to a key, with the ``dateUpdated`` of our own last write (G2, no ping-pong); ``changed``:
    bound to a key otherwise; ``reserved``: a key was reserved for it (C4, K1); ``deleted``: unbound and deleted;
    ``ext``: unbound, live, carrying a Sage key as ``extId`` (adoption, twin, orphan or unknown key); ``new``:
    unbound, live, without ``extId``. :func:`pair_ssm` and :func:`paired_keys` read the same roles.
    """
    bound = {int(b.ssm_id): k for k, b in inp.bindings.items() if b.ssm_id is not None}
    reserved = {int(i): key for i, key in inp.reserved.items()}
    for rec in inp.ssm:
        rid = int(rec["id"])
        if rid in bound:
            key = bound[rid]
            date = rec.get("dateUpdated")
            yield ("echo" if date and date == inp.bindings[key].ssm_date_updated else "changed"), key, rec
        elif rid in reserved:
            yield "reserved", reserved[rid], rec
        elif rec.get("deleted"):
            yield "deleted", None, rec
        elif rec.get("extId"):
            yield "ext", str(rec["extId"]), rec
        else:
            yield "new", None, rec


def paired_keys(inp: PlanInput) -> set[str]:
    """The Sage keys :func:`pair_ssm` reads for the SSM records of this run, besides the changed ones.

    Those bound to a record read (unless it is the echo of our own write), reserved for one, or named by the
    ``extId`` of an unbound live one (adoption, twins), and those an ``extId`` lookup found a record for. A
    two-way planner reads no other unchanged key (ADR 0018).
    """
    named = {key for role, key, _ in ssm_roles(inp) if key is not None and role != "echo"}
    return named | set(inp.ssm_by_ext)


def pair_ssm(inp: PlanInput, plan: Plan, *, rule: str, noun: str, on_new: Callable[[Record], None]) -> Pairs:
    """Attach each SSM record read this run to a Sage key (two-way entities; see :class:`Pair`).

    A record bound to a key is that key's ``changed`` record, unless it is the echo of our own last write (same
    ``dateUpdated``: G2, no ping-pong). A record a key was reserved for (C4, K1) is that key's ``reserved`` record.
    A live unbound record carrying a Sage key as ``extId`` is ``adoptable`` when that key has no live binding (C1,
    K1: adopt instead of creating a duplicate); otherwise it is reported and left alone. A live record without
    ``extId`` is new in SSM: ``on_new`` decides (defer, skip, or wait for a reserved key). Records found by
    ``extId`` lookups (``inp.ssm_by_ext``) are offered last.
    """
    pairs = Pairs()
    for role, key, rec in ssm_roles(inp):
        if role == "changed":
            pairs.attach(str(key), changed=rec)
        elif role == "reserved":
            pairs.attach(str(key), reserved=rec)
        elif role == "ext":
            ext = str(key)
            if ext in inp.sage and inp.live_binding(ext) is None:
                pairs.attach(ext, adoptable=rec)
            elif ext in inp.sage or inp.live_binding(ext) is not None:
                twin(plan, inp, ext, rec, rule, noun)
            elif ext in inp.orphans:
                continue  # planned by plan_orphans
            else:
                reason = f"SSM {noun} {rec['id']} has extId {ext}, unknown to Sage"
                plan.skipped.append(Note(plan.entity, ext, rule, reason, int(rec["id"])))
        elif role == "new":
            on_new(rec)
    for key, found in inp.ssm_by_ext.items():
        if inp.live_binding(key) is None and key in inp.sage:
            pairs.offer(key, adoptable=found)
    return pairs


def twin(plan: Plan, inp: PlanInput, key: str, rec: Record, rule: str, noun: str) -> None:
    """C1: a live SSM record carries a key already bound to another live record: one key, two SSM records.

    A twin made by the same user as the bound record (the integration: two runs that overlapped before the run
    lease existed, or a lost response) is retired; a twin a user made is reported and never chosen over the bound
    record. The twin is read again next run until it is gone, so a failed retirement is retried.
    """
    rid, other = int(rec["id"]), inp.bindings[key].ssm_id
    creator = ssm_scalar(rec.get("salesRepIdCreated"))
    if creator is not None and other is not None and creator == inp.creators.get(int(other)):
        reason = (
            f"SSM {noun} {rid} duplicates SSM {noun} {other} (extId {key}, both made by the integration's user "
            f"{creator}): retire the duplicate"
        )
        plan.ops.append(Op("ssm_delete", plan.entity, f"ssm:{rid}", rule, reason, ssm_id=rid))
        plan.pending[rid] = f"{rule}: duplicate of {noun} {other} being retired"
        return
    reason = (
        f"SSM {noun} {rid} also carries extId {key}, which is bound to SSM {noun} {other}; made by user "
        f"{creator}, it is left untouched and never chosen over {other}"
    )
    plan.skipped.append(Note(plan.entity, key, rule, reason, rid))


def plan_orphans(plan: Plan, inp: PlanInput, may_delete: bool, rule: str, noun: str) -> None:
    """G5: records whose SSM create may have applied (response lost) and that Sage deleted before the next run.

    The SSM record found by ``extId`` is soft-deleted like any record deleted in Sage (within the G4 guard); a key
    SSM has no record for is simply forgotten.
    """
    for key in inp.orphans:
        found = inp.ssm_by_ext.get(key)
        if found is None:
            plan.commits.append(Commit(plan.entity, key, delete_row=True, binding="deleted"))
        elif not may_delete:
            withheld(plan, plan.entity, key, rule)
        else:
            sid = int(found["id"])
            reason = (
                f"{noun} {key} reached SSM ({sid}) in a run whose answer was lost, and Sage has deleted it since: "
                "soft-delete it"
            )
            plan.ops.append(Op("ssm_delete", plan.entity, key, rule, reason, ssm_id=sid))
            plan.commits.append(Commit(plan.entity, key, delete_row=True, ssm_id=sid, binding="deleted"))
