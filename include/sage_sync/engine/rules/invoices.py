"""Invoices: Sage F_DOCENTETE/F_DOCLIGNE -> SSM sales orders and lines, one way, read-only (I1-I6, G4).

Invoices are keyed by piece, so posting (DO_Type 6 -> 7) is an update (I1). Lines are bound one by one
(entity ``invoice_lines``) and compared with what was last written, so only changed lines are sent.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from typing import Any

from sage_sync.engine.bindings import Binding, BindingScope, Record, Status
from sage_sync.engine.config import SyncConfig
from sage_sync.engine.inputs import PlanInput
from sage_sync.engine.plan import Commit, Note, Op, Plan, PlanSpool
from sage_sync.engine.rules.common import (
    describe,
    guard_deletions,
    plan_orphans,
    plan_sage_deletion,
    withheld,
)
from sage_sync.engine.rules.products import compared_only, drift_prefix
from sage_sync.engine.snapshot import SageLines
from sage_sync.mapping import transforms as tf
from sage_sync.mapping.registry import registry

ENTITY = "invoices"
#: The state's name for the bindings of invoice lines (from the entity registry).
LINES = str(registry()[ENTITY].lines_entity)


def header_payload(row: dict[str, Any], lists: tf.ValueLists) -> dict[str, Any]:
    """The SSM sales order of an invoice (I4 number, I5 read-only and kind); ``accountId`` is a reference."""
    status, kind = tf.invoice_kind(row.get("provenance"), lists)
    piece = str(row["piece"])
    return {
        "extId": piece,
        "reference": piece,
        "Z_Sage50InvoiceId": piece,
        "Z_InvoiceDate": (str(row["date"])[:10] if row.get("date") else None),
        "comment": row.get("customer_ref"),
        "statusId": status,
        "Z_DocType": kind,
        "Z_TotalHT": row.get("total_ht"),
        "total": row.get("total_ttc"),
        "Z_TotalTTC": row.get("total_ttc"),
        "readOnly": True,
    }


def line_payload(line: dict[str, Any], products: dict[str, int]) -> dict[str, Any]:
    """The SSM sales order line of an invoice line (integer quantity plus the exact Z_Quantity)."""
    quantity, exact = tf.quantity_to_ssm(line.get("quantity"))
    ref = line.get("article_ref")
    return {
        "extId": str(line["line_id"]),
        "productId": products.get(str(ref)) if ref else None,
        "description": line.get("designation"),
        "quantity": quantity,
        "Z_Quantity": exact,
        "price": line.get("unit_price"),
        "discount1": line.get("discount"),
        "total": line.get("amount_ht"),
        "order": line.get("position"),
    }


def plan_invoices(inp: PlanInput, config: SyncConfig, spool: PlanSpool | None = None) -> Plan:
    """Plan one run of invoices (see the module docstring); with a ``spool``, settled invoice by invoice."""
    return _Planner(inp, config, spool).run()


class _Planner:
    """One run of invoices: each invoice in scope is a header, its lines, and the lines it no longer has."""

    def __init__(self, inp: PlanInput, config: SyncConfig, spool: PlanSpool | None) -> None:
        self.inp, self.config = inp, config
        self.plan = Plan(ENTITY, unchanged=inp.unchanged, spool=spool)
        self.may_delete = guard_deletions(inp, config, self.plan)
        self.stamp = {"Z_Synced": True, "Z_SyncedAt": inp.run_at}
        # Line bindings grouped by invoice once: scanning them all per invoice is quadratic at 100k lines.
        self.bound_lines: dict[str, list[tuple[str, Binding]]] = {}
        for line_key, binding in inp.line_bindings.items():
            piece = binding.base.get("piece")
            if piece is not None:
                self.bound_lines.setdefault(str(piece), []).append((line_key, binding))
        self.scope = set(inp.created) | set(inp.updated) | set(inp.deleted)

    def run(self) -> Plan:
        for key in sorted(self.scope):
            self.invoice(key)
            self.plan.settle()  # an invoice's ops and commits are final once it is planned
        for key, binding in sorted(self.inp.bindings.items()):
            if key not in self.inp.sage and binding.stray_lines:
                _plan_stray_lines(self.plan, key, binding, may_delete=self.may_delete)
        _link_lines_to_new_products(self.plan, self.inp, self.scope)
        plan_orphans(self.plan, self.inp, self.may_delete, "I2", "invoice")
        return self.plan

    def invoice(self, key: str) -> None:
        inp, plan = self.inp, self.plan
        row = inp.sage.get(key)
        live = inp.live_binding(key)
        if row is None:
            self.deleted(key, live)
            return
        customer = str(row.get("customer_code"))
        parent = inp.parent(customer)
        if parent is None or not parent.ready:
            plan.deferred.append(
                Note(ENTITY, key, "I6", f"customer {customer} is not in SSM yet: invoice waits")
            )
            return
        ops_before = len(plan.ops)
        payload = header_payload(row, inp.lists)
        payload["accountId"] = int(parent.ssm_id or 0)
        sid = self.header(key, payload, live)
        depends = self.lines(key, row, sid)
        depends += self.removed_lines(key, row)
        binding = inp.binding(key)
        # Stray lines are deleted independently: a failed delete must not undo the header's (re-)creation.
        _plan_stray_lines(plan, key, binding, may_delete=True)
        # The committed row keeps the lines' digest, not the lines: each line has its own binding (ADR 0018).
        header = {k: v for k, v in row.items() if k != "lines"}
        plan.commits.append(
            Commit(ENTITY, key, row=header, synced=payload, ssm_id=sid, binding="ok", depends=depends)
        )
        if compared_only(inp, key) and len(plan.ops) == ops_before:
            plan.unchanged += 1  # compared with the live SSM records by a full reconcile: no drift

    def deleted(self, key: str, live: Binding | None) -> None:
        """I2: the sales order is soft-deleted, and its lines with it."""
        plan_sage_deletion(self.plan, key, live, self.may_delete, "I2", ("invoice", "sales order"))
        if live is not None and self.may_delete:
            # The header's commit waits for its lines: a failed line delete keeps the invoice in the snapshot, so
            # the next run deletes again (deleting twice is harmless) until every line is gone.
            header_commit = self.plan.commits[-1]
            header_commit.depends = _delete_lines_of_deleted_invoice(
                self.plan, key, self.bound_lines.get(key, [])
            )

    def header(self, key: str, payload: Record, live: Binding | None) -> int | None:
        """Create or update the sales order (I1, I3, I4, I5); returns its SSM id when known before the load."""
        inp, plan = self.inp, self.plan
        binding = inp.binding(key)
        found = inp.ssm_by_ext.get(key)
        if live is None and found is None:
            fields = {
                **payload,
                **self.stamp,
                "branchId": self.config.default_branch_id,
                "salesRepId": self.config.admin_user_id,
            }
            noun = "credit note" if payload["Z_DocType"] == tf.CREDIT_NOTE else "invoice"
            if binding.drift:
                reason = f"{noun} {key}: {drift_prefix(binding)}re-create the read-only sales order (I5)"
                rule = "I5"
            else:
                reason = f"new {noun} {key}: create the read-only sales order"
                rule = "I1"
            plan.ops.append(Op("ssm_create", ENTITY, key, rule, reason, fields=fields))
            return None
        if live is not None:
            sid, compare = int(live.ssm_id or 0), live.base
        else:
            assert found is not None
            sid, compare = int(found["id"]), found
        fields = {k: v for k, v in payload.items() if _value(compare.get(k)) != v}
        # I1 + I3: a header change with no SSM field of its own (posting 6 -> 7, a payment) still updates the sales
        # order, so SSM shows when the invoice was last synced. Line-only changes go to the lines alone.
        header_changes = [f for f in inp.updated.get(key, []) if f != "lines_digest"]
        if not fields and not header_changes:
            return sid
        drifted = set(binding.drift_fields) if live is not None else set()
        what = (
            f"update {describe(fields)}"
            if fields
            else f"{', '.join(header_changes)} changed (no SSM field of its own)"
        )
        in_sage = {k: v for k, v in fields.items() if k not in drifted}
        if drifted:
            reason = f"invoice {key}: {drift_prefix(binding)}restore it (I5)"
            if in_sage or header_changes:
                reason += f"; changed in Sage: update {describe(in_sage)}"
            reason += "; mark synced (I3)"
        elif found is not None and live is None and binding.drift:
            reason = (
                f"invoice {key}: {drift_prefix(binding)}adopt sales order {sid}: {what}; mark synced (I3)"
            )
        else:
            reason = f"invoice {key} changed in Sage: {what}; mark synced (I3)"
        rule = "I5" if drifted else "I1"
        plan.ops.append(
            Op(
                "ssm_update",
                ENTITY,
                key,
                rule,
                reason,
                ssm_id=sid,
                fields={**fields, **self.stamp},
            )
        )
        return sid

    def lines(self, key: str, row: Record, sid: int | None) -> list[list[str]]:
        """Create or update each line of invoice ``key``; returns the ``depends`` entries of the header's commit."""
        depends: list[list[str]] = []
        lines = {str(line["line_id"]): line for line in row.get("lines") or []}
        for line_key, line in sorted(lines.items()):
            if self.line(key, line_key, line, sid):
                depends.append([LINES, line_key])
        return depends

    def line(self, key: str, line_key: str, line: Record, sid: int | None) -> bool:
        """Plan one line (I1); True when its commit is planned (the header then waits for it)."""
        inp, plan = self.inp, self.plan
        header_ref = [ENTITY, key]
        lp = line_payload(line, inp.products)
        lb = inp.line_bindings.get(line_key)
        lsynced = {**lp, "piece": key}
        found_line = inp.lines_by_ext.get(line_key)
        if (lb is None or lb.ssm_id is None) and found_line is not None:
            # A line created by a run whose response was lost: adopt it instead of creating a duplicate.
            lb = Binding(int(found_line["id"]), {k: _value(found_line.get(k)) for k in lp})
            lp = {**lp, "salesOrderId": sid} if sid is not None else lp
        if lb is None or lb.ssm_id is None:
            drift = lb.drift if lb is not None else None
            plan.ops.append(
                Op(
                    "ssm_create",
                    LINES,
                    line_key,
                    "I5" if drift else "I1",
                    f"line {line_key} of invoice {key}: "
                    + (f"{drift_prefix(lb)}re-create it" if drift else "create"),
                    # The sales order's id when known; else it comes from this run's create.
                    fields=lp if sid is None else {**lp, "salesOrderId": sid},
                    refs={"salesOrderId": header_ref} if sid is None else {},
                )
            )
        else:
            changed = {k: v for k, v in lp.items() if lb.base.get(k) != v}
            if not changed:
                if found_line is not None and inp.line_bindings.get(line_key) is None:
                    plan.commits.append(
                        Commit(LINES, line_key, synced=lsynced, ssm_id=lb.ssm_id, binding="ok")
                    )
                return False
            drifted = bool(lb.drift_fields)
            plan.ops.append(
                Op(
                    "ssm_update",
                    LINES,
                    line_key,
                    "I5" if drifted else "I1",
                    f"line {line_key} of invoice {key}: {drift_prefix(lb)}restore it"
                    if drifted
                    else f"line {line_key} of invoice {key} changed",
                    ssm_id=lb.ssm_id,
                    fields=changed,
                )
            )
        plan.commits.append(
            Commit(
                LINES,
                line_key,
                synced=lsynced,
                ssm_id=None if lb is None else lb.ssm_id,
                binding="ok",
                depends=[header_ref],
            )
        )
        return True

    def removed_lines(self, key: str, row: Record) -> list[list[str]]:
        """Soft-delete the bound lines invoice ``key`` no longer has (I1); returns their ``depends`` entries."""
        present = {str(line["line_id"]) for line in row.get("lines") or []}
        depends: list[list[str]] = []
        for line_key, old in sorted(self.bound_lines.get(key, []), key=lambda item: item[0]):
            if line_key in present or old.status == Status.DELETED:
                continue
            sid = int(old.ssm_id or 0)
            reason = f"line {line_key} removed from invoice {key}"
            self.plan.ops.append(Op("ssm_delete", LINES, line_key, "I1", reason, ssm_id=sid))
            self.plan.commits.append(Commit(LINES, line_key, ssm_id=sid, binding="deleted"))
            depends.append([LINES, line_key])
        return depends


def _lines_to_link(inp: PlanInput, scope: set[str]) -> Iterator[tuple[str, str, str, int, Binding]]:
    """The synced lines of invoices out of ``scope`` whose article's product is in SSM but not on the line yet.

    Yields (invoice key, line key, article reference, product id, line binding). Only invoices with a loaded line
    binding are looked at (the extract loads those :func:`line_bindings_read` names, not a million lines).
    """
    pieces = {str(b.base["piece"]) for b in inp.line_bindings.values() if b.base.get("piece") is not None}
    for key in sorted(pieces - scope):
        row = inp.sage.get(key)
        if row is None or inp.live_binding(key) is None:
            continue
        for line in row.get("lines") or []:
            ref = line.get("article_ref")
            product = inp.products.get(str(ref)) if ref else None
            line_key = str(line["line_id"])
            lb = inp.line_bindings.get(line_key) or Binding()
            if product is None or lb.ssm_id is None or lb.status != Status.OK:
                continue
            if lb.base.get("productId") != product:
                yield key, line_key, str(ref), product, lb


def _link_lines_to_new_products(plan: Plan, inp: PlanInput, scope: set[str]) -> None:
    """G5: set ``productId`` on synced lines written while their article was not in SSM yet (I1).

    A line is written with ``productId`` null when its article's product is not bound yet (its create failed or
    is still to come). The invoice itself may not change again, so the lines of invoices out of this run's scope
    are checked here: once the product is bound, the line is updated with its id.
    """
    for key, line_key, ref, product, lb in _lines_to_link(inp, scope):
        reason = f"line {line_key} of invoice {key}: product {ref} is now in SSM: link it"
        sid = int(lb.ssm_id or 0)
        plan.ops.append(
            Op("ssm_update", LINES, line_key, "I1", reason, ssm_id=sid, fields={"productId": product})
        )
        lsynced = {**lb.base, "productId": product}
        plan.commits.append(Commit(LINES, line_key, synced=lsynced, ssm_id=sid, binding="ok"))


#: Whether the planner reads a stored line binding: ``(line key, synced values) -> bool``.
LineTest = Callable[[str, Record | None], bool]


def line_bindings_read(inp: PlanInput, lines: SageLines) -> tuple[BindingScope, LineTest]:
    """Which line bindings the planner reads (the rest of a million are not loaded, ADR 0018).

    Those of the changed and deleted invoices (their current lines, and the bound lines they no longer have), and
    the synced lines whose article's product is in SSM but not on the line (:func:`_link_lines_to_new_products`).
    The state selects the candidates (their keys, their invoice, or a ``productId`` that is empty or no live
    product's); the test returned decides among them.
    """
    scope = set(inp.created) | set(inp.updated) | set(inp.deleted)
    current = set(lines.line_ids(inp.sage, scope))
    candidates = BindingScope(
        keys=frozenset(current),
        values=(("piece", frozenset(scope)),),
        links=(("productId", "products"),),
    )

    @functools.cache
    def articles() -> dict[str, Any]:
        """Line -> article ref, made when first needed (a first load, with no line bound, never needs it)."""
        return lines.by_line("line_id", "article_ref")

    def read(line_key: str, synced: Record | None) -> bool:
        if line_key in current:
            return True
        if synced is None:
            return False
        if synced.get("piece") is not None and str(synced["piece"]) in scope:
            return True
        refs = articles()
        product = inp.products.get(str(refs[line_key])) if line_key in refs else None
        return product is not None and synced.get("productId") != product

    return candidates, read


def read_beyond_changes(inp: PlanInput) -> set[str]:
    """The invoices the planner reads although Sage did not change them: those with a line to link (I1, G5)."""
    scope = set(inp.created) | set(inp.updated) | set(inp.deleted)
    return {key for key, *_ in _lines_to_link(inp, scope)}


def _plan_stray_lines(plan: Plan, key: str, binding: Binding, *, may_delete: bool) -> None:
    """Full reconcile: delete the live SSM lines no Sage line of invoice ``key`` accounts for (I1, I5).

    Lines without an ``extId`` were not written by the sync: they are reported, not deleted (ADR 0010).
    """
    for stray in binding.stray_lines:
        sid = stray.ssm_id
        where = f"drift in SSM: line {sid} of the sales order of invoice {key}: {stray.reason}"
        if not stray.delete:
            plan.skipped.append(Note(LINES, stray.key, "I5", f"{where}: left alone", ssm_id=sid))
        elif not may_delete:
            withheld(plan, LINES, stray.key, "I1")
        else:
            plan.ops.append(Op("ssm_delete", LINES, stray.key, "I5", f"{where}: delete it", ssm_id=sid))


def _value(value: Any) -> Any:
    if isinstance(value, dict) and "id" in value:
        return value["id"]
    return value


def _delete_lines_of_deleted_invoice(
    plan: Plan, key: str, lines: list[tuple[str, Binding]]
) -> list[list[str]]:
    """I2: the lines of an invoice deleted in Sage are soft-deleted with their sales order, not left live under it.

    Returns the ``depends`` entries of the lines deleted.
    """
    deleted: list[list[str]] = []
    for line_key, old in sorted(lines, key=lambda item: item[0]):
        if not old.live:
            continue
        sid = int(old.ssm_id or 0)
        reason = f"line {line_key} of invoice {key} deleted in Sage: soft-delete SSM line {sid}"
        plan.ops.append(Op("ssm_delete", LINES, line_key, "I2", reason, ssm_id=sid))
        plan.commits.append(Commit(LINES, line_key, ssm_id=sid, binding="deleted"))
        deleted.append([LINES, line_key])
    return deleted
