"""Contacts: Sage F_CONTACTT people of a customer <-> SSM contacts, both ways (K1-K4, P5, G2, G4).

Only contacts of customers are synced; those of prospects wait for the conversion (P5, deferred). A contact
created in SSM on an account unknown to Sage waits until the account exists in Sage (K4, deferred).
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
    paired_keys,
    plan_orphans,
    quarantine_ssm_values,
    sage_problems,
    withheld,
)

ENTITY = "contacts"


def contact_key(account_code: str, number: int) -> str:
    """The text key (and SSM extId) of a contact: ``{CT_Num}/{CT_No}``."""
    return f"{account_code}/{int(number)}"


def split_key(key: str) -> tuple[str, int]:
    """The (account code, number) of a contact key."""
    code, _, number = key.rpartition("/")
    return code, int(number)


def contact_specs() -> list[Spec]:
    """The synced contact fields (the account link travels as ``accountId``, the key as ``extId``)."""
    return synced_specs(mapping(ENTITY), skip=("account_code",))


class _Planner:
    def __init__(self, inp: PlanInput, config: SyncConfig) -> None:
        self.inp = inp
        self.config = config
        self.lists = inp.lists
        self.specs = contact_specs()
        self.plan = Plan(ENTITY, unchanged=inp.unchanged)
        self.may_delete = guard_deletions(inp, config, self.plan)
        self.parent_by_ssm = {int(p.ssm_id): code for code, p in inp.parents.items() if p.ready and p.ssm_id}

    def note(self, bucket: list[Note], key: str, rule: str, reason: str, ssm_id: int | None = None) -> None:
        bucket.append(Note(ENTITY, key, rule, reason, ssm_id))

    def parent_block(self, code: str) -> tuple[str, str] | None:
        """Why a contact of account ``code`` cannot be synced now (rule, reason), or None."""
        return parent_block(self.inp, code)

    def new_in_ssm(self, rec: Record) -> None:
        """A contact created in SSM without extId: K1 once its Sage number is reserved; else it waits (K4, P5)."""
        rid = int(rec["id"])
        account = ssm_scalar(rec.get("accountId"))
        code = self.parent_by_ssm.get(int(account)) if account is not None else None
        if code is None:
            reason = f"contact {rid} is on SSM account {account}, unknown to Sage: waits for it"
            self.note(self.plan.deferred, f"ssm:{rid}", "K4", reason, rid)
            self.plan.pending[rid] = reason
            return
        block = self.parent_block(code)
        if block is not None:
            self.note(self.plan.deferred, f"ssm:{rid}", block[0], block[1], rid)
            self.plan.pending[rid] = block[1]
            return
        self.note(self.plan.deferred, f"ssm:{rid}", "K1", "no Sage number reserved yet", rid)
        self.plan.pending[rid] = "K1: no reserved number"

    def run(self) -> Plan:
        inp = self.inp
        pairs = pair_ssm(inp, self.plan, rule="K1", noun="contact", on_new=self.new_in_ssm)
        keys = set(inp.created) | set(inp.updated) | set(inp.deleted) | pairs.keyset() | moved(inp)
        for key in sorted(keys):
            self.plan_key(key, pairs.get(key))
        plan_orphans(self.plan, inp, self.may_delete, "K3", "contact")
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
                self.delete(key, live, m)
            return
        code = str(sage["account_code"])
        block = self.parent_block(code)
        if block is not None:
            self.note(self.plan.deferred, key, block[0], block[1])
            if m is not None:
                self.plan.pending[int(m["id"])] = block[1]
            return
        if n is not None and live is None:
            if n.get("deleted"):  # deleted in SSM after the Sage insert, before its extId was written back
                nid = int(n["id"])
                self.note(
                    self.plan.skipped, key, "K3", f"contact deleted in SSM ({nid}): not propagated", nid
                )
                self.plan.commits.append(
                    Commit(
                        ENTITY,
                        key,
                        row=sage,
                        synced=self.synced(sage),
                        ssm_id=nid,
                        binding="ssm_deleted",
                        ssm_ids=[nid],
                    )
                )
            else:
                self.finish_insert(key, sage, n)
            return
        if m is not None and m.get("deleted"):
            sid = int(m["id"])
            self.note(
                self.plan.skipped, key, "K3", f"contact deleted in SSM ({sid}): not propagated to Sage", sid
            )
            self.plan.commits.append(
                Commit(ENTITY, key, row=sage, synced=binding.synced, ssm_id=sid, binding="ssm_deleted")
            )
            return
        if binding.status == Status.SSM_DELETED:
            self.note(self.plan.skipped, key, "K3", "contact deleted in SSM: not re-created, not propagated")
            self.plan.commits.append(Commit(ENTITY, key, row=sage))
            return
        if live is None:
            if x is not None:
                self.adopt(key, sage, x)
            else:
                self.create(key, sage)
            return
        self.update(key, sage, live, m)

    def synced(self, row: dict[str, Any]) -> dict[str, Any]:
        """The merge base: the synced fields plus ``_account``, the SSM account the contact hangs off."""
        return {
            **{s.name: row.get(s.name) for s in self.specs},
            "_account": account_ssm_id(self.inp, str(row.get("account_code"))),
        }

    def create(self, key: str, sage: dict[str, Any]) -> None:
        payload, warnings = ssm_payload(self.specs, sage, self.lists)
        for w in warnings:
            self.note(self.plan.warnings, key, "G3", w)
        parent_id = int(account_ssm_id(self.inp, str(sage["account_code"])) or 0)
        fields = {k: v for k, v in payload.items() if v is not None}
        fields.update({"extId": key, "accountId": parent_id, "salesRepId": self.config.admin_user_id})
        reason = (
            f"new Sage contact of customer {sage['account_code']}: create it in SSM on account {parent_id}"
        )
        synced = self.synced(sage)
        self.plan.ops.append(Op("ssm_create", ENTITY, key, "K1", reason, fields=fields))
        self.plan.commits.append(Commit(ENTITY, key, row=sage, synced=synced, binding="ok"))

    def adopt(self, key: str, sage: dict[str, Any], found: dict[str, Any]) -> None:
        fid = int(found["id"])
        fields = differing(self.specs, sage, found, self.lists)
        synced = self.synced(sage)
        if fields:
            reason = f"SSM contact {fid} already carries extId {key}: adopt it and update {describe(fields)}"
            self.plan.ops.append(Op("ssm_update", ENTITY, key, "K1", reason, ssm_id=fid, fields=fields))
        self.plan.commits.append(
            Commit(ENTITY, key, row=sage, synced=synced, ssm_id=fid, binding="ok", ssm_ids=[fid])
        )

    def update(self, key: str, sage: Record, live: Binding, m: Record | None) -> None:
        sid = int(live.ssm_id or 0)
        base = live.base
        merged = three_way(self.specs, sage, m, base, self.lists, self.config.winner(ENTITY))
        for w in merged.warnings:
            self.note(self.plan.warnings, key, "G3", w)
        for f, s_val, m_val, who in merged.conflicts:
            self.plan.conflicts.append(Conflict(ENTITY, key, f, s_val, m_val, who))
        # The account link is Sage's: a move made in SSM is put back, and a contact follows its account when
        # the account's SSM record changed (C1 re-creation).
        parent_id = account_ssm_id(self.inp, str(sage["account_code"]))
        current = ssm_scalar(m.get("accountId")) if m is not None else base.get("_account", parent_id)
        merged.merged["_account"] = parent_id
        if parent_id is not None and current is not None and int(current) != int(parent_id):
            merged.to_ssm["accountId"] = int(parent_id)
            if m is not None:
                self.note(
                    self.plan.skipped,
                    key,
                    "K2",
                    f"the account of a contact cannot be changed from SSM (moved to {current}); put back",
                    sid,
                )
        problems = sage_problems(ENTITY, key, self.specs, merged.to_sage)
        if problems:
            for p in problems:
                self.note(self.plan.quarantined, key, "G3", p, sid)
            self.plan.pending[sid] = "G3: quarantined SSM values"
            return
        if merged.to_sage:
            reason = f"contact edited in SSM: write {describe(merged.to_sage)} to Sage"
            self.plan.ops.append(Op("sage_update", ENTITY, key, "K2", reason, fields=merged.to_sage))
        if merged.to_ssm:
            reason = f"contact edited in Sage: update {describe(merged.to_ssm)} in SSM"
            self.plan.ops.append(
                Op(
                    "ssm_update",
                    ENTITY,
                    key,
                    "K2",
                    reason,
                    ssm_id=sid,
                    fields=merged.to_ssm,
                )
            )
        self.plan.commits.append(
            Commit(
                ENTITY,
                key,
                row={**sage, **merged.to_sage},
                synced=merged.merged,
                ssm_id=sid,
                binding="ok",
                ssm_ids=[sid] if m is not None else [],
            )
        )

    def delete(self, key: str, live: Binding | None, m: Record | None) -> None:
        if live is None or (m is not None and m.get("deleted")):
            self.plan.commits.append(
                Commit(ENTITY, key, delete_row=True, binding="deleted" if live else None)
            )
            return
        if not self.may_delete:
            withheld(self.plan, ENTITY, key, "K3")
            return
        sid = int(live.ssm_id or 0)
        self.plan.ops.append(
            Op(
                "ssm_delete",
                ENTITY,
                key,
                "K3",
                f"contact {key} deleted in Sage: soft-delete SSM contact {sid}",
                ssm_id=sid,
            )
        )
        self.plan.commits.append(Commit(ENTITY, key, delete_row=True, ssm_id=sid, binding="deleted"))

    def sage_row(self, key: str, n: dict[str, Any]) -> dict[str, Any] | None:
        rid = int(n["id"])
        code, number = split_key(key)
        row: dict[str, Any] = {"account_code": code, "number": number}
        for spec in self.specs:
            try:
                row[spec.name] = from_ssm(spec, n.get(spec.ssm), self.lists)
            except UnmappedValue:
                row[spec.name] = None
        problems = sage_problems(ENTITY, key, self.specs, row)
        if problems:
            quarantine_ssm_values(self.plan, key, rid, problems)
            return None
        return row

    def create_in_sage(self, key: str, n: dict[str, Any]) -> None:
        rid = int(n["id"])
        if n.get("deleted"):
            self.note(
                self.plan.skipped, key, "K3", f"contact {rid} created then deleted in SSM: nothing to do", rid
            )
            return
        code, _ = split_key(key)
        block = self.parent_block(code)
        if block is not None:
            self.note(self.plan.deferred, key, block[0], block[1], rid)
            self.plan.pending[rid] = block[1]
            return
        row = self.sage_row(key, n)
        if row is None:
            return
        synced = self.synced(row)
        reason = (
            f"contact {rid} created in SSM on customer {code}: insert it in Sage as {key} (number reserved)"
        )
        insert_in_sage_and_write_back(
            self.plan,
            key,
            "K1",
            reason,
            row=row,
            synced=synced,
            ssm_id=rid,
            write_back={"extId": key},
            write_back_reason=f"write the Sage key {key} back as extId",
        )

    def finish_insert(self, key: str, sage: dict[str, Any], n: dict[str, Any]) -> None:
        rid = int(n["id"])
        synced = self.synced(sage)
        fields = differing(self.specs, sage, n, self.lists)
        if (n.get("extId") or None) != key:
            fields["extId"] = key
        if fields:
            reason = f"key {key} reserved for SSM contact {rid} is already in Sage: update SSM only"
            self.plan.ops.append(Op("ssm_update", ENTITY, key, "K1", reason, ssm_id=rid, fields=fields))
        self.plan.commits.append(
            Commit(ENTITY, key, row=sage, synced=synced, ssm_id=rid, binding="ok", ssm_ids=[rid])
        )


def reserve_numbers(inp: PlanInput, keys: Reservations, config: SyncConfig) -> None:
    """K1: reserve the Sage key (account, next number) of each new SSM contact before the Sage insert."""
    bound = {b.ssm_id for b in inp.bindings.values() if b.ssm_id is not None}
    by_ssm = {int(p.ssm_id): c for c, p in inp.parents.items() if p.ready and p.ssm_id is not None}
    numbers: dict[str, int] = {}
    for key in [*inp.sage, *inp.reserved.values(), *inp.bindings]:
        code, number = split_key(key)
        numbers[code] = max(numbers.get(code, 0), number)
    for rec in inp.ssm:
        rid = int(rec["id"])
        if rec.get("extId") or rec.get("deleted") or rid in bound or str(rid) in inp.reserved:
            continue
        account = ssm_scalar(rec.get("accountId"))
        parent = by_ssm.get(int(account)) if account is not None else None
        if parent is None or inp.parents[parent].is_prospect == 1:
            continue
        numbers[parent] = numbers.get(parent, 0) + 1
        inp.reserved[str(rid)] = keys.reserve(rid, contact_key(parent, numbers[parent]))


def account_ssm_id(inp: PlanInput, code: str) -> int | None:
    """The SSM id of account ``code`` (None when Sage does not have it or it has none)."""
    parent = inp.parent(code)
    return parent.ssm_id if parent is not None else None


def moved(inp: PlanInput) -> set[str]:
    """Synced contacts whose account now has another SSM record (C1 re-creation): they follow it."""
    return {
        key
        for key, b in inp.bindings.items()
        if key in inp.sage and b.live and b.base.get("_account") != account_ssm_id(inp, split_key(key)[0])
    }


def read_beyond(inp: PlanInput) -> set[str]:
    """The unchanged contacts the planner reads: those the SSM records of this run pair with, and the moved."""
    return paired_keys(inp) | moved(inp)


def parent_block(inp: PlanInput, code: str) -> tuple[str, str] | None:
    """Why a contact of account ``code`` cannot be synced now (rule, reason), or None."""
    parent = inp.parent(code)
    if parent is None:
        return "K4", f"account {code} is not in Sage (or not synced yet)"
    if parent.is_prospect == 1:
        return "P5", f"account {code} is a prospect: its contacts wait for the conversion"
    if not parent.ready:
        return "K1", f"customer {code} is not in SSM yet"
    return None


def waiting(inp: PlanInput) -> set[str]:
    """Sage contacts never sent to SSM (no binding) that wait for their account this run (K1, K4, P5).

    No SSM record can carry their key yet, so the run does not look them up (a dossier's prospects' contacts
    would otherwise be looked up on every run).
    """
    return {
        key
        for key in [*inp.created, *inp.updated]
        if key not in inp.bindings and parent_block(inp, split_key(key)[0]) is not None
    }


def plan_contacts(inp: PlanInput, config: SyncConfig) -> Plan:
    """Plan one run of contacts (see the module docstring for the rules)."""
    return _Planner(inp, config).run()
