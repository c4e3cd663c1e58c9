"""Approvals of withheld deletions asked of a person (G4, A1): what to ask, and what was decided.

When the G4 guard withholds an entity's deletions, the run asks a person (the DAG's ``approve`` task, a
human-in-the-loop approval in the Airflow UI) with the count and a sample of the records. The decision is kept:

- in the run's staging area (``<entity>/approval.json``): the set, who decided and when, and once applied what the
  approved pass did; the run report shows it;
- in the decisions file ``<shared>/approvals.json`` (``{entity: {set, decision, by, at}}``, in the dossier's
  shared location: :mod:`sage_sync.settings`): a *rejected* set is not asked about again until the withheld set
  changes (its fingerprint differs). A timeout is not a decision: the set stays withheld and the next run asks
  again.

No Airflow import here.
"""

from __future__ import annotations

import json
from typing import Any

from sage_sync.engine.plan import staged_digest
from sage_sync.engine.staging import Staging
from sage_sync.location import Location, read_bytes_or_none, write_bytes_atomic

APPROVE, REJECT, TIMEOUT = "approved", "rejected", "timed out"
DECISION_FILE = "approval.json"
SAMPLE_SIZE = 10


def withheld(staging: Staging, entity: str) -> dict[str, Any] | None:
    """The deletions G4 withheld for ``entity`` in this run: ``{set, count, keys, guard}``, or None."""
    plan = staged_digest(staging, entity) or {}
    if not plan.get("withheld_set"):
        return None
    keys = [str(d.get("key")) for d in plan.get("deferred") or [] if d.get("rule") == "G4"]
    return {"set": plan["withheld_set"], "count": len(keys), "keys": keys, "guard": plan.get("guard")}


def question(entity: str, found: dict[str, Any]) -> tuple[str, str]:
    """The subject and the Markdown body of the approval asked for ``found`` (count, sample, what happens)."""
    keys = found["keys"]
    sample = "\n".join(f"- `{k}`" for k in keys[:SAMPLE_SIZE])
    more = f"\n- ... and {len(keys) - SAMPLE_SIZE} more" if len(keys) > SAMPLE_SIZE else ""
    subject = f"Delete {found['count']} {entity} in Sales Management?"
    body = (
        f"The mass-deletion guard (G4) withheld **{found['count']} deletion(s) of {entity}**: {found['guard']}.\n\n"
        f"Records (set `{found['set']}`):\n{sample}{more}\n\n"
        "**Approve** deletes exactly this set in Sales Management now; it is checked against Sage again first, "
        "and nothing is deleted if the set has changed. **Reject** keeps them withheld and this set is not "
        "asked about again; a different set asks again. No answer in time keeps them withheld."
    )
    return subject, body


def _decisions_path(folder: Location) -> Location:
    return folder / "approvals.json"


def decisions(folder: Location) -> dict[str, Any]:
    """The last decision per entity (``{entity: {set, decision, by, at}}``) kept in ``folder``."""
    try:
        data = read_bytes_or_none(_decisions_path(folder))
        return dict(json.loads(data)) if data is not None else {}
    except (OSError, ValueError):
        return {}


def rejected_before(folder: Location, entity: str, withheld_set: str) -> dict[str, Any] | None:
    """The earlier rejection of exactly this set, or None (then the run asks)."""
    last = decisions(folder).get(entity) or {}
    if last.get("decision") == REJECT and last.get("set") == withheld_set:
        return last
    return None


def record(
    folder: Location,
    staging: Staging,
    entity: str,
    found: dict[str, Any],
    decision: str,
    by: str | None,
    at: str,
) -> dict[str, Any]:
    """Keep a decision in the run's staging area and (unless a timeout) in the decisions file of ``folder``."""
    entry = {"set": found["set"], "count": found["count"], "decision": decision, "by": by, "at": at}
    staging.write_json(entity, DECISION_FILE, entry)
    if decision != TIMEOUT:
        every = decisions(folder)
        every[entity] = entry
        write_bytes_atomic(
            _decisions_path(folder), json.dumps(every, indent=2, sort_keys=True).encode("utf-8")
        )
    return entry


def amend(staging: Staging, entity: str, **fields: Any) -> dict[str, Any]:
    """Add ``fields`` (e.g. what the approved pass did) to the run's decision of ``entity``."""
    entry = dict(staging.read_json_or_none(entity, DECISION_FILE) or {})
    entry.update(fields)
    staging.write_json(entity, DECISION_FILE, entry)
    return entry
