"""Plans: the exact operations a sync run will make, each with its rule ID and reason (G7, G8).

A plan is plain data: it prints as a table (the dry run) and round-trips through JSON, so an orchestrator can
hand it from the plan step to the load step.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    from sage_sync.engine.staging import Staging

OpKind = Literal["ssm_create", "ssm_update", "ssm_delete", "sage_insert", "sage_update"]
OP_KINDS: tuple[str, ...] = ("ssm_create", "ssm_update", "ssm_delete", "sage_insert", "sage_update")


def fields_dict(record: Any) -> dict[str, Any]:
    """A flat dataclass's fields as a dict, sharing its values.

    ``dataclasses.asdict`` deep-copies every nested dict and list: 46 times slower, minutes for the million
    commits of a large dossier's invoices (ADR 0018).
    """
    return {f.name: getattr(record, f.name) for f in fields(record)}


@dataclass(slots=True)
class Op:
    """One write to one side.

    ``key`` is the record's Sage natural key as text (``"C001"``, ``"C001/2"``); ``ssm_id`` the SSM id when known.
    ``refs`` names fields whose SSM id is only known at load time: ``{"accountId": ["accounts", "C001"]}`` is the
    SSM id bound to account ``C001``; ``{"familyId": ["productFamilies", "Vins"]}`` a value-list entry.
    What both sides hold once the op is confirmed (the new merge base) is its record's :class:`Commit`.
    """

    kind: OpKind
    entity: str
    key: str
    rule: str
    reason: str
    ssm_id: int | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    refs: dict[str, list[str]] = field(default_factory=dict)
    picture: dict[str, str] | None = None
    reserved: bool = False

    def to_dict(self) -> dict[str, Any]:
        """The op as JSON-ready data."""
        return fields_dict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Op:
        """Rebuild an op from :meth:`to_dict` output (a plan staged by an earlier version may carry ``synced``)."""
        return cls(**({k: v for k, v in raw.items() if k != "synced"} if "synced" in raw else raw))


@dataclass
class Note:
    """A record the run deliberately does not write: deferred (retried next run) or skipped (by a rule)."""

    entity: str
    key: str
    rule: str
    reason: str
    ssm_id: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """The note as JSON-ready data."""
        return fields_dict(self)


@dataclass
class Conflict:
    """A field changed on both sides since the last sync (G2), with both values and the winner."""

    entity: str
    key: str
    field: str
    sage_value: Any
    ssm_value: Any
    winner: str

    def to_dict(self) -> dict[str, Any]:
        """The conflict as JSON-ready data."""
        return fields_dict(self)


@dataclass(slots=True)
class Commit:
    """What the state store records for one record once every op of it (and of ``depends``) is confirmed (G5).

    ``row`` is the Sage row that becomes the committed snapshot (``delete_row`` removes it instead); ``synced``
    the new merge base; ``ssm_id`` the bound SSM id (None: taken from the confirmed create). ``binding`` is the
    binding status to record (None leaves the binding alone). ``ssm_ids`` are SSM records this commit settles
    (cleared from the pending list on success, added to it on failure).
    """

    entity: str
    key: str
    row: dict[str, Any] | None = None
    delete_row: bool = False
    synced: dict[str, Any] | None = None
    ssm_id: int | None = None
    binding: str | None = None
    ssm_ids: list[int] = field(default_factory=list)
    depends: list[list[str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The commit as JSON-ready data."""
        return fields_dict(self)


class PlanSpool(Protocol):
    """Where a planner's settled ops and commits go while it plans: written out as they come.

    The ops are counted by kind and the first ones kept by name (the plan step's spool is
    :class:`~sage_sync.engine.staging.SpooledPlan`).
    """

    #: The ops handed over so far, by kind.
    kinds: Counter[str]
    #: The first :data:`DIGEST_OPS` ops handed over (what the plan's digest names).
    head: list[Op]

    def add(self, ops: list[Op], commits: list[Commit]) -> None:
        """Take ``ops`` and ``commits``, final, in plan order after those taken before."""
        ...


@dataclass
class Plan:
    """Everything one entity's run will do, and everything it will not do and why.

    A plan with a ``spool`` holds in ``ops`` and ``commits`` only what was planned since its planner last settled
    (:meth:`settle`); the rest is in the spool, in order before them.
    """

    entity: str
    ops: list[Op] = field(default_factory=list)
    deferred: list[Note] = field(default_factory=list)
    skipped: list[Note] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)
    quarantined: list[Note] = field(default_factory=list)
    warnings: list[Note] = field(default_factory=list)
    guard: str | None = None
    unchanged: int = 0
    commits: list[Commit] = field(default_factory=list)
    #: SSM records to look at again next run (deferred), with the reason.
    pending: dict[int, str] = field(default_factory=dict)
    #: G4: the fingerprint of the deletions withheld this run (what an approval names), or None.
    withheld_set: str | None = None
    #: A1: the approval that let this run's guarded deletions through (a count or a set fingerprint), or None.
    approval: str | None = None
    #: Where settled ops and commits go (:meth:`settle`); None keeps everything in ``ops`` and ``commits``.
    spool: PlanSpool | None = field(default=None, repr=False, compare=False)

    def settle(self) -> None:
        """The ops and commits planned so far are final: hand them to the spool, when the plan has one.

        A planner of millions of records settles as it goes (between two records, never within one), so the plan
        step writes the plan as it is made instead of holding it whole (ADR 0018, decision 39).
        """
        if self.spool is not None and (self.ops or self.commits):
            self.spool.add(self.ops, self.commits)
            self.ops, self.commits = [], []

    @property
    def op_count(self) -> int:
        """How many ops the plan holds, the settled ones included."""
        return len(self.ops) + (self.spool.kinds.total() if self.spool is not None else 0)

    @property
    def is_empty(self) -> bool:
        """True when the plan writes nothing to either side (G6)."""
        return self.op_count == 0

    def kinds(self) -> Counter[str]:
        """How many ops of each kind the plan holds, the settled ones included (in the order kinds first appear)."""
        out: Counter[str] = Counter(self.spool.kinds) if self.spool is not None else Counter()
        out.update(op.kind for op in self.ops)
        return out

    def count(self, kind: str) -> int:
        """How many ops of ``kind`` the plan holds."""
        return self.kinds()[kind]

    def head(self) -> dict[str, Any]:
        """The plan as JSON-ready data without its ops and commits (its notes, G4/A1 fields and counts)."""
        return {
            "entity": self.entity,
            "deferred": [n.to_dict() for n in self.deferred],
            "skipped": [n.to_dict() for n in self.skipped],
            "conflicts": [c.to_dict() for c in self.conflicts],
            "quarantined": [n.to_dict() for n in self.quarantined],
            "warnings": [n.to_dict() for n in self.warnings],
            "guard": self.guard,
            "unchanged": self.unchanged,
            "pending": {str(k): v for k, v in self.pending.items()},
            "withheld_set": self.withheld_set,
            "approval": self.approval,
        }

    def to_dict(self) -> dict[str, Any]:
        """The plan as JSON-ready data."""
        return {
            **self.head(),
            "ops": [op.to_dict() for op in self.ops],
            "commits": [c.to_dict() for c in self.commits],
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Plan:
        """Rebuild a plan from :meth:`to_dict` output (or from a :meth:`head` with its ops and commits)."""
        return cls(
            entity=raw["entity"],
            ops=[Op.from_dict(o) for o in raw.get("ops") or []],
            deferred=[Note(**n) for n in raw["deferred"]],
            skipped=[Note(**n) for n in raw["skipped"]],
            conflicts=[Conflict(**c) for c in raw["conflicts"]],
            quarantined=[Note(**n) for n in raw["quarantined"]],
            warnings=[Note(**n) for n in raw["warnings"]],
            guard=raw.get("guard"),
            unchanged=int(raw.get("unchanged", 0)),
            commits=[Commit(**c) for c in raw.get("commits") or []],
            pending={int(k): v for k, v in (raw.get("pending") or {}).items()},
            withheld_set=raw.get("withheld_set"),
            approval=raw.get("approval"),
        )

    def to_json(self) -> str:
        """The plan as a JSON document."""
        return json.dumps(self.to_dict(), ensure_ascii=False, sort_keys=True, default=str)

    @classmethod
    def from_json(cls, text: str) -> Plan:
        """Rebuild a plan from :meth:`to_json` output."""
        return cls.from_dict(json.loads(text))

    def render(self) -> str:
        """The plan as a readable table: one line per op, deferred, skipped, quarantined record (G8)."""
        rows: list[tuple[str, str, str, str, str]] = []
        for op in self.ops:
            shown = ", ".join(sorted(op.fields)) if op.fields else ""
            rows.append((op.kind, op.key, op.rule, op.reason, shown))
        for label, notes in (
            ("deferred", self.deferred),
            ("skipped", self.skipped),
            ("quarantined", self.quarantined),
            ("warning", self.warnings),
        ):
            rows.extend((label, n.key, n.rule, n.reason, "") for n in notes)
        for c in self.conflicts:
            rows.append(
                ("conflict", c.key, "G2", f"{c.field}: Sage {c.sage_value!r} / SSM {c.ssm_value!r}", c.winner)
            )
        head = ("action", "record", "rule", "reason", "fields")
        widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(5)]
        lines = [f"== {self.entity}: {len(self.ops)} op(s), {self.unchanged} unchanged"]
        if self.guard:
            lines.append(f"   G4 guard: {self.guard}")
        for r in [head, *rows]:
            lines.append("  ".join(str(v).ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())
        return "\n".join(lines)


#: Ops kept by name in a plan's digest (the report lists at most this many).
DIGEST_OPS = 200
_DIGEST_KEYS = ("entity", "guard", "withheld_set", "approval", "unchanged", "conflicts", "quarantined", "deferred",
                "warnings", "skipped")  # fmt: skip


def digest(plan: Plan) -> dict[str, Any]:
    """What the report and the approvals read of a plan, without its ops and commits.

    A large dossier's plan holds every record to write (a million invoice lines); its digest is the notes
    (conflicts, quarantine, deferred, warnings, skips), the G4/A1 fields, the ops' count by kind and the first
    :data:`DIGEST_OPS` ops by name.
    """
    head = plan.head()
    out = {k: head.get(k) for k in _DIGEST_KEYS}
    out["ops_total"] = plan.op_count
    out["ops_by_kind"] = dict(plan.kinds())
    named = (plan.spool.head if plan.spool is not None else []) + plan.ops[:DIGEST_OPS]
    out["ops_head"] = [
        {k: getattr(op, k) for k in ("kind", "key", "rule", "reason", "ssm_id")} for op in named[:DIGEST_OPS]
    ]
    return out


def staged_digest(staging: Staging, entity: str) -> dict[str, Any] | None:
    """The digest the plan step staged (``plan_digest.json``), else one made from the staged plan; None: no plan."""
    found = staging.read_json_or_none(entity, "plan_digest.json")
    if found is not None:
        return dict(found)
    return digest(staging.read_plan(entity, commits=False)) if staging.has_plan(entity) else None
