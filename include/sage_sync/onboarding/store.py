"""Where first-sync matches are remembered (O1): two tables beside the sync state, in the dossier's state database.

``match_proposals`` keeps every proposed pair with its evidence, confidence and where it stands:

* ``open``: proposed, waiting for a person (below the automatic confidence); both records are held;
* ``ambiguous``: one of several competing pairs; both records are held until a person decides;
* ``bound``: the SSM record now carries the Sage key (by the confidence, or by a person's decision);
* ``rejected``: a person said the two are different: each is synced on its own;
* ``ssm_only``: a person said the SSM record stays in SSM only (it is never created in Sage);
* ``superseded``: the pair no longer stands (one side was bound some other way, or is gone).

``match_runs`` records each matching pass that was not a dry run, so the automatic first-sync matching runs once.
The tables have their own metadata: the sync state's schema is not changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from sage_sync.engine.state import StateStore, now_iso
from sage_sync.onboarding.matcher import Proposal

WAITING = ("open", "ambiguous")
DECIDED = ("bound", "rejected", "ssm_only")
STATUSES = (*WAITING, *DECIDED, "superseded")

metadata = sa.MetaData()

match_proposals = sa.Table(
    "match_proposals",
    metadata,
    sa.Column("entity", sa.String(32), primary_key=True),
    sa.Column("sage_key", sa.String(80), primary_key=True),
    sa.Column("ssm_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("confidence", sa.Float, nullable=False),
    sa.Column("evidence", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("sage_label", sa.Text, nullable=True),
    sa.Column("ssm_label", sa.Text, nullable=True),
    sa.Column("parent", sa.String(120), nullable=True),
    sa.Column("decided_by", sa.String(60), nullable=True),
    sa.Column("decided_at", sa.String(40), nullable=True),
    sa.Column("proposed_at", sa.String(40), nullable=False),
)

match_runs = sa.Table(
    "match_runs",
    metadata,
    sa.Column("run_id", sa.String(40), primary_key=True),
    sa.Column("at", sa.String(40), nullable=False),
    sa.Column("proposals", sa.Integer, nullable=False),
    sa.Column("bound", sa.Integer, nullable=False),
)


@dataclass(frozen=True)
class Stored:
    """A proposal as remembered: the pair, its evidence, where it stands and who decided."""

    proposal: Proposal
    status: str
    decided_by: str | None = None
    decided_at: str | None = None

    @property
    def waiting(self) -> bool:
        """True while a person (or the confidence) has not decided it."""
        return self.status in WAITING

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the proposal's fields, the status, who decided and when)."""
        return {
            **self.proposal.to_dict(),
            "status": self.status,
            "found": self.proposal.status,
            "decided_by": self.decided_by,
            "decided_at": self.decided_at,
        }


class MatchStore:
    """The matching tables of one dossier's state database."""

    def __init__(self, state: StateStore) -> None:
        """Use the state store's database (its engine; one short transaction per call)."""
        self.engine = state.engine

    def migrate(self) -> None:
        """Create the tables when missing (safe on every start)."""
        metadata.create_all(self.engine)

    def has_run(self) -> bool:
        """True once a matching pass was recorded (the automatic first-sync matching is then done)."""
        with self.engine.connect() as conn:
            return conn.execute(sa.select(match_runs.c.run_id).limit(1)).first() is not None

    def record_run(self, run_id: str, proposals: int, bound: int) -> None:
        """Remember a matching pass (not a dry run)."""
        with self.engine.begin() as conn:
            conn.execute(match_runs.delete().where(match_runs.c.run_id == run_id))
            conn.execute(
                match_runs.insert().values(run_id=run_id, at=now_iso(), proposals=proposals, bound=bound)
            )

    def all(self) -> list[Stored]:
        """Every remembered proposal, by entity, Sage key and SSM id."""
        query = sa.select(match_proposals).order_by(
            match_proposals.c.entity, match_proposals.c.sage_key, match_proposals.c.ssm_id
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        return [_stored(r) for r in rows]

    def waiting(self) -> list[Stored]:
        """The proposals no one decided yet (open or ambiguous)."""
        return [s for s in self.all() if s.waiting]

    def refresh(self, proposals: list[Proposal], entities: tuple[str, ...]) -> None:
        """Store a new matching pass of ``entities``: new pairs wait, decided pairs stay decided.

        A waiting pair of these entities that the new pass no longer proposes is ``superseded``.
        """
        stamp = now_iso()
        known = {s.proposal.pair: s for s in self.all()}
        fresh = {p.pair for p in proposals}
        with self.engine.begin() as conn:
            for p in proposals:
                old = known.get(p.pair)
                if old is not None and old.status in DECIDED:
                    continue
                conn.execute(match_proposals.delete().where(*_where(p.pair)))
                conn.execute(
                    match_proposals.insert().values(
                        entity=p.entity,
                        sage_key=p.sage_key,
                        ssm_id=p.ssm_id,
                        confidence=p.confidence,
                        evidence=p.evidence,
                        status="open" if p.status == "proposed" else "ambiguous",
                        sage_label=p.sage_label,
                        ssm_label=p.ssm_label,
                        parent=p.parent,
                        proposed_at=stamp,
                    )
                )
            for pair, old in known.items():
                if old.waiting and pair[0] in entities and pair not in fresh:
                    conn.execute(
                        match_proposals.update()
                        .where(*_where(pair))
                        .values(status="superseded", decided_by="a new matching pass", decided_at=stamp)
                    )

    def add_manual(self, proposal: Proposal) -> None:
        """Remember a pair a person named although no pass proposed it (it is decided right after)."""
        with self.engine.begin() as conn:
            conn.execute(match_proposals.delete().where(*_where(proposal.pair)))
            conn.execute(
                match_proposals.insert().values(
                    entity=proposal.entity,
                    sage_key=proposal.sage_key,
                    ssm_id=proposal.ssm_id,
                    confidence=proposal.confidence,
                    evidence=proposal.evidence,
                    status="open",
                    sage_label=proposal.sage_label,
                    ssm_label=proposal.ssm_label,
                    parent=proposal.parent,
                    proposed_at=now_iso(),
                )
            )

    def decide(self, pair: tuple[str, str, int], status: str, by: str) -> None:
        """Record a decision on one pair (``bound``, ``rejected``, ``ssm_only`` or ``superseded``)."""
        if status not in STATUSES:
            raise ValueError(f"unknown match status {status!r}")
        with self.engine.begin() as conn:
            conn.execute(
                match_proposals.update()
                .where(*_where(pair))
                .values(status=status, decided_by=by[:60], decided_at=now_iso())
            )


def _where(pair: tuple[str, str, int]) -> tuple[Any, ...]:
    entity, key, ssm_id = pair
    return (
        match_proposals.c.entity == entity,
        match_proposals.c.sage_key == key,
        match_proposals.c.ssm_id == int(ssm_id),
    )


def _stored(row: Any) -> Stored:
    proposal = Proposal(
        entity=row["entity"],
        sage_key=row["sage_key"],
        ssm_id=int(row["ssm_id"]),
        confidence=float(row["confidence"]),
        evidence=row["evidence"],
        status="proposed" if row["status"] != "ambiguous" else "ambiguous",
        sage_label=row["sage_label"] or "",
        ssm_label=row["ssm_label"] or "",
        parent=row["parent"],
    )
    return Stored(proposal, row["status"], row["decided_by"], row["decided_at"])
