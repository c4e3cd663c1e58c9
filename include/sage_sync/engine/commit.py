"""The commit step: advance the state only for records whose writes were all confirmed (G5).

A record whose op failed keeps its committed snapshot row and merge base, so the next run plans it again; its
SSM record is put on the pending list so it is fetched again even once the watermark has moved past it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from itertools import chain, islice
from typing import Any, TypeVar

from sage_sync.engine.apply import ApplyResult, OpOutcome
from sage_sync.engine.plan import Commit, Op, Plan
from sage_sync.engine.snapshot import committed_digests
from sage_sync.engine.state import BindRow, StateStore


@dataclass
class EntityCounts:
    """Per-entity counts of one run (G7)."""

    created: int = 0
    updated: int = 0
    deleted: int = 0
    unchanged: int = 0
    deferred: int = 0
    quarantined: int = 0
    conflicts: int = 0
    failed: int = 0
    skipped: int = 0
    api_calls: int = 0

    def to_dict(self) -> dict[str, int]:
        """JSON-ready form."""
        return asdict(self)


@dataclass
class CommitResult:
    """Counts and the first :data:`LOG_HEAD` entries of the per-record log of one entity's commit."""

    counts: EntityCounts = field(default_factory=EntityCounts)
    log: list[dict[str, str]] = field(default_factory=list)


def count_plan(plan: Plan, result: ApplyResult | None) -> EntityCounts:
    """Counts of a plan, with the outcomes of its load when it ran (its ops are not read); a dry run counts its ops."""
    c = EntityCounts(
        unchanged=plan.unchanged,
        deferred=len(plan.deferred),
        quarantined=len(plan.quarantined),
        conflicts=len(plan.conflicts),
        skipped=len(plan.skipped),
    )
    writes = (
        ((o.kind, o.ok) for o in result.outcomes)
        if result is not None
        else ((op.kind, True) for op in plan.ops)
    )
    for kind, ok in writes:
        if not ok:
            c.failed += 1
        elif kind in ("ssm_create", "sage_insert"):
            c.created += 1
        elif kind == "ssm_delete":
            c.deleted += 1
        else:
            c.updated += 1
    if result is not None:
        c.api_calls = result.api_calls
    return c


T = TypeVar("T")

#: Commits are stored this many at a time, and the record log written as many entries at a time: a first load's
#: million records never sit in memory as statement rows all at once (ADR 0018).
CHUNK = 20_000
#: Entries of the record log kept in the commit's result (the whole log is in the state store).
LOG_HEAD = 500


def commit_plan(
    plan: Plan,
    result: ApplyResult,
    state: StateStore,
    run_id: str,
    seen: dict[int, str] | None = None,
    commits: Iterable[Commit] | None = None,
    chunk: int = CHUNK,
    ops: Iterable[Op] | None = None,
    done: CommitProgress | None = None,
) -> CommitResult:
    """Record in ``state`` what the load confirmed; ``seen`` maps SSM ids to the ``dateUpdated`` read this run.

    ``commits`` are the plan's commits when they are read as they go (the staged plan's); else ``plan.commits``.
    They are stored ``chunk`` at a time. ``ops`` likewise (else ``plan.ops``): only the record log reads them, with
    their outcomes. The result's log holds the first :data:`LOG_HEAD` entries. ``done`` is what the load already
    committed as it went (:mod:`sage_sync.engine.commit_stream`): ``commits`` and ``ops`` then start after it.
    """
    seen = seen or {}
    done = done or CommitProgress()
    if commits is None:
        commits = plan.commits[done.commits :]
    if ops is None:
        ops = plan.ops[done.ops :]
    with state.batch():
        outcomes = Outcomes()
        unread = iter(result.outcomes)  # read into ``outcomes`` only when a commit is left to store
        released: list[str] = []
        settled: set[int] = set()  # SSM ids cleared from the pending list after the loop (in chunks)
        for part in _batched(commits, chunk):
            outcomes.add(unread)
            released += store_commits(plan.entity, part, outcomes, seen, settled, state)
        state.clear_pending(plan.entity, sorted(settled))
        state.release_quarantine(plan.entity, released)
        for sid, reason in plan.pending.items():
            state.set_pending(plan.entity, sid, "defer", reason)
        state.quarantine_rows(plan.entity, "error", {n.key: n.reason for n in plan.quarantined})
        state.quarantine_rows(plan.entity, "warning", {n.key: n.reason for n in plan.warnings})
        state.record_conflicts(run_id, [c.to_dict() for c in plan.conflicts])
        head = list(done.head)
        entries = chain(op_entries(ops, result.outcomes[done.ops :]), note_entries(plan))
        for logged in _batched(entries, chunk):
            state.log_records(run_id, logged)
            head += logged[: LOG_HEAD - len(head)]
    return CommitResult(count_plan(plan, result), head)


@dataclass
class CommitProgress:
    """What a load committed as it went: its first ``commits`` and the log of its first ``ops`` (``head`` of it)."""

    commits: int = 0
    ops: int = 0
    head: list[dict[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (staged in ``apply.json``)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any] | None) -> CommitProgress:
        """Rebuild from :meth:`to_dict` output; nothing committed when ``raw`` is None."""
        return cls(**raw) if raw else cls()


class Outcomes:
    """What the load's outcomes tell the commit of each record.

    Whether a write of it failed (and the first error given), and the SSM id and ``dateUpdated`` its confirmed SSM
    writes returned (the last one wins). Outcomes are added in plan order, as the load gives them.
    """

    def __init__(self) -> None:
        self.errors: dict[tuple[str, str], str | None] = {}  # the failed records, with their first error
        self.ssm: dict[tuple[str, str], tuple[int | None, str | None]] = {}

    def add(self, outcomes: Iterable[OpOutcome]) -> None:
        """Read more outcomes."""
        for o in outcomes:
            record = (o.entity, o.key)
            if not o.ok:
                if self.errors.get(record) is None:
                    self.errors[record] = o.error
            elif o.kind.startswith("ssm_"):
                before = self.ssm.get(record, (None, None))
                self.ssm[record] = (o.id if o.id is not None else before[0], o.date_updated or before[1])

    def failed(self, c: Commit) -> bool:
        """True when a write of the record, or of one it depends on, failed."""
        errors = self.errors
        return bool(errors) and (
            (c.entity, c.key) in errors or any((d[0], d[1]) in errors for d in c.depends)
        )

    def error(self, c: Commit) -> str:
        """Why the record's writes failed."""
        return self.errors.get((c.entity, c.key)) or "a dependent write failed"


def store_commits(
    entity: str,
    chunk: Iterable[Commit],
    outcomes: Outcomes,
    seen: dict[int, str],
    settled: set[int],
    state: StateStore,
) -> list[str]:
    """Store one chunk of commits (bindings, snapshot rows, failures); return the keys it confirmed."""
    confirmed: dict[str, dict[str, Any] | None] = {}
    released: list[str] = []
    binds: list[BindRow] = []  # written in one statement; flushed first when a failure is recorded
    for c in chunk:
        if outcomes.failed(c):
            error = outcomes.error(c)
            state.bind_many(binds)
            binds = []
            state.mark_failed(c.entity, c.key, error)
            for sid in c.ssm_ids:
                settled.discard(sid)  # a later failure of the same SSM record wins, as it happens
                state.set_pending(entity, sid, "G5", f"write failed: {error}")
            continue
        if c.entity == entity:
            if c.delete_row:
                confirmed[c.key] = None
            elif c.row is not None:
                confirmed[c.key] = c.row
        if c.binding is not None:
            made, date = outcomes.ssm.get((c.entity, c.key), (None, None))
            ssm_id = made if made is not None else c.ssm_id
            if date is None and ssm_id is not None:
                date = seen.get(int(ssm_id))
            binds.append(BindRow(c.entity, c.key, ssm_id, c.synced, date, c.binding))
        settled.update(c.ssm_ids)
        released.append(c.key)
    state.bind_many(binds)
    # Only confirmed rows are hashed and stored: a failed row keeps its previous values AND digest (G5).
    digests = committed_digests(entity, {k: r for k, r in confirmed.items() if r is not None})
    state.commit_rows(entity, {k: None if r is None else (digests[k], r) for k, r in confirmed.items()})
    return released


def op_entries(ops: Iterable[Op], outcomes: Iterable[OpOutcome]) -> Iterator[dict[str, str]]:
    """What happened to each record written (G7): each op with its outcome, in plan order."""
    for op, out in zip(ops, outcomes, strict=True):
        yield op_entry(op, out)


def op_entry(op: Op, out: OpOutcome) -> dict[str, str]:
    """The record log's entry of one op and its outcome."""
    return {
        "entity": op.entity,
        "key": op.key,
        "action": op.kind,
        "rule": op.rule,
        "outcome": "ok" if out.ok else "failed",
        "reason": op.reason if out.ok else f"{op.reason} -- {out.error}",
    }


def note_entries(plan: Plan) -> Iterator[dict[str, str]]:
    """What happened to each record the plan did not write, and why (G7): deferred, skipped, quarantined."""
    for bucket, notes in (
        ("deferred", plan.deferred),
        ("skipped", plan.skipped),
        ("quarantined", plan.quarantined),
    ):
        for n in notes:
            yield {
                "entity": n.entity,
                "key": n.key,
                "action": bucket,
                "rule": n.rule,
                "outcome": bucket,
                "reason": n.reason,
            }


def _batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """``items`` in lists of at most ``size``, read as they come."""
    it = iter(items)
    while part := list(islice(it, size)):
        yield part
