"""Helpers shared by the per-entity rule functions."""

from __future__ import annotations

from typing import Any

from sage_sync.engine.codec import Spec, check_sage_value
from sage_sync.engine.config import SyncConfig
from sage_sync.engine.inputs import PlanInput
from sage_sync.engine.plan import Commit, Note, Op, Plan


def guard_deletions(inp: PlanInput, config: SyncConfig, plan: Plan) -> bool:
    """G4: True when deletions may go ahead; otherwise sets ``plan.guard`` to the reason and returns False."""
    guard = config.guard(inp.entity)
    deletions = len(inp.deleted)
    if not deletions:
        return True
    if not inp.sage:
        plan.guard = (
            f"the Sage snapshot of {inp.entity} is empty (the last one had {inp.previous_size} rows); "
            f"{deletions} deletion(s) withheld"
        )
        return False
    if deletions > guard.minimum and inp.previous_size and deletions / inp.previous_size > guard.ratio:
        plan.guard = (
            f"{deletions} of {inp.previous_size} {inp.entity} vanished from Sage "
            f"({deletions / inp.previous_size:.0%} > {guard.ratio:.0%}, above the minimum of {guard.minimum}); "
            "deletions withheld"
        )
        return False
    return True


def withheld(plan: Plan, entity: str, key: str, rule: str) -> None:
    """Record a deletion withheld by the G4 guard (it is planned again next run)."""
    plan.deferred.append(Note(entity, key, "G4", f"{rule} deletion withheld: {plan.guard}"))


def plan_sage_deletion(
    plan: Plan,
    key: str,
    live: dict[str, Any] | None,
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
        sid = int(live["ssm_id"])
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
    plan.ops.append(
        Op("sage_insert", plan.entity, key, rule, reason, fields=columns, synced=synced, reserved=True)
    )
    plan.ops.append(
        Op(
            "ssm_update",
            plan.entity,
            key,
            rule,
            write_back_reason,
            ssm_id=ssm_id,
            fields=write_back,
            synced=synced,
        )
    )
    plan.commits.append(
        Commit(plan.entity, key, row=row, synced=synced, ssm_id=ssm_id, binding="ok", ssm_ids=[ssm_id])
    )
