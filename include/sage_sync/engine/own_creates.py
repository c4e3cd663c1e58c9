"""The records our own creates made, left out of the next incremental SSM reads (ADR 0018, decision 22).

A two-way entity is read by ``dateUpdated`` since its watermark, so the run after a first sync would read back
every record that sync created (the bulk responses carry no ``dateUpdated`` to remember), and the overlap margin
reads the latest of them again on the run after. Such a record holds nothing new as long as nobody wrote to it
after the create. So a run whose writes of an entity were all confirmed remembers the range of ids its creates
got (a :class:`CreatedRange`); the next read learns when the last of them was created (``until``: just after the
``dateCreated`` of the range's last record), and the reads from then on skip the records of the range that the
integration's user created and last updated before ``until``.

Every later write is still read, whoever makes it: a user's edit (its last updater is the user), and any write
made with the integration's own key after the load, by a later run of ours (a user edit made between that run's
read and its write shows then, as before) or by an administrator (C2, C3, C7 drift). So are records other users
made with ids in the range, and everything of a run where one write of the entity failed or its response was lost
(a twin of a lost create must be read to be retired, C1, G5): no range is remembered for it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sage_sync.engine.codec import ssm_scalar
from sage_sync.hooks.where import and_, format_datetime, or_, where_ge, where_gt, where_lt, where_ne


@dataclass(frozen=True)
class CreatedRange:
    """The ids ``lo``..``hi`` the creates of one run got, and ``until``: just after the last of them was created.

    ``until`` is None until a read has looked up the range's last record (the bulk responses carry no date); a
    range without it skips nothing.
    """

    lo: int
    hi: int
    until: str | None = None

    def covers(self, record: dict[str, Any]) -> bool:
        """Whether ``record`` is in the range and unchanged since the range's creates (by ``dateUpdated``)."""
        if self.until is None or not self.lo <= int(record["id"]) <= self.hi:
            return False
        return str(record.get("dateUpdated") or "") < self.until


@dataclass(frozen=True)
class OwnCreates:
    """What an incremental read skips: records ``user`` created and last updated, covered by one of ``ranges``."""

    user: int
    ranges: tuple[CreatedRange, ...]

    def __post_init__(self) -> None:
        """A read skips by ranges whose creates are dated (:func:`settled`); without one it would skip nothing."""
        if not self.ranges or any(r.until is None for r in self.ranges):
            raise ValueError("OwnCreates needs at least one range, each with its until")

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
            or_(where_lt("id", r.lo), where_gt("id", r.hi), where_ge("dateUpdated", _moment(str(r.until))))
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


def just_after(stamp: str) -> str:
    """The API date-time one millisecond after ``stamp``."""
    return format_datetime(_moment(stamp) + timedelta(milliseconds=1))


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


#: At most this many ranges are kept (the newest): a tenant where nobody edits never moves the watermark that
#: drops spent ranges, and every range is a clause of the read's URL. Forgetting a range only reads more.
MAX_RANGES = 10


def with_range(ranges: list[CreatedRange], lo: int, hi: int) -> list[CreatedRange]:
    """``ranges`` and a run's new one, the oldest forgotten beyond :data:`MAX_RANGES`."""
    return [*ranges, CreatedRange(lo, hi)][-MAX_RANGES:]


def settled(ranges: list[CreatedRange], created: dict[int, str], since: str | None) -> list[CreatedRange]:
    """The ranges a read uses and keeps: ``until`` set where it was missing, spent ones dropped.

    ``created`` holds the ``dateCreated`` of the ranges' last records looked up by this read. A range whose last
    record could not be read is dropped (it would skip nothing); so is a range whose ``until`` is not after the
    read's lower bound ``since`` (its unchanged records are older than anything read from now on).
    """
    out: list[CreatedRange] = []
    for r in ranges:
        until = r.until
        if until is None and r.hi in created:
            until = just_after(created[r.hi])
        if until is None or (since is not None and until <= since):
            continue
        out.append(CreatedRange(r.lo, r.hi, until))
    return out
