"""Full reconcile: compare Sage with the LIVE SSM records instead of the last synced values, to repair drift.

An incremental run only looks at what changed since the last one, so an edit made in SSM to a read-only record
(with an admin key), a line removed from a sales order, or a record deleted in SSM stays unnoticed. In full mode
:func:`reconcile_live` widens the plan input of one entity after the extract:

* accounts, contacts (two-way): every bound record joins the plan's scope and the echo markers are dropped, so
  every live SSM record (all were read: no watermark) is three-way merged against Sage and the last synced values.
* products, invoices (one-way): every SSM record of the entity is listed (products; sales orders and their lines)
  and each binding's merge base is replaced by the live SSM record projected onto the fields the planners send.
  The planners then send only the fields that really differ, and say why ("drift in SSM: price 12.0 -> 10.5").
  A bound record deleted in SSM (or gone) is re-created, since the API cannot restore a soft-deleted record
  (ADR 0010); a live SSM line that no Sage line accounts for is deleted.

The reconcile facts travel in the bindings of the plan input (:class:`~sage_sync.engine.bindings.Binding`, staged
as JSON between tasks): ``reconcile`` ("live": base from the live record; "gone": the record must be re-created),
``recorded`` (the synced values the state held), ``drift`` (readable text) and ``drift_fields``; an invoice
binding may carry ``stray_lines`` (SSM lines to delete or to leave alone, with the reason).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sage_sync.engine.bindings import Binding, Record, Status, StrayLine
from sage_sync.engine.inputs import PlanInput
from sage_sync.engine.plan import Plan
from sage_sync.engine.rules.invoices import LINES, header_payload, line_payload
from sage_sync.engine.rules.products import product_payload
from sage_sync.engine.sides import SsmSide
from sage_sync.engine.snapshot import compared_columns
from sage_sync.mapping.registry import registry


def reconcile_live(inp: PlanInput, ssm: SsmSide) -> int:
    """Widen ``inp`` (just extracted, with no SSM watermark) to compare both live sides; returns the scope added.

    The scope added is the number of bound records that joined the plan although Sage did not change them.
    Reads only (one listing per SSM endpoint of the entity); no write to either side.
    """
    spec = registry()[inp.entity]
    if spec.two_way:
        return _widen_two_way(inp)
    if spec.lines is not None:
        return _reconcile_invoices(inp, ssm)
    return _reconcile_products(inp, ssm)


def reconcile_summary(inp: PlanInput) -> dict[str, int]:
    """Counts for the extract's summary: records compared with the live SSM side, and those found drifting."""
    every = [*inp.bindings.values(), *inp.line_bindings.values()]
    stray = sum(len(b.stray_lines) for b in inp.bindings.values())
    return {
        "compared": sum(1 for b in every if b.reconcile),
        "drifted": sum(1 for b in every if b.drift),
        "stray_lines": stray,
    }


# --- shared -------------------------------------------------------------------------------------------------


def _ref(value: Any) -> Any:
    """A lookup as the API returns it (``{"id": 3, "value": ...}``) reduced to its id."""
    if isinstance(value, dict) and "id" in value:
        return value["id"]
    return value


def _project(record: dict[str, Any], fields: Iterable[str]) -> dict[str, Any]:
    """The live SSM record's values of ``fields``, references reduced to ids."""
    return {name: _ref(record.get(name)) for name in fields}


def _show(value: Any) -> str:
    return repr(value) if isinstance(value, str) else str(value)


def _drift(live: dict[str, Any], wanted: dict[str, Any], recorded: dict[str, Any] | None) -> dict[str, str]:
    """Fields whose live SSM value differs from Sage's AND from what the sync last wrote: edits made in SSM.

    A field that differs from Sage but still holds the last written value is a Sage change, not drift. Without
    recorded values every difference is drift.
    """
    out: dict[str, str] = {}
    for name, value in wanted.items():
        current = live.get(name)
        if current == value:
            continue
        if recorded is not None and name in recorded and recorded[name] == current:
            continue
        out[name] = f"{name} {_show(current)} -> {_show(value)}"
    return out


def _marked_live(binding: Binding, live: Record, drift: dict[str, str]) -> Binding:
    """The binding with the live values as merge base, and the drift found."""
    return binding.with_(
        recorded=binding.synced,
        synced=live,
        reconcile="live",
        drift=", ".join(drift[k] for k in sorted(drift)) if drift else None,
        drift_fields=tuple(sorted(drift)),
    )


def _marked_gone(binding: Binding, what: str, record: Record | None) -> Binding:
    """The bound SSM record was deleted in SSM (or is gone): the planner re-creates it (ADR 0010)."""
    state = "was deleted in SSM" if record is not None else "no longer exists in SSM"
    return binding.with_(
        recorded=binding.synced,
        reconcile="gone",
        status=Status.SSM_DELETED,
        drift=f"{what} {binding.ssm_id} {state}",
    )


def _join_scope(inp: PlanInput, key: str) -> int:
    """Put an unchanged Sage record in the plan's scope (an empty change list: no Sage field changed)."""
    if key in inp.updated or key in inp.created:
        return 0
    inp.updated[key] = []
    inp.unchanged = max(0, inp.unchanged - 1)
    return 1


def _bound(binding: Binding | None) -> bool:
    """True when the binding points at an SSM record the sync did not delete on purpose (Sage deleted it)."""
    return binding is not None and binding.ssm_id is not None and binding.status != Status.DELETED


def _first_live_by_ext(records: Iterable[dict[str, Any]], taken: set[int]) -> dict[str, dict[str, Any]]:
    """Live records by ``extId`` (lowest id first), leaving out the ids already bound to another record."""
    out: dict[str, dict[str, Any]] = {}
    for rec in sorted(records, key=lambda r: int(r["id"])):
        ext = rec.get("extId")
        if ext is None or rec.get("deleted") or int(rec["id"]) in taken:
            continue
        out.setdefault(str(ext), rec)
    return out


# --- two-way ------------------------------------------------------------------------------------------------


def _widen_two_way(inp: PlanInput) -> int:
    """Every bound record is three-way merged against its live SSM record (all were read: no watermark)."""
    columns = list(compared_columns(inp.entity))
    added = 0
    for key in inp.sage:
        binding = inp.live_binding(key)
        if key in inp.created or key in inp.updated or binding is None:
            continue
        inp.updated[key] = list(columns)
        inp.unchanged = max(0, inp.unchanged - 1)
        inp.bindings[key] = binding.with_(reconcile="live")
        added += 1
    # Dropping the echo marker makes the merge look at the live values even when SSM did not move.
    inp.bindings = {k: b.with_(ssm_date_updated=None) for k, b in inp.bindings.items()}
    return added


def reconciled_unchanged(inp: PlanInput, plan: Plan) -> int:
    """Two-way records a full reconcile compared with their live SSM record and found in agreement (G7).

    :func:`_widen_two_way` took them out of ``unchanged`` to put them in the plan's scope; those the plan did
    nothing with (no op, no note, no conflict) are unchanged after all, and the report counts them so.
    """
    touched = {op.key for op in plan.ops} | {c.key for c in plan.conflicts}
    for notes in (plan.deferred, plan.skipped, plan.quarantined, plan.warnings):
        touched |= {n.key for n in notes}
    return sum(
        1
        for key, binding in inp.bindings.items()
        if binding.reconcile == "live" and key in inp.updated and key not in touched
    )


# --- products -----------------------------------------------------------------------------------------------


def _reconcile_products(inp: PlanInput, ssm: SsmSide) -> int:
    """Base every bound product on its live SSM record (D1: read-only in SSM, Sage-owned fields)."""
    listed = ssm.list_changed(registry().endpoint(inp.entity), None)
    by_id = {int(r["id"]): r for r in listed}
    bound_ids = {int(b.ssm_id) for b in inp.bindings.values() if _bound(b) and b.ssm_id is not None}
    spares = _first_live_by_ext(listed, bound_ids)
    families = {ident: name for name, ident in inp.lists.product_families.items()}
    added = 0
    for key, row in inp.sage.items():
        binding = inp.bindings.get(key)
        if binding is None or not _bound(binding):
            continue
        try:
            payload = product_payload(row)
        except ValueError:
            continue  # the planner quarantines it with the reason (D6)
        record = by_id.get(int(binding.ssm_id or 0))
        added += _join_scope(inp, key)
        if record is None or record.get("deleted"):
            inp.bindings[key] = _marked_gone(binding, "product", record)
            spare = spares.get(key)
            if spare is not None:
                inp.ssm_by_ext[key] = spare
            continue
        recorded = binding.synced
        live = _project(record, payload)
        live["family"] = families.get(_ref(record.get("familyId")))
        # SSM cannot tell which bytes its picture holds (D3): the picture stays compared with the state's hash.
        live["picture_sha256"] = (recorded or {}).get("picture_sha256")
        wanted = dict(payload)
        family = row.get("family_name") or row.get("family_code")
        if family:  # the planner never clears a family Sage does not set
            wanted["family"] = family
        inp.bindings[key] = _marked_live(binding, live, _drift(live, wanted, recorded))
    return added


# --- invoices -----------------------------------------------------------------------------------------------


def _order_of(line: dict[str, Any]) -> int | None:
    order = _ref(line.get("salesOrderId"))
    return int(order) if order is not None else None


def _reconcile_invoices(inp: PlanInput, ssm: SsmSide) -> int:
    """Base every bound sales order and line on its live SSM record; find lines no Sage line accounts for (I1, I5)."""
    orders = ssm.list_changed(registry().endpoint(inp.entity), None)
    lines = ssm.list_changed(registry().endpoint(LINES), None)
    orders_by_id = {int(r["id"]): r for r in orders}
    lines_by_id = {int(r["id"]): r for r in lines}
    live_lines: dict[int, list[dict[str, Any]]] = {}
    for rec in lines:
        order = _order_of(rec)
        if order is not None and not rec.get("deleted"):
            live_lines.setdefault(order, []).append(rec)
    bound_orders = {int(b.ssm_id) for b in inp.bindings.values() if _bound(b) and b.ssm_id is not None}
    spare_orders = _first_live_by_ext(orders, bound_orders)
    line_pieces: dict[str, list[str]] = {}
    for line_key, lb in inp.line_bindings.items():
        piece = lb.base.get("piece")
        if piece is not None:
            line_pieces.setdefault(str(piece), []).append(line_key)
    added = 0
    for key, row in inp.sage.items():
        binding = inp.bindings.get(key)
        if binding is None or not _bound(binding):
            continue
        parent = inp.parent(str(row.get("customer_code")))
        if parent is None or not parent.ready:
            continue  # the planner defers it (I6)
        added += _join_scope(inp, key)
        record = orders_by_id.get(int(binding.ssm_id or 0))
        target: int | None
        if record is None or record.get("deleted"):
            marked = _marked_gone(binding, "sales order", record)
            spare = spare_orders.get(key)
            if spare is not None:
                inp.ssm_by_ext[key] = spare
            target = int(spare["id"]) if spare is not None else None
        else:
            wanted = header_payload(row, inp.lists)
            wanted["accountId"] = int(parent.ssm_id or 0)
            live = _project(record, wanted)
            marked = _marked_live(binding, live, _drift(live, wanted, binding.synced))
            target = int(record["id"])
        stray = _reconcile_lines(inp, key, row, target, lines_by_id, live_lines, line_pieces.get(key, []))
        stray += _left_behind(int(binding.ssm_id or 0), target, live_lines)
        inp.bindings[key] = marked.with_(stray_lines=tuple(stray)) if stray else marked
    # Invoices Sage no longer has: their lines must not outlive them in SSM (the planner applies the G4 guard).
    for key, binding in list(inp.bindings.items()):
        if key in inp.sage or binding.ssm_id is None:
            continue
        stray = [
            _stray(rec, f"its invoice {key} is no longer in Sage")
            for rec in live_lines.get(int(binding.ssm_id), [])
        ]
        if stray:
            inp.bindings[key] = binding.with_(stray_lines=tuple(stray))
    return added


def _reconcile_lines(
    inp: PlanInput,
    key: str,
    row: Record,
    target: int | None,
    lines_by_id: dict[int, Record],
    live_lines: dict[int, list[Record]],
    removed: list[str],
) -> list[StrayLine]:
    """Base the lines of invoice ``key`` on the live lines of sales order ``target``; return the stray ones.

    ``target`` is None when the sales order is re-created: every line then goes with it. ``removed`` are the line
    keys bound to this invoice (the planner deletes those Sage no longer has).
    """
    sage_lines = {str(line["line_id"]): line for line in row.get("lines") or []}
    under = live_lines.get(target, []) if target is not None else []
    spare: dict[str, dict[str, Any]] = {}
    for rec in sorted(under, key=lambda r: int(r["id"])):
        if rec.get("extId") is not None:
            spare.setdefault(str(rec["extId"]), rec)
    claimed: set[int] = set()
    for line_key in removed:
        old = inp.line_bindings.get(line_key)
        if line_key not in sage_lines and old is not None and old.ssm_id is not None:
            claimed.add(int(old.ssm_id))
    for line_key, line in sorted(sage_lines.items()):
        lb = inp.line_bindings.get(line_key)
        if lb is None or lb.ssm_id is None:
            inp.lines_by_ext.pop(line_key, None)
            found = spare.get(line_key)
            if found is not None and int(found["id"]) not in claimed:
                inp.lines_by_ext[line_key] = found  # a line created by a run whose response was lost: adopt
                claimed.add(int(found["id"]))
            continue
        record = lines_by_id.get(int(lb.ssm_id))
        if (
            target is not None
            and record is not None
            and not record.get("deleted")
            and _order_of(record) == target
        ):
            wanted = line_payload(line, inp.products)
            live = {**_project(record, wanted), "piece": key}
            inp.line_bindings[line_key] = _marked_live(lb, live, _drift(live, wanted, lb.synced))
            claimed.add(int(record["id"]))
            continue
        found = spare.get(line_key)
        if found is not None and int(found["id"]) not in claimed:
            # Another live line of the same sales order carries this line's extId: adopt it instead.
            inp.line_bindings.pop(line_key)
            inp.lines_by_ext[line_key] = found
            claimed.add(int(found["id"]))
            continue
        if target is None:
            why = "its sales order is re-created"
        elif record is None:
            why = f"line {lb.ssm_id} no longer exists in SSM"
        elif record.get("deleted"):
            why = f"line {lb.ssm_id} was deleted in SSM"
        else:
            why = f"line {lb.ssm_id} sits on another sales order ({_order_of(record)})"
        inp.lines_by_ext.pop(line_key, None)
        inp.line_bindings[line_key] = Binding(
            status=Status.SSM_DELETED, recorded=lb.synced, reconcile="gone", drift=why
        )
    stray: list[StrayLine] = []
    for rec in under:
        if int(rec["id"]) in claimed:
            continue
        ext = rec.get("extId")
        if ext is None:
            stray.append(_stray(rec, "it has no extId (not written by the sync)", delete=False))
        elif str(ext) in sage_lines:
            stray.append(_stray(rec, f"it duplicates line {ext} of invoice {key}"))
        else:
            stray.append(_stray(rec, f"line {ext} is not on invoice {key} in Sage"))
    return stray


def _left_behind(previous: int, target: int | None, live_lines: dict[int, list[Record]]) -> list[StrayLine]:
    """Live lines of a sales order deleted in SSM and replaced: they go with it."""
    if previous == target:
        return []
    return [
        _stray(rec, f"its sales order {previous} was deleted in SSM") for rec in live_lines.get(previous, [])
    ]


def _stray(rec: Record, why: str, *, delete: bool = True) -> StrayLine:
    """An SSM line no Sage line accounts for: deleted (or, without an extId, left alone and reported)."""
    ident = int(rec["id"])
    return StrayLine(ident, f"ssm:{ident}", rec.get("extId"), delete, why)
