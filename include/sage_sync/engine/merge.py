"""Three-way merge of a two-way record against its last synced values (G2).

Fields changed on one side flow to the other; a field changed on both sides to different values is a conflict
won by the entity's policy and recorded with both values. Because the base is updated to what was written, the
next run sees the echo of its own write as "unchanged" and sends nothing back (no ping-pong).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sage_sync.engine.codec import Spec, UnmappedValue, from_ssm, same, same_canonical, to_ssm
from sage_sync.mapping.transforms import ValueLists


@dataclass
class MergeResult:
    """Writes toward each side, the merged (new base) values, conflicts and values that could not map."""

    to_sage: dict[str, Any] = field(default_factory=dict)
    to_ssm: dict[str, Any] = field(default_factory=dict)
    merged: dict[str, Any] = field(default_factory=dict)
    conflicts: list[tuple[str, Any, Any, str]] = field(default_factory=list)
    unmapped: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def three_way(
    specs: list[Spec],
    sage: dict[str, Any],
    ssm: dict[str, Any] | None,
    base: dict[str, Any],
    lists: ValueLists,
    winner: str = "sage",
) -> MergeResult:
    """Merge one record. ``ssm`` None means SSM did not change since the base."""
    out = MergeResult()
    for spec in specs:
        s, b = sage.get(spec.name), base.get(spec.name)
        s_changed = not same_canonical(spec, s, b, lists)
        m_changed = False
        m_value: Any = b
        raw: Any = None
        if ssm is not None:
            raw = ssm.get(spec.ssm)
            try:
                m_value = from_ssm(spec, raw, lists)
                m_changed = not same(spec, b, raw, lists)
            except UnmappedValue as exc:
                out.unmapped.append(f"{spec.name}: {exc}")
        if s_changed and m_changed and not same(spec, s, raw, lists):
            out.conflicts.append((spec.name, s, m_value, winner))
            if winner == "ssm":
                out.to_sage[spec.name] = m_value
                out.merged[spec.name] = m_value
                continue
            s_changed, m_changed = True, False
        if s_changed and not m_changed:
            value, warning = to_ssm(spec, s, lists)
            if warning:
                # Unknown value (e.g. a country SSM does not list): the SSM field is left as it is, and the
                # base keeps what SSM still holds, so the next run neither re-sends nor pulls it back.
                out.warnings.append(warning)
                out.merged[spec.name] = b
                continue
            out.to_ssm[spec.ssm] = value
            out.merged[spec.name] = s
        elif m_changed and not s_changed:
            out.to_sage[spec.name] = m_value
            out.merged[spec.name] = m_value
        else:
            out.merged[spec.name] = s
    return out


def ssm_payload(
    specs: list[Spec], record: dict[str, Any], lists: ValueLists
) -> tuple[dict[str, Any], list[str]]:
    """Every mapped field of a canonical record in SSM form (None values included), with warnings.

    A value SSM cannot take (e.g. an unknown country) is left out of the payload: the field stays unset.
    """
    payload: dict[str, Any] = {}
    warnings: list[str] = []
    for spec in specs:
        value, warning = to_ssm(spec, record.get(spec.name), lists)
        if warning:
            warnings.append(warning)
            continue
        payload[spec.ssm] = value
    return payload, warnings


def differing(
    specs: list[Spec], record: dict[str, Any], ssm: dict[str, Any], lists: ValueLists
) -> dict[str, Any]:
    """The SSM fields whose value differs from the canonical record's (Sage wins), in SSM form."""
    payload, _ = ssm_payload(specs, record, lists)
    return {
        spec.ssm: payload[spec.ssm]
        for spec in specs
        if spec.ssm in payload and not same(spec, record.get(spec.name), ssm.get(spec.ssm), lists)
    }
