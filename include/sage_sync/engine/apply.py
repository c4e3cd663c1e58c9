"""The load step: execute a plan against both sides and report one outcome per op (G5, G6).

Sage writes go first, so a record created in SSM (C4, K1) reaches SSM's ``extId`` only once its Sage row exists;
an SSM op of a record whose Sage op failed is not attempted. SSM writes go in bulk calls of the entity's size.
A call that raises marks all its items failed: the state then keeps them as they were and the next run plans
them again (a write that applied anyway is recognised then, by binding, reserved code or ``extId``).
Create calls are independent (each item makes its own record): up to the side's ``parallel_calls`` are in flight
at once (the rate limit still paces them), and their outcomes are recorded in plan order as if they had run one
after the other. Updates and deletes go one call after the other, so two ops of one record apply in plan order.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from sage_sync.engine.codec import key_fields
from sage_sync.engine.plan import Op, Plan, fields_dict
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
        """JSON-ready form."""
        return {
            "entity": self.entity,
            "outcomes": [fields_dict(o) for o in self.outcomes],
            "api_calls": self.api_calls,
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> ApplyResult:
        """Rebuild from :meth:`to_dict` output."""
        return cls(raw["entity"], [OpOutcome(**o) for o in raw["outcomes"]], int(raw.get("api_calls", 0)))


def _fail(op: Op, error: str) -> OpOutcome:
    return OpOutcome(op.kind, op.entity, op.key, False, op.ssm_id, None, error)


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


class _Applier:
    def __init__(self, plan: Plan, sage: SageSide, ssm: SsmSide, known_ids: dict[str, int]) -> None:
        self.plan, self.sage, self.ssm = plan, sage, ssm
        self.ids = dict(known_ids)
        self.outcomes: dict[int, OpOutcome] = {}
        self.failed_keys: set[tuple[str, str]] = set()

    def record(self, index: int, outcome: OpOutcome) -> None:
        self.outcomes[index] = outcome
        if not outcome.ok:
            self.failed_keys.add((outcome.entity, outcome.key))
        elif outcome.kind == "ssm_create" and outcome.id is not None:
            self.ids[f"{outcome.entity}|{outcome.key}"] = outcome.id

    def batch(self, indexed: list[tuple[int, Op]], call: Any, size: int, workers: int = 1) -> None:
        """Send ``indexed`` in calls of ``size`` items, ``workers`` calls at once; record outcomes in order."""
        parts = [indexed[i : i + size] for i in range(0, len(indexed), size)]

        def send(part: list[tuple[int, Op]]) -> Any:
            try:
                return call([op for _, op in part])
            except Exception as exc:  # noqa: BLE001 - any transport error fails the batch; the state keeps it
                return exc

        if workers > 1 and len(parts) > 1:
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ssm-bulk") as pool:
                answers = list(pool.map(send, parts))
        else:
            answers = [send(part) for part in parts]
        for part, answer in zip(parts, answers, strict=True):
            if isinstance(answer, Exception):
                log.warning("%s call failed for %d item(s): %s", part[0][1].kind, len(part), answer)
                for i, op in part:
                    self.record(i, _fail(op, f"{type(answer).__name__}: {answer}"))
                continue
            for (i, op), res in zip(part, answer, strict=True):
                self.record(i, _from(op, res))

    def resolve(self, op: Op) -> dict[str, Any] | None:
        fields = dict(op.fields)
        for name, (entity, label) in op.refs.items():
            if entity == "productFamilies":
                fields[name] = self.ssm.ensure_product_family(label)
                continue
            ident = self.ids.get(f"{entity}|{label}")
            if ident is None:
                return None
            fields[name] = ident
        return fields

    def run(self) -> None:
        ops = list(enumerate(self.plan.ops))
        for kind in ("sage_insert", "sage_update"):
            items = [(i, op) for i, op in ops if op.kind == kind]
            if not items:
                continue
            entity = items[0][1].entity
            if kind == "sage_insert":
                self.batch(items, lambda part, e=entity: self.sage.insert(e, [op.fields for op in part]), 500)
            else:
                self.batch(
                    items,
                    lambda part, e=entity: self.sage.update(
                        e, [key_fields(e, op.key) for op in part], [op.fields for op in part]
                    ),
                    500,
                )
        # The plan's own entity first: invoice lines reference the sales orders created just before them.
        entities = sorted(
            {op.entity for _, op in ops if op.kind.startswith("ssm_")},
            key=lambda e: (e != self.plan.entity, e),
        )
        for entity in entities:
            self.ssm_ops(
                entity, [(i, op) for i, op in ops if op.entity == entity and op.kind.startswith("ssm_")]
            )

    def ssm_ops(self, entity: str, items: list[tuple[int, Op]]) -> None:
        point = registry().endpoint(entity)
        size = registry().bulk_limit(entity)
        ready: dict[str, list[tuple[int, Op]]] = {"ssm_create": [], "ssm_update": [], "ssm_delete": []}
        resolved: dict[int, dict[str, Any]] = {}
        for i, op in items:
            if (op.entity, op.key) in self.failed_keys:
                self.record(i, _fail(op, "not attempted: an earlier write of this record failed"))
                continue
            try:
                fields = self.resolve(op)
            except Exception as exc:  # noqa: BLE001 - a failed value-list call fails only this op
                self.record(i, _fail(op, f"{type(exc).__name__}: {exc}"))
                continue
            if fields is None:
                self.record(i, _fail(op, f"reference not resolved: {op.refs}"))
                continue
            resolved[id(op)] = fields
            ready[op.kind].append((i, op))
        # Each create makes its own record: several create calls may be in flight at once. Updates and deletes go
        # one call after the other (two ops of one record apply in plan order).
        self.batch(
            ready["ssm_create"],
            lambda part: self.ssm.bulk_create(point, [resolved[id(op)] for op in part]),
            size,
            self.ssm.parallel_calls(),
        )
        self.batch(
            ready["ssm_update"],
            lambda part: self.ssm.bulk_update(point, [(int(op.ssm_id), resolved[id(op)]) for op in part]),
            size,
        )
        self.batch(
            ready["ssm_delete"],
            lambda part: self.ssm.soft_delete(point, [int(op.ssm_id) for op in part]),
            size,
        )
        for i, op in ready["ssm_create"] + ready["ssm_update"]:
            if op.picture and self.outcomes[i].ok:
                self.upload(i, op)

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
    before = ssm.api_calls()
    applier = _Applier(plan, sage, ssm, known_ids or {})
    applier.run()
    outcomes = [applier.outcomes[i] for i in range(len(plan.ops))]
    return ApplyResult(plan.entity, outcomes, ssm.api_calls() - before)
