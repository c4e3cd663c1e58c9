"""The two files a person works with during a first sync (O1): the proposals to review and the decisions taken.

``proposals.csv`` (rewritten by every matching pass, in the dossier's ``matching/`` folder and in the run's
staging folder) lists every pair with its status, confidence and evidence, and an empty ``decision`` column.
A person copies the rows they decide on into ``decisions.csv`` beside it (or copies the whole file and fills in the
column), with one of:

* ``bind``: the two records are the same: write the Sage key to the SSM record, keep its SSM-only fields;
* ``reject``: they are different: each is synced on its own (the Sage record is created in SSM, the SSM company
  goes through C4 when it is a Client or Prospect);
* ``ssm_only``: the SSM record stays in SSM only (e.g. a duplicate typed twice by the sales team).

Rows with an empty decision are ignored; other columns are free. The next run applies the decisions (a bad row is
reported with its line number and reason, the others still apply); decisions already applied are not applied again.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import Any

from sage_sync.location import Location, read_bytes_or_none
from sage_sync.mapping.registry import registry

DECISIONS = {"bind": "bound", "reject": "rejected", "ssm_only": "ssm_only"}
PROPOSAL_COLUMNS = (
    "entity",
    "sage_key",
    "ssm_id",
    "status",
    "confidence",
    "evidence",
    "sage_record",
    "ssm_record",
    "decided_by",
    "decision",
)
_MATCHED_ENTITIES = ("accounts", "contacts", "products")


@dataclass(frozen=True)
class Decision:
    """One decision of a person: the pair, what to do with it, and the file line it came from."""

    entity: str
    sage_key: str
    ssm_id: int
    decision: str
    line: int

    @property
    def pair(self) -> tuple[str, str, int]:
        """(entity, Sage key, SSM id)."""
        return (self.entity, self.sage_key, self.ssm_id)

    @property
    def status(self) -> str:
        """The match status the decision leads to (``bound``, ``rejected`` or ``ssm_only``)."""
        return DECISIONS[self.decision]


def proposals_csv(rows: list[dict[str, Any]]) -> str:
    """The proposals as CSV text (one row per pair; ``rows`` are stored proposals' ``to_dict()``)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=PROPOSAL_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow(
            {
                "entity": r["entity"],
                "sage_key": r["sage_key"],
                "ssm_id": r["ssm_id"],
                "status": r["status"],
                "confidence": f"{float(r['confidence']):.3f}",
                "evidence": r["evidence"],
                "sage_record": r.get("sage_label") or "",
                "ssm_record": r.get("ssm_label") or "",
                "decided_by": r.get("decided_by") or "",
                "decision": "",
            }
        )
    return out.getvalue()


def read_decisions(path: Location) -> tuple[list[Decision], list[str]]:
    """The decisions of ``path`` and the problems of its bad rows (each naming the file, the line and why).

    A missing file means no decision yet.
    """
    try:
        data = read_bytes_or_none(path)
        if data is None:
            return [], []
        text = data.decode("utf-8-sig")  # a spreadsheet may save a BOM
    except (OSError, UnicodeDecodeError) as exc:
        return [], [f"{path}: cannot be read as UTF-8 text ({exc})"]
    reader = csv.DictReader(io.StringIO(text))
    needed = {"entity", "sage_key", "ssm_id", "decision"}
    missing = sorted(needed - set(reader.fieldnames or ()))
    if missing:
        return [], [
            f"{path}: missing column(s) {', '.join(missing)} (the header needs {', '.join(sorted(needed))})"
        ]
    found: list[Decision] = []
    problems: list[str] = []
    for number, row in enumerate(reader, start=2):
        decision = (row.get("decision") or "").strip().lower()
        if not decision:
            continue
        entity, key, ident = (
            (row.get("entity") or "").strip(),
            (row.get("sage_key") or "").strip(),
            row.get("ssm_id"),
        )
        where = f"{path.name} line {number}"
        if decision not in DECISIONS:
            problems.append(f"{where}: decision {decision!r}; expected {', '.join(DECISIONS)} (or empty)")
        elif entity not in _MATCHED_ENTITIES or entity not in registry():
            problems.append(f"{where}: entity {entity!r}; expected one of {', '.join(_MATCHED_ENTITIES)}")
        elif not key:
            problems.append(f"{where}: the sage_key is empty")
        elif not str(ident or "").strip().isdigit():
            problems.append(f"{where}: ssm_id {ident!r} is not an SSM record id")
        else:
            found.append(Decision(entity, key, int(str(ident).strip()), decision, number))
    bad, contradictions = _contradictions(found, path.name)
    return [d for d in found if d.pair not in bad], problems + contradictions


def _contradictions(found: list[Decision], name: str) -> tuple[set[tuple[str, str, int]], list[str]]:
    """Decisions that cannot all hold (one pair decided two ways, one record bound twice): none of them applies."""
    bad: set[tuple[str, str, int]] = set()
    problems: list[str] = []
    groups: dict[Any, list[Decision]] = {}
    for d in found:
        groups.setdefault(("pair", d.pair), []).append(d)
        if d.decision == "bind":
            groups.setdefault(("Sage key", d.entity, d.sage_key), []).append(d)
            groups.setdefault(("SSM record", d.entity, d.ssm_id), []).append(d)
    for group, ds in groups.items():
        lines = ", ".join(str(d.line) for d in ds)
        if group[0] == "pair" and len({d.decision for d in ds}) > 1:
            problems.append(f"{name} lines {lines}: {ds[0].sage_key} / {ds[0].ssm_id} is decided two ways")
        elif group[0] != "pair" and len({d.pair for d in ds}) > 1:
            problems.append(f"{name} lines {lines}: {group[0]} {group[2]} is bound to more than one record")
        else:
            continue
        bad |= {d.pair for d in ds}
    return bad, problems
