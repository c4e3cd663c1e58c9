"""The load step: execute a plan against both sides and report one outcome per op (G5, G6).

Sage writes go first, so a record created in SSM (C4, K1) reaches SSM's ``extId`` only once its Sage row exists;
an op of a record whose earlier write in this load failed is not attempted. SSM writes go in bulk calls of the
entity's size; each call's references are resolved just before it is sent (one call's fields at a time in memory).
The ops are read a group (one kind on one entity) at a time from an :class:`OpSource`: the load step's is the
staged plan (:class:`~sage_sync.engine.staging.StagedOps`), so only the ops of the calls in flight are parsed. A
reference to a record of an earlier run reads the bound ids of its entity when one is first needed.
A call that raises marks all its items failed: the state then keeps them as they were and the next run plans
them again (a write that applied anyway is recognised then, by binding, reserved code or ``extId``).
Create calls are independent (each item makes its own record): up to the side's ``parallel_calls`` are in flight
at once (the rate limit still paces them), and their outcomes are recorded in plan order as if they had run one
after the other. Updates and deletes go one call after the other, so two ops of one record apply in plan order.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol

from sage_sync.engine.codec import key_fields
from sage_sync.engine.plan import Op, Plan
from sage_sync.engine.sides import ItemOutcome, SageSide, SsmSide
from sage_sync.mapping.registry import registry

log = logging.getLogger(__name__)


@dataclass(slots=True)
class OpOutcome:
    """The outcome of one op."""

    kind: str
    entity: str
    key: str
    ok: bool
    id: int | None = None
    date_updated: str | None = None
    error: str | None = None


@dataclass
class ApplyResult:
    """Every op's outcome, in plan order, and the API calls made."""

    entity: str
    outcomes: list[OpOutcome] = field(default_factory=list)
    api_calls: int = 0

    def to_dict(self) -> dict[str, Any]:
        """The form staged in ``apply.json``, for the staging's JSON writer (:func:`~sage_sync.engine.staging.dumps`).

        The outcomes stay dataclasses: the writer reads their fields directly instead of a dict built per outcome
        (3.7 -> 1.4 s for the 1.3 million outcomes of a large dossier's invoices).
        """
        return {"entity": self.entity, "outcomes": list(self.outcomes), "api_calls": self.api_calls}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> ApplyResult:
        """Rebuild from :meth:`to_dict` output."""
        return cls(raw["entity"], [OpOutcome(**o) for o in raw["outcomes"]], int(raw.get("api_calls", 0)))


def _fail(op: Op, error: str) -> OpOutcome:
    return OpOutcome(op.kind, op.entity, op.key, False, op.ssm_id, None, error)


def _fields(_: int, op: Op) -> dict[str, Any]:
    return op.fields


def _keyed_fields(_: int, op: Op) -> tuple[dict[str, Any], dict[str, Any]]:
    return key_fields(op.entity, op.key), op.fields


def _ssm_id(op: Op) -> int:
    if op.ssm_id is None:
        raise ValueError(f"{op.kind} of {op.entity} {op.key} has no SSM id")
    return int(op.ssm_id)


def _from(op: Op, out: ItemOutcome) -> OpOutcome:
    return OpOutcome(
        op.kind,
        op.entity,
        op.key,
        out.ok,
        out.id if out.id is not None else op.ssm_id,
        out.date_updated,
        out.error,
    )


#: What a call sends for one op (the fields, an id, or a pair), or ``None`` when the op fails before its call.
Payload = Callable[[int, Op], Any]


class OpSource(Protocol):
    """The ops of a plan as the load reads them: a group (one kind on one entity) at a time, in plan order."""

    def __len__(self) -> int:
        """How many ops the plan holds."""
        ...

    def groups(self) -> list[tuple[str, str]]:
        """The ``(kind, entity)`` groups the plan holds."""
        ...

    def select(self, kind: str, entity: str) -> Iterator[tuple[int, Op]]:
        """The ops of ``kind`` on ``entity`` with their positions in the plan."""
        ...


class PlanOps:
    """A plan's ops held in memory, as an :class:`OpSource` (the staged plan's is :class:`.staging.StagedOps`)."""

    def __init__(self, ops: list[Op]) -> None:
        """Read ``ops``."""
        self.ops = ops

    def __len__(self) -> int:
        """How many ops the plan holds."""
        return len(self.ops)

    def groups(self) -> list[tuple[str, str]]:
        """The ``(kind, entity)`` groups the plan holds, in the order they first appear."""
        return list(dict.fromkeys((op.kind, op.entity) for op in self.ops))

    def select(self, kind: str, entity: str) -> Iterator[tuple[int, Op]]:
        """The ops of ``kind`` on ``entity`` with their positions in the plan."""
        return ((i, op) for i, op in enumerate(self.ops) if op.kind == kind and op.entity == entity)


#: The SSM ids of an entity's live bindings, by Sage key (read when a reference first names the entity).
IdsOf = Callable[[str], Mapping[str, int]]

#: Told, in the load's thread, each time more of the plan's first ops have their final outcome: the outcomes so far
#: (by position in the plan) and how many of the first ops are final (the commit as the load goes reads them).
Watch = Callable[[Mapping[int, OpOutcome], int], None]


class _Applier:
    def __init__(
        self,
        entity: str,
        ops: OpSource,
        sage: SageSide,
        ssm: SsmSide,
        known_ids: dict[str, int],
        ids_of: IdsOf | None,
        watch: Watch | None = None,
    ) -> None:
        self.entity, self.ops, self.sage, self.ssm = entity, ops, sage, ssm
        self.ids = dict(known_ids)
        self.ids_of = ids_of
        self.read_ids: set[str] = set()  # entities whose bound ids ``ids_of`` gave
        self.outcomes: dict[int, OpOutcome] = {}
        self.failed_keys: set[tuple[str, str]] = set()
        self.watch = watch
        self.final = 0  # the plan's first ops whose outcome is final
        self.awaiting: set[int] = set()  # written products whose picture is not uploaded yet: not final

    def record(self, index: int, outcome: OpOutcome) -> None:
        self.outcomes[index] = outcome
        if not outcome.ok:
            self.failed_keys.add((outcome.entity, outcome.key))
        elif outcome.kind == "ssm_create" and outcome.id is not None:
            self.ids[f"{outcome.entity}|{outcome.key}"] = outcome.id

    def advance(self) -> None:
        """Move past the ops whose outcome is final, and tell the watcher when it moved (once per call settled)."""
        start, outcomes, awaiting = self.final, self.outcomes, self.awaiting
        while self.final in outcomes and self.final not in awaiting:
            self.final += 1
        if self.watch is not None and self.final > start:
            self.watch(outcomes, self.final)

    def batch(
        self,
        indexed: Iterable[tuple[int, Op]],
        call: Callable[[list[Any]], list[ItemOutcome]],
        size: int,
        payload: Payload,
        workers: int = 1,
    ) -> None:
        """Send ``indexed`` in calls of ``size`` items, ``workers`` calls at once; record outcomes in order.

        Each call's items are prepared (``payload``) just before it is sent, while the calls before it are in flight:
        one call's resolved fields are in memory at a time, and a record whose earlier call failed is not sent.
        """

        def send(items: list[Any]) -> Any:
            try:
                return call(items)
            except Exception as exc:  # noqa: BLE001 - any transport error fails the batch; the state keeps it
                return exc

        in_flight: deque[tuple[list[tuple[int, Op]], Any]] = deque()
        with ThreadPoolExecutor(max_workers=max(workers, 1), thread_name_prefix="ssm-bulk") as pool:
            for part, items in self.calls(indexed, payload, size):
                while len(in_flight) >= workers:
                    self.settle(*in_flight.popleft())
                if workers > 1:
                    in_flight.append((part, pool.submit(send, items)))
                else:
                    self.settle(part, send(items))
            while in_flight:
                self.settle(*in_flight.popleft())
        self.advance()  # the ops recorded failed before any call

    def calls(
        self, indexed: Iterable[tuple[int, Op]], payload: Payload, size: int
    ) -> Iterator[tuple[list[tuple[int, Op]], list[Any]]]:
        """The calls to send, ``size`` items each (the last may be short), prepared as each one is reached.

        An op of a record whose earlier write failed, or whose item cannot be made, is recorded failed and skipped.
        """
        part: list[tuple[int, Op]] = []
        items: list[Any] = []
        for i, op in indexed:
            if (op.entity, op.key) in self.failed_keys:
                self.record(i, _fail(op, "not attempted: an earlier write of this record failed"))
                continue
            try:
                item = payload(i, op)
            except Exception as exc:  # noqa: BLE001 - a failed value-list call fails only this op
                self.record(i, _fail(op, f"{type(exc).__name__}: {exc}"))
                continue
            if item is None:
                continue
            part.append((i, op))
            items.append(item)
            if len(part) == size:
                yield part, items
                part, items = [], []
        if part:
            yield part, items

    def settle(self, part: list[tuple[int, Op]], answer: Any) -> None:
        """Record the outcomes of one call (``answer`` is its item outcomes, its future, or its exception)."""
        if isinstance(answer, Future):
            answer = answer.result()
        if isinstance(answer, Exception):
            log.warning("%s call failed for %d item(s): %s", part[0][1].kind, len(part), answer)
            for i, op in part:
                self.record(i, _fail(op, f"{type(answer).__name__}: {answer}"))
            self.advance()
            return
        for (i, op), res in zip(part, answer, strict=True):
            self.record(i, _from(op, res))
        self.advance()

    def resolve(self, i: int, op: Op) -> dict[str, Any] | None:
        """The op's fields with its references replaced by SSM ids, or ``None`` (recorded failed) if one is unknown."""
        fields = dict(op.fields)
        for name, (entity, label) in op.refs.items():
            if entity == "productFamilies":
                fields[name] = self.ssm.ensure_product_family(label)
                continue
            ident = self.ids.get(f"{entity}|{label}")
            if ident is None and self.ids_of is not None and entity not in self.read_ids:
                self.read_ids.add(entity)
                for key, bound in self.ids_of(entity).items():
                    self.ids.setdefault(f"{entity}|{key}", bound)  # an id this load created wins
                ident = self.ids.get(f"{entity}|{label}")
            if ident is None:
                self.record(i, _fail(op, f"reference not resolved: {op.refs}"))
                return None
            fields[name] = ident
        return fields

    def updated(self, i: int, op: Op) -> tuple[int, dict[str, Any]] | None:
        """An update's item: the record's SSM id and its resolved fields."""
        fields = self.resolve(i, op)
        return None if fields is None else (_ssm_id(op), fields)

    def run(self) -> None:
        groups = self.ops.groups()
        for entity in dict.fromkeys(e for kind, e in groups if kind == "sage_insert"):
            self.batch(
                self.ops.select("sage_insert", entity), partial(self.sage.insert, entity), 500, _fields
            )
        for entity in dict.fromkeys(e for kind, e in groups if kind == "sage_update"):
            self.batch(
                self.ops.select("sage_update", entity), partial(self._sage_update, entity), 500, _keyed_fields
            )
        # The plan's own entity first: invoice lines reference the sales orders created just before them.
        entities = sorted(
            {e for kind, e in groups if kind.startswith("ssm_")}, key=lambda e: (e != self.entity, e)
        )
        for entity in entities:
            self.ssm_ops(entity)

    def _sage_update(
        self, entity: str, pairs: list[tuple[dict[str, Any], dict[str, Any]]]
    ) -> list[ItemOutcome]:
        return self.sage.update(entity, [k for k, _ in pairs], [f for _, f in pairs])

    def ssm_ops(self, entity: str) -> None:
        point = registry().endpoint(entity)
        size = registry().bulk_limit(entity)
        pictured: list[tuple[int, Op]] = []  # uploaded once the entity's records are written

        def noting_pictures(ops: Iterable[tuple[int, Op]]) -> Iterator[tuple[int, Op]]:
            for i, op in ops:
                if op.picture:
                    pictured.append((i, op))
                    self.awaiting.add(i)  # its outcome may still turn failed
                yield i, op

        # Each create makes its own record: several create calls may be in flight at once. Updates and deletes go
        # one call after the other (two ops of one record apply in plan order).
        ssm, select = self.ssm, self.ops.select
        creates, updates = select("ssm_create", entity), select("ssm_update", entity)
        self.batch(
            noting_pictures(creates),
            partial(ssm.bulk_create, point),
            size,
            self.resolve,
            ssm.parallel_calls(),
        )
        self.batch(noting_pictures(updates), partial(ssm.bulk_update, point), size, self.updated)
        self.batch(
            select("ssm_delete", entity), partial(ssm.soft_delete, point), size, lambda _, op: _ssm_id(op)
        )
        for i, op in pictured:
            if self.outcomes[i].ok:
                self.upload(i, op)
            self.awaiting.discard(i)
        self.advance()

    def upload(self, i: int, op: Op) -> None:
        assert op.picture is not None
        target = self.outcomes[i].id
        try:
            content = self.sage.read_picture(op.picture["path"])
            if content is None:
                raise FileNotFoundError(op.picture["path"])
            name = op.picture["path"].replace("\\", "/").rsplit("/", 1)[-1]
            self.ssm.upload_product_picture(int(target or 0), name, content, new=op.kind == "ssm_create")
        except Exception as exc:  # noqa: BLE001 - the product stays unconfirmed and is planned again
            self.outcomes[i] = OpOutcome(
                op.kind, op.entity, op.key, False, target, None, f"picture upload: {exc}"
            )
            self.failed_keys.add((op.entity, op.key))


def apply_plan(
    plan: Plan, sage: SageSide, ssm: SsmSide, known_ids: dict[str, int] | None = None
) -> ApplyResult:
    """Execute ``plan``; ``known_ids`` maps ``"entity|key"`` to bound SSM ids for references (accountId, ...)."""
    return apply_ops(plan.entity, PlanOps(plan.ops), sage, ssm, known_ids=known_ids)


def apply_ops(
    entity: str,
    ops: OpSource,
    sage: SageSide,
    ssm: SsmSide,
    *,
    known_ids: dict[str, int] | None = None,
    ids_of: IdsOf | None = None,
    watch: Watch | None = None,
) -> ApplyResult:
    """Execute the ops of ``entity``'s plan as ``ops`` gives them; one outcome per op, in plan order.

    A reference is resolved with ``known_ids`` (``"entity|key"`` -> SSM id), the ids this load created, and the ids
    ``ids_of`` gives for the referenced entity the first time one of its keys is not found in those. ``watch`` is
    told as the first ops of the plan get their final outcome (a created product's once its picture is uploaded).
    """
    before = ssm.api_calls()
    applier = _Applier(entity, ops, sage, ssm, known_ids or {}, ids_of, watch)
    applier.run()
    outcomes = [applier.outcomes[i] for i in range(len(ops))]
    return ApplyResult(entity, outcomes, ssm.api_calls() - before)
