"""Binding a first-sync match (O1): the SSM record gets the Sage key as ``extId``, nothing else of it changes.

A customer's company also becomes read-only with the status Client (C2), a prospect's gets the status Prospect, a
product becomes read-only (D1); a contact only gets its key. The write goes through the dossier's SSM side, so the
``extId`` carries the dossier's prefix (M2). Right before writing, each record is read again: one that meanwhile
got an ``extId`` (another dossier, a person) or was deleted is left alone and its proposal superseded.

The sync's own binding and the Sage-owned fields follow in the same run: the entity's extract finds the record by
its ``extId`` and adopts it (C1, K1, D1), exactly as after a lost response. SSM-only fields (owner, sales reps,
type, segment, other custom fields) are never part of a sync write, so they stay as the sales team left them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sage_sync.engine.sides import SsmSide
from sage_sync.mapping import transforms as tf
from sage_sync.mapping.registry import registry
from sage_sync.onboarding.matcher import Proposal


@dataclass
class BindOutcome:
    """What happened to the pairs asked to be bound: bound, superseded (with why), failed (with why)."""

    bound: list[tuple[str, str, int]] = field(default_factory=list)
    superseded: dict[tuple[str, str, int], str] = field(default_factory=dict)
    failed: dict[tuple[str, str, int], str] = field(default_factory=dict)


def bind_fields(
    entity: str, key: str, sage_row: dict[str, Any] | None, lists: tf.ValueLists
) -> dict[str, Any]:
    """What a binding writes to the SSM record: the key, and for accounts and products their C2/D1 status."""
    fields: dict[str, Any] = {"extId": key}
    if entity == "accounts":
        is_prospect = (sage_row or {}).get("is_prospect")
        status = tf.status_to_ssm(is_prospect, lists)
        if status is not None:
            fields["statusId"] = status
        fields["readOnly"] = is_prospect != 1
    elif not registry()[entity].two_way:
        fields["readOnly"] = True
    return fields


def bind(
    ssm: SsmSide,
    pairs: list[Proposal],
    sage_rows: dict[tuple[str, str], dict[str, Any]],
    lists: tf.ValueLists,
) -> BindOutcome:
    """Write each pair's Sage key to its SSM record (one bulk update per entity); see the module docstring."""
    out = BindOutcome()
    for entity in registry().names:
        wanted = [p for p in pairs if p.entity == entity]
        if not wanted:
            continue
        endpoint = registry()[entity].endpoint
        current = {int(r["id"]): r for r in ssm.get_by_ids(endpoint, sorted({p.ssm_id for p in wanted}))}
        ready: list[Proposal] = []
        for p in wanted:
            rec = current.get(p.ssm_id)
            if rec is None or rec.get("deleted"):
                out.superseded[p.pair] = f"SSM record {p.ssm_id} is gone"
            elif rec.get("extId") == p.sage_key:
                out.bound.append(p.pair)  # written by an earlier run that stopped before recording it
            elif rec.get("extId"):
                out.superseded[p.pair] = f"SSM record {p.ssm_id} now carries extId {rec.get('extId')}"
            else:
                ready.append(p)
        if not ready:
            continue
        items = [
            (p.ssm_id, bind_fields(entity, p.sage_key, sage_rows.get((entity, p.sage_key)), lists))
            for p in ready
        ]
        for p, outcome in zip(ready, ssm.bulk_update(endpoint, items), strict=True):
            if outcome.ok:
                out.bound.append(p.pair)
            else:
                out.failed[p.pair] = outcome.error or "refused"
    return out
