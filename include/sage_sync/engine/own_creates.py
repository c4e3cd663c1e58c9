"""The records our own creates made, left out of the next incremental SSM reads (ADR 0018, decision 22).

A two-way entity is read by ``dateUpdated`` since its watermark, so the run after a first sync would read back
every record that sync created (the bulk responses carry no ``dateUpdated`` to remember), and the overlap margin
reads the latest of them again on the run after. Those records can hold nothing new for us: nobody else has
touched them (``salesRepIdUpdated`` is still us) and nobody had before we made them. So a run whose creates of an
entity were all confirmed remembers the range of ids they got (a :class:`CreatedRange`), and the next reads skip
the records of that range that the integration's user both created and last updated.

What is never skipped: a record a user edited after we made it (its last updater is the user), a record we
updated in a later run (its ``dateUpdated`` is past the range's ``until``: a user edit made between our read and
our write must be seen again, as it was before), records other users made with ids in the range, and everything
of a run where a create failed or its response was lost (a twin may exist: no range is remembered).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sage_sync.engine.codec import ssm_scalar
from sage_sync.hooks.where import and_, or_, where_ge, where_gt, where_lt, where_ne


@dataclass(frozen=True)
class CreatedRange:
    """The ids ``lo``..``hi`` the creates of one run got, and until when the integration has not written since.

    ``until`` is None until the next run has read the entity: between two runs the integration writes nothing,
    so that read may skip the whole range; it then sets ``until`` to the newest ``dateUpdated`` it saw, which is
    older than any write the integration makes afterwards.
    """

    lo: int
    hi: int
    until: str | None = None

    def covers(self, record: dict[str, Any]) -> bool:
        """Whether ``record`` (created and last updated by the integration) is one of this range's unchanged ones."""
        rid = int(record["id"])
        if not self.lo <= rid <= self.hi:
            return False
        return self.until is None or str(record.get("dateUpdated") or "") < self.until


@dataclass(frozen=True)
class OwnCreates:
    """What an incremental read skips: records ``user`` created and last updated within one of ``ranges``."""

    user: int
    ranges: tuple[CreatedRange, ...]

    def skips(self, record: dict[str, Any]) -> bool:
        """Whether a read leaves ``record`` out (the same test as :meth:`where`, for sides without a server)."""
        if user_id(record.get("salesRepIdCreated")) != self.user:
            return False
        if user_id(record.get("salesRepIdUpdated")) != self.user:
            return False
        return any(r.covers(record) for r in self.ranges)

    def where(self) -> str:
        """The API ``where`` that keeps every record :meth:`skips` would not leave out."""
        outside = [
            or_(
                where_lt("id", r.lo),
                where_gt("id", r.hi),
                *([where_ge("dateUpdated", _moment(r.until))] if r.until is not None else []),
            )
            for r in self.ranges
        ]
        return or_(
            where_ne("salesRepIdCreated", self.user),
            where_ne("salesRepIdUpdated", self.user),
            and_(*outside),
        )


def _moment(text: str) -> datetime:
    """An API date-time text (``...Z``) as an aware datetime for the ``where`` builder."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def user_id(value: Any) -> int | None:
    """A user id as the API returns it (an int, or a lookup ``{"id": ...}``); None when there is none."""
    value = ssm_scalar(value)
    try:
        return None if value is None or isinstance(value, bool) else int(value)
    except (TypeError, ValueError):
        return None


def confirmed_range(outcomes: Iterable[Any], entity: str) -> tuple[int, int] | None:
    """The ids the creates of ``entity`` got this run, when every write of the entity was confirmed; else None.

    ``outcomes`` are the apply step's :class:`~sage_sync.engine.apply.OpOutcome`. One failed write of the entity,
    or a create without an id, and nothing is remembered: a create whose response was lost may have applied.
    """
    ids: list[int] = []
    for out in outcomes:
        if out.entity != entity:
            continue
        if not out.ok:
            return None
        if out.kind == "ssm_create":
            if out.id is None:
                return None
            ids.append(int(out.id))
    return (min(ids), max(ids)) if ids else None


def just_after(stamp: str) -> str:
    """The API date-time one millisecond after ``stamp``."""
    moment = _moment(stamp) + timedelta(milliseconds=1)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def settled(ranges: list[CreatedRange], newest: str | None, since: str | None) -> list[CreatedRange]:
    """The ranges after a read: ``until`` set where it was open, and those with nothing left to skip dropped.

    An open range gets ``newest``: the newest ``dateUpdated`` the read saw, or just after the range's last
    record, whichever is later; both are older than any write the integration makes after the read. An open range
    is dropped when there is no such date. A range whose ``until`` is not after the read's lower bound ``since``
    skips nothing any more.
    """
    out: list[CreatedRange] = []
    for r in ranges:
        until = r.until if r.until is not None else newest
        if until is None or (since is not None and until <= since):
            continue
        out.append(CreatedRange(r.lo, r.hi, until))
    return out
