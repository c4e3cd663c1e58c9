"""Products: Sage articles -> SSM products, one way, read-only in SSM (D1-D6, G4)."""

from __future__ import annotations

from typing import Any

from sage_sync.engine.bindings import Binding
from sage_sync.engine.config import SyncConfig
from sage_sync.engine.inputs import PlanInput
from sage_sync.engine.plan import Commit, Note, Op, Plan
from sage_sync.engine.rules.common import describe, guard_deletions, plan_orphans, plan_sage_deletion
from sage_sync.mapping import transforms as tf

ENTITY = "products"

#: Which rule explains a change of each SSM product field.
FIELD_RULES = {"price": "D6", "stock": "D2", "Z_StockDisplay": "D2", "notAvailable": "D5"}


def product_payload(row: dict[str, Any]) -> dict[str, Any]:
    """The SSM product of a Sage article (D1 read-only, D2 stock, D5 inactive, D6 price excluding tax).

    ``familyId`` is left out: the family travels by name as a reference resolved at load time.
    Raises ``ValueError`` for a TTC price without a VAT rate.
    """
    stock, display = tf.stock_to_ssm(row.get("stock_managed"), row.get("stock_total"))
    return {
        "extId": row["ref"],
        "model": row.get("designation"),
        "cost": row.get("purchase_price"),
        "price": tf.price_ht(row.get("sales_price"), row.get("price_includes_tax"), row.get("vat_rate")),
        "stock": stock,
        "Z_StockDisplay": display,
        "notAvailable": tf.flag_to_ssm(row.get("asleep")),
        "Z_Unit": row.get("sales_unit"),
        "Z_Barcode": row.get("barcode"),
        "readOnly": True,
    }


def plan_products(inp: PlanInput, config: SyncConfig) -> Plan:
    """Plan one run of products: create, update the changed fields, upload changed pictures, delete (D1-D6)."""
    plan = Plan(ENTITY, unchanged=inp.unchanged)
    may_delete = guard_deletions(inp, config, plan)
    for key in sorted(set(inp.created) | set(inp.updated) | set(inp.deleted)):
        row = inp.sage.get(key)
        live = inp.live_binding(key)
        binding = inp.binding(key)
        ops_before = len(plan.ops)
        if row is None:
            plan_sage_deletion(plan, key, live, may_delete, "D4", ("article", "product"))
            continue
        try:
            payload = product_payload(row)
        except ValueError as exc:
            plan.quarantined.append(Note(ENTITY, key, "D6", f"article {key}: {exc}"))
            continue
        family = row.get("family_name") or row.get("family_code")
        synced = {**payload, "family": family, "picture_sha256": row.get("picture_sha256")}
        refs = {"familyId": ["productFamilies", str(family)]} if family else {}
        picture = None
        base = live.base if live is not None else {}
        if (
            row.get("picture")
            and row.get("picture_sha256")
            and row.get("picture_sha256") != base.get("picture_sha256")
        ):
            picture = {"path": str(row["picture"]), "sha256": str(row["picture_sha256"])}
        found = inp.ssm_by_ext.get(key)
        if live is None:
            if found is not None:
                fid = int(found["id"])
                fields = {k: v for k, v in payload.items() if found.get(k) != v}
                reason = drift_prefix(binding) + f"SSM product {fid} already carries extId {key}: adopt it"
                plan.ops.append(
                    Op(
                        "ssm_update",
                        ENTITY,
                        key,
                        "D1",
                        reason,
                        ssm_id=fid,
                        fields=fields,
                        refs=refs,
                        picture=picture,
                    )
                )
                plan.commits.append(Commit(ENTITY, key, row=row, synced=synced, ssm_id=fid, binding="ok"))
            else:
                reason = (
                    f"new article {key}: create the read-only SSM product"
                    if not binding.drift
                    else drift_prefix(binding) + f"re-create the read-only SSM product of article {key}"
                ) + (" with its picture (D3)" if picture else "")
                plan.ops.append(
                    Op(
                        "ssm_create",
                        ENTITY,
                        key,
                        "D1",
                        reason,
                        fields={k: v for k, v in payload.items() if v is not None}
                        | {"stock": payload["stock"]},
                        refs=refs,
                        picture=picture,
                    )
                )
                plan.commits.append(Commit(ENTITY, key, row=row, synced=synced, binding="ok"))
            continue
        sid = int(live.ssm_id or 0)
        fields = {k: v for k, v in payload.items() if base.get(k) != v}
        op_refs = refs if family != base.get("family") else {}
        if fields or op_refs or picture:
            rules = sorted({FIELD_RULES.get(f, "D1") for f in fields} | ({"D3"} if picture else set()))
            rule = rules[0] if len(rules) == 1 else "D1"
            # The family drifts as a name and is sent as the familyId reference.
            drifted = {"familyId" if f == "family" else f for f in live.drift_fields}
            in_sage = {k: v for k, v in (fields | op_refs).items() if k not in drifted}
            if drifted:
                rule = "D1"  # drift on a read-only product: Sage is the only master
                reason = f"article {key}: {drift_prefix(live)}restore it"
                if in_sage:
                    sage_rules = sorted({FIELD_RULES.get(f, "D1") for f in in_sage})
                    reason += f"; changed in Sage ({', '.join(sage_rules)}): update {describe(in_sage)}"
            else:
                reason = (
                    f"article {key} changed in Sage ({', '.join(rules)}): update {describe(fields | op_refs)}"
                )
            if picture:
                reason += "; picture bytes changed: upload (D3)"
            plan.ops.append(
                Op(
                    "ssm_update",
                    ENTITY,
                    key,
                    rule,
                    reason,
                    ssm_id=sid,
                    fields=fields,
                    refs=op_refs,
                    picture=picture,
                )
            )
        plan.commits.append(Commit(ENTITY, key, row=row, synced=synced, ssm_id=sid, binding="ok"))
        if compared_only(inp, key) and len(plan.ops) == ops_before:
            plan.unchanged += 1  # compared with the live SSM record by a full reconcile: no drift
    plan_orphans(plan, inp, may_delete, "D4", "article")
    return plan


def compared_only(inp: PlanInput, key: str) -> bool:
    """True for a record a full reconcile put in scope although Sage did not change it (an empty change list)."""
    return key in inp.updated and not inp.updated[key]


def drift_prefix(binding: Binding | None) -> str:
    """``"drift in SSM: price 12.0 -> 10.5: "`` when a full reconcile found drift on this record, else ``""``."""
    drift = binding.drift if binding is not None else None
    return f"drift in SSM: {drift}: " if drift else ""
