"""A dossier switched off and on again (M3): how it is recognised, and how its first run back takes Sage as master.

**Switched off** means no sync run finished for ``resume_after_hours`` (24 by default): the dossier was
``enabled: false`` in the dossiers file, its DAG was paused, or its runs kept failing. The first run after that
is a *resume run* (also on request: the DAG's ``resume`` param). A resume run is a full reconcile (both live sides
compared, not only the changes since the last run) in which Sage is master: for every record known to both sides,
the merge base becomes what SSM holds now, so every synced field where Sage differs is written to SSM and nothing
flows back to Sage. Fields the sync does not map (owner, sales reps, other custom fields, comments of contacts...)
are SSM-only and stay as they are. Records created on either side meanwhile follow their usual rules (C4, P1, K1).
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from sage_sync.engine.codec import UnmappedValue, from_ssm, mapping, synced_specs
from sage_sync.engine.inputs import PlanInput
from sage_sync.engine.state import StateStore, runs
from sage_sync.mapping.registry import registry


def last_sync_finished(state: StateStore) -> datetime | None:
    """When the dossier's last real (not dry) run finished, or None when it never ran."""
    with state.engine.connect() as conn:
        value = conn.execute(
            sa.select(sa.func.max(runs.c.finished_at)).where(
                runs.c.dry_run.is_(False), runs.c.finished_at.is_not(None)
            )
        ).scalar()
    if not value:
        return None
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def resume_reason(state: StateStore, hours: float, now: datetime | None = None) -> str | None:
    """Why this run is the first one back after the dossier was switched off (M3), or None.

    ``hours`` is ``resume_after_hours`` (0: never by itself). A dossier that never ran is not resuming: its first
    run is a first sync (O1 matching), not a return.
    """
    if hours <= 0:
        return None
    last = last_sync_finished(state)
    if last is None:
        return None
    moment = now or datetime.now(UTC)
    idle = (moment - last).total_seconds() / 3600.0
    if idle < hours:
        return None
    return (
        f"no run finished for {idle:.1f} h (since {last.isoformat(timespec='minutes')}; the limit is {hours:g} h): "
        "the dossier was switched off, so this run takes Sage as master (M3)"
    )


def take_sage_as_master(inp: PlanInput) -> int:
    """Base every bound two-way record on its live SSM values, so Sage's values win every synced field (M3).

    Call it after :func:`~sage_sync.engine.reconcile.reconcile_live` (every SSM record read, every bound record in
    scope, echo markers dropped). Returns how many bindings were re-based. One-way entities need nothing more: a
    full reconcile already restores Sage's values there.
    """
    spec = registry()[inp.entity]
    if not spec.two_way:
        return 0
    specs = synced_specs(mapping(inp.entity), skip=spec.key)
    live = {int(r["id"]): r for r in inp.ssm if not r.get("deleted")}
    rebased = 0
    for key, binding in list(inp.bindings.items()):
        record = live.get(int(binding.ssm_id or 0)) if binding.live else None
        if record is None:
            continue
        base = dict(binding.base)
        for s in specs:
            try:
                base[s.name] = from_ssm(s, record.get(s.ssm), inp.lists)
            except UnmappedValue:
                continue  # a status Sage has no word for: the planner reports it, the base keeps the last value
        inp.bindings[key] = binding.with_(synced=base, ssm_date_updated=None)
        rebased += 1
    return rebased
