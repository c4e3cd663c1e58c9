"""Accounts: customers (Sage-mastered, read-only in SSM) and prospects (two-way) in one SSM table (P4).

Rules: C1 key and adoption, C2 read-only, C3 deletion, C4 creation in SSM, C5 owner, C6 SALES_REP, C7 mastered
by Sage, P1 both ways, P2 conversion both ways, P3 deletion, G2 three-way merge, G4 deletion guard.
"""

from __future__ import annotations

from typing import Any

from sage_sync.engine.bindings import Binding, Pair, Record, Status
from sage_sync.engine.codec import Spec, UnmappedValue, from_ssm, mapping, ssm_scalar, synced_specs
from sage_sync.engine.config import SyncConfig
from sage_sync.engine.inputs import PlanInput
from sage_sync.engine.merge import differing, ssm_payload, three_way
from sage_sync.engine.plan import Commit, Conflict, Note, Op, Plan
from sage_sync.engine.rules.common import (
    Reservations,
    describe,
    guard_deletions,
    insert_in_sage_and_write_back,
    pair_ssm,
    plan_orphans,
    quarantine_ssm_values,
    sage_problems,
    withheld,
)
from sage_sync.mapping import transforms as tf

ENTITY = "accounts"


def account_specs() -> list[Spec]:
    """The synced account fields (everything mapped to SSM except the key, which is ``extId``)."""
    return synced_specs(mapping(ENTITY), skip=("code",))


def _kind(is_prospect: Any) -> str:
    return "prospect" if is_prospect == 1 else "customer"


def _spec_values(specs: list[Spec], record: dict[str, Any]) -> dict[str, Any]:
    return {s.name: record.get(s.name) for s in specs}


def _ssm_to_canonical(specs: list[Spec], rec: dict[str, Any], lists: tf.ValueLists) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for spec in specs:
        try:
            out[spec.name] = from_ssm(spec, rec.get(spec.ssm), lists)
        except UnmappedValue:
            out[spec.name] = None
    return out


class _Planner:
    def __init__(self, inp: PlanInput, config: SyncConfig) -> None:
        self.inp = inp
        self.config = config
        self.lists = inp.lists
        self.specs = account_specs()
        self.plan = Plan(ENTITY, unchanged=inp.unchanged)
        self.may_delete = guard_deletions(inp, config, self.plan)

    # --- helpers -------------------------------------------------------------------------------------------

    def note(self, bucket: list[Note], key: str, rule: str, reason: str, ssm_id: int | None = None) -> None:
        bucket.append(Note(ENTITY, key, rule, reason, ssm_id))

    def warn(self, key: str, warnings: list[str]) -> None:
        for w in warnings:
            self.note(self.plan.warnings, key, "G3", w)

    def status_fields(self, is_prospect: Any) -> dict[str, Any]:
        """StatusId and readOnly for a customer (C2: read-only) or a prospect (two-way, editable)."""
        return {"statusId": tf.status_to_ssm(is_prospect, self.lists), "readOnly": is_prospect != 1}

    def create_op(self, key: str, sage: dict[str, Any], ssm_ids: list[int]) -> None:
        payload, warnings = ssm_payload(self.specs, sage, self.lists)
        self.warn(key, warnings)
        fields = {k: v for k, v in payload.items() if v is not None}
        fields.update(self.status_fields(sage.get("is_prospect")))
        fields.update(
            {
                "extId": key,
                "branchId": self.config.default_branch_id,
                "salesRepId1": self.config.admin_user_id,
            }
        )
        customer = sage.get("is_prospect") != 1
        rule = "C1" if customer else "P1"
        reason = (
            f"new Sage {_kind(sage.get('is_prospect'))}: create the SSM account with extId {key}"
            f"{' read-only' if customer else ''}; C5 salesRepId1 = admin user {self.config.admin_user_id}"
        )
        synced = _spec_values(self.specs, sage)
        self.plan.ops.append(Op("ssm_create", ENTITY, key, rule, reason, fields=fields))
        self.plan.commits.append(Commit(ENTITY, key, row=sage, synced=synced, binding="ok", ssm_ids=ssm_ids))

    def adopt_op(self, key: str, sage: dict[str, Any], found: dict[str, Any]) -> None:
        """C1: an SSM account with this extId already exists: bind to it instead of creating a duplicate."""
        fields = differing(self.specs, sage, found, self.lists)
        status = self.status_fields(sage.get("is_prospect"))
        for name, value in status.items():
            if found.get(name) != value and not (name == "statusId" and fields.get("statusId") == value):
                fields[name] = value
        if found.get("salesRepId1") in (None, {}, 0):
            fields["salesRepId1"] = self.config.admin_user_id  # C5: only if no sales rep is set
        synced = _spec_values(self.specs, sage)
        fid = int(found["id"])
        if fields:
            reason = f"SSM account {fid} already carries extId {key}: adopt it and update {describe(fields)}"
            self.plan.ops.append(Op("ssm_update", ENTITY, key, "C1", reason, ssm_id=fid, fields=fields))
        else:
            self.note(
                self.plan.skipped, key, "C1", f"SSM account {fid} already carries extId {key} and matches"
            )
        self.plan.commits.append(
            Commit(ENTITY, key, row=sage, synced=synced, ssm_id=fid, binding="ok", ssm_ids=[fid])
        )

    # --- SSM-side pairing ----------------------------------------------------------------------------------

    def new_in_ssm(self, rec: Record) -> None:
        """A company created in SSM without extId: C4 once its code is reserved, or it stays in SSM only."""
        rid = int(rec["id"])
        try:
            status = from_ssm(self._status_spec(), rec.get("statusId"), self.lists)
        except UnmappedValue:
            status = None
        if status is None:
            reason = "company created in SSM with a status other than Client or Prospect stays in SSM only"
            self.note(self.plan.skipped, f"ssm:{rid}", "C4", reason, rid)
            return
        self.note(
            self.plan.deferred,
            f"ssm:{rid}",
            "C4",
            "company created in SSM has no reserved Sage code yet",
            rid,
        )
        self.plan.pending[rid] = "C4: no reserved code"

    def _status_spec(self) -> Spec:
        return next(s for s in self.specs if s.name == "is_prospect")

    # --- per key -------------------------------------------------------------------------------------------

    def run(self) -> Plan:
        inp = self.inp
        pairs = pair_ssm(inp, self.plan, rule="C1", noun="account", on_new=self.new_in_ssm)
        keys = sorted(set(inp.created) | set(inp.updated) | set(inp.deleted) | pairs.keyset())
        for key in keys:
            self.plan_key(key, pairs.get(key))
        plan_orphans(self.plan, inp, self.may_delete, "C3", "account")
        return self.plan

    def plan_key(self, key: str, pair: Pair) -> None:
        inp = self.inp
        sage = inp.sage.get(key)
        live = inp.live_binding(key)
        binding = inp.binding(key)
        m, x, n = pair.changed, pair.adoptable, pair.reserved
        if sage is None:
            if n is not None and key not in inp.deleted:
                self.create_in_sage(key, n)
            elif key in inp.deleted:
                self.delete(key, inp.deleted[key], live, m)
            return
        if n is not None and live is None:
            if n.get("deleted"):  # deleted in SSM after the Sage insert, before its extId was written back
                self.deleted_in_ssm(key, sage, n)
            else:
                self.finish_c4(key, sage, n)
            return
        if m is not None and m.get("deleted"):
            self.deleted_in_ssm(key, sage, m)
            return
        if binding.status == Status.SSM_DELETED and binding.ssm_id is not None:
            if sage.get("is_prospect") == 1:
                self.note(
                    self.plan.skipped, key, "P3", "prospect deleted in SSM: not re-created, not propagated"
                )
                self.plan.commits.append(Commit(ENTITY, key, row=sage))
                return
            live = None  # a customer must have a live SSM account (C1): create a new one
        if live is None:
            if x is not None:
                self.adopt_op(key, sage, x)
            else:
                self.create_op(key, sage, [])
            return
        self.update(key, sage, live, m)

    def delete(self, key: str, previous: Record, live: Binding | None, m: Record | None) -> None:
        rule = "P3" if previous.get("is_prospect") == 1 else "C3"
        if live is None or (m is not None and m.get("deleted")):
            self.plan.commits.append(
                Commit(ENTITY, key, delete_row=True, binding="deleted" if live else None)
            )
            return
        if not self.may_delete:
            withheld(self.plan, ENTITY, key, rule)
            return
        sid = int(live.ssm_id or 0)
        reason = f"{_kind(previous.get('is_prospect'))} {key} deleted in Sage: soft-delete SSM account {sid}"
        self.plan.ops.append(Op("ssm_delete", ENTITY, key, rule, reason, ssm_id=sid))
        self.plan.commits.append(Commit(ENTITY, key, delete_row=True, ssm_id=sid, binding="deleted"))

    def deleted_in_ssm(self, key: str, sage: dict[str, Any], m: dict[str, Any]) -> None:
        sid = int(m["id"])
        if sage.get("is_prospect") == 1:
            self.note(
                self.plan.skipped, key, "P3", f"prospect deleted in SSM (account {sid}): not propagated", sid
            )
            self.plan.commits.append(
                Commit(
                    ENTITY,
                    key,
                    row=sage,
                    synced=self.inp.binding(key).synced,
                    ssm_id=sid,
                    binding="ssm_deleted",
                )
            )
            return
        self.note(
            self.plan.skipped,
            key,
            "C3",
            f"customer deleted in SSM (account {sid}): not propagated to Sage",
            sid,
        )
        self.create_op(key, sage, [sid])

    def update(self, key: str, sage: Record, live: Binding, m: Record | None) -> None:
        lists, sid = self.lists, int(live.ssm_id or 0)
        base = live.base
        ssm_ids = [sid] if m is not None else []
        if base.get("is_prospect") != 1 and sage.get("is_prospect") != 1:
            # A customer at the last sync: Sage masters it (C7); SSM edits are never written back (C2).
            changed = [s.name for s in self.specs if s.name in base and _differs(s, sage, base, lists)]
            if m is not None:
                drift = differing(self.specs, sage, m, lists)
                if drift and not changed:
                    self.note(
                        self.plan.skipped,
                        key,
                        "C2",
                        f"edit in SSM of read-only customer {key} ({describe(drift)}) is not written to Sage",
                        sid,
                    )
            synced = _spec_values(self.specs, sage)
            if changed:
                payload, warnings = ssm_payload(self.specs, sage, lists)
                self.warn(key, warnings)
                reason = f"customer changed in Sage ({describe(dict.fromkeys(changed))}): overwrite Sage-owned fields"
                self.plan.ops.append(Op("ssm_update", ENTITY, key, "C7", reason, ssm_id=sid, fields=payload))
            self.plan.commits.append(
                Commit(ENTITY, key, row=sage, synced=synced, ssm_id=sid, binding="ok", ssm_ids=ssm_ids)
            )
            return
        # Two-way since the last sync (a prospect then): three-way merge, then conversion if it became a customer.
        winner = self.config.winner(ENTITY)
        merged = three_way(self.specs, sage, m, base, lists, winner)
        self.warn(key, merged.warnings)
        for f, s_val, m_val, who in merged.conflicts:
            self.plan.conflicts.append(Conflict(ENTITY, key, f, s_val, m_val, who))
        for text in merged.unmapped:
            self.note(self.plan.skipped, key, "C4", f"SSM {text}: the status stays in SSM only", sid)
        to_sage = dict(merged.to_sage)
        problems = sage_problems(ENTITY, key, self.specs, to_sage)
        if problems:
            for p in problems:
                self.note(self.plan.quarantined, key, "G3", p, sid)
            self.plan.pending[sid] = "G3: quarantined SSM values"
            return
        final = {**sage, **to_sage}
        to_ssm = dict(merged.to_ssm)
        converted = final.get("is_prospect") != 1
        if converted:
            status = self.status_fields(0)
            current = (
                m
                if m is not None
                else {
                    "statusId": tf.status_to_ssm(base.get("is_prospect"), lists),
                    "readOnly": base.get("is_prospect") != 1,
                }
            )
            for name, value in status.items():
                if _scalar(current.get(name)) != value:
                    to_ssm[name] = value
        if to_sage:
            rule = "P2" if to_sage.get("is_prospect") == 0 else "P1"
            reason = (
                "prospect converted to customer in SSM: convert it in Sage"
                if rule == "P2"
                else f"prospect edited in SSM: write {describe(to_sage)} to Sage"
            )
            self.plan.ops.append(Op("sage_update", ENTITY, key, rule, reason, fields=to_sage))
        if to_ssm:
            was = base.get("is_prospect") == 1 and converted
            rule = "P2" if was else "P1"
            reason = (
                "prospect became a customer: SSM account switches to Client, read-only, keeping SSM-only data"
                if was
                else f"prospect edited in Sage: update {describe(to_ssm)}"
            )
            self.plan.ops.append(Op("ssm_update", ENTITY, key, rule, reason, ssm_id=sid, fields=to_ssm))
        self.plan.commits.append(
            Commit(ENTITY, key, row=final, synced=merged.merged, ssm_id=sid, binding="ok", ssm_ids=ssm_ids)
        )

    # --- C4: companies created in SSM ----------------------------------------------------------------------

    def ssm_company(self, key: str, n: dict[str, Any]) -> dict[str, Any] | None:
        """The Sage row for a company created in SSM, or None (quarantined / skipped)."""
        rid = int(n["id"])
        values = _ssm_to_canonical(self.specs, n, self.lists)
        if values.get("is_prospect") is None:
            self.note(
                self.plan.skipped, key, "C4", "status is neither Client nor Prospect: stays in SSM only", rid
            )
            return None
        row = {
            **mapping(ENTITY).write_fixed,  # CT_Type = 0: a customer/prospect, never a supplier
            **values,
            "code": key,
            "sales_rep": tf.sales_rep_name(_scalar(n.get("salesRepId1")), self.lists),
        }
        main = mapping(ENTITY).main
        specs = [*self.specs, Spec.of(main.field("sales_rep")), Spec.of(main.field("code"))]
        problems = sage_problems(ENTITY, key, specs, row)
        if problems:
            quarantine_ssm_values(self.plan, key, rid, problems)
            return None
        return row

    def create_in_sage(self, key: str, n: dict[str, Any]) -> None:
        rid = int(n["id"])
        if n.get("deleted"):
            self.note(
                self.plan.skipped, key, "C3", f"company {rid} created then deleted in SSM: nothing to do", rid
            )
            return
        row = self.ssm_company(key, n)
        if row is None:
            return
        customer = row.get("is_prospect") == 0
        rule = "C4" if customer else "P1"
        reason = (
            f"company {rid} created in SSM as {'Client' if customer else 'Prospect'}: insert Sage "
            f"{_kind(row.get('is_prospect'))} with the reserved code {key}; C6 SALES_REP = {row.get('sales_rep')!r}"
        )
        synced = _spec_values(self.specs, row)
        insert_in_sage_and_write_back(
            self.plan,
            key,
            rule,
            reason,
            row=row,
            synced=synced,
            ssm_id=rid,
            write_back={"extId": key, **self.status_fields(row.get("is_prospect"))},
            write_back_reason=f"write the new Sage code {key} back as extId",
        )

    def finish_c4(self, key: str, sage: dict[str, Any], n: dict[str, Any]) -> None:
        """The reserved code is already in Sage (crash after the insert): only update SSM, never insert again."""
        rid = int(n["id"])
        fields = {"extId": key, **self.status_fields(sage.get("is_prospect"))}
        fields.update(differing(self.specs, sage, n, self.lists))
        fields = {k: v for k, v in fields.items() if _scalar(n.get(k)) != v}
        synced = _spec_values(self.specs, sage)
        if fields:
            reason = f"code {key} reserved for SSM company {rid} is already in Sage: update SSM only (no second insert)"
            self.plan.ops.append(Op("ssm_update", ENTITY, key, "C4", reason, ssm_id=rid, fields=fields))
        self.plan.commits.append(
            Commit(ENTITY, key, row=sage, synced=synced, ssm_id=rid, binding="ok", ssm_ids=[rid])
        )


def _scalar(value: Any) -> Any:
    if isinstance(value, dict) and "id" in value:
        return value["id"]
    return value


def _differs(spec: Spec, a: dict[str, Any], b: dict[str, Any], lists: tf.ValueLists) -> bool:
    from sage_sync.engine.codec import same_canonical

    return not same_canonical(spec, a.get(spec.name), b.get(spec.name), lists)


def reserve_codes(inp: PlanInput, keys: Reservations, config: SyncConfig) -> None:
    """C4: reserve a Sage code for each new Client/Prospect company of SSM, BEFORE any Sage insert."""
    bound = {b.ssm_id for b in inp.bindings.values() if b.ssm_id is not None}
    taken = set(inp.sage) | set(inp.reserved.values())
    template = config.code_template
    counter = f"accounts:{template}"
    for rec in inp.ssm:
        rid = int(rec["id"])
        if rec.get("extId") or rec.get("deleted") or rid in bound or str(rid) in inp.reserved:
            continue
        if tf.status_from_ssm(ssm_scalar(rec.get("statusId")), inp.lists) is None:
            continue
        if "{ssm_id" in template:
            code = template.format(ssm_id=rid)
            if code in taken:
                continue  # someone else holds this code: the plan defers the company and says so
        else:
            seq = keys.next_number(counter, after=len(taken))
            code = template.format(seq=seq)
            while code in taken:
                seq = keys.next_number(counter, after=seq)
                code = template.format(seq=seq)
        held = keys.reserve(rid, code)
        inp.reserved[str(rid)] = held
        taken.add(held)


def plan_accounts(inp: PlanInput, config: SyncConfig) -> Plan:
    """Plan one run of customers and prospects (see the module docstring for the rules)."""
    return _Planner(inp, config).run()
