"""The commit as the load goes: records are committed once their writes are confirmed, beside the writes (G5).

A large first load spends most of its time waiting for the API's rate limit, and its commit came after it: for
a large dossier's invoices, 50 s of storing 1.3 million bindings, snapshot rows and log entries while the API sat
idle (ADR 0019 decision 6). :class:`CommitStream` runs in a thread of the load step and stores, a chunk at a time
and each chunk in one transaction, every commit whose ops (and the ops of the records it depends on) have their
final outcome, with the record log of those ops, exactly as the commit step stores them
(:func:`~sage_sync.engine.commit.store_commits`). A record is committed only once all its writes are confirmed:
the load tells the stream how many of the plan's first ops are final (:data:`~sage_sync.engine.apply.Watch`), and
a commit waits for the last op of its records. What the stream committed is staged with the load's outcomes
(:class:`~sage_sync.engine.commit.CommitProgress`); the commit step stores the rest (the commits still waiting,
the notes, pending records, quarantine, watermark, counts).

When the load stops on an error (or is stopped), what was confirmed before is committed and the plan becomes
stale (the state moved): the next run plans again on current data instead of sending the same creates twice.
When the stream fails (the state database refused a chunk), the load goes on and the commit step stores what the
stream could not.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from itertools import islice

from sage_sync.engine.apply import OpOutcome
from sage_sync.engine.commit import CHUNK, LOG_HEAD, CommitProgress, Outcomes, op_entry, store_commits
from sage_sync.engine.plan import Commit
from sage_sync.engine.staging import Staging
from sage_sync.engine.state import StateStore

log = logging.getLogger(__name__)


def _own_connection(state: StateStore) -> bool:
    """Whether a second connection reaches the same state database (not one held in memory)."""
    url = state.engine.url
    return not (url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"))


#: Commits stored at a time (and log entries): one transaction each.
STREAM_CHUNK = CHUNK


class CommitStream:
    """Commits the records of a staged plan as the load confirms them (a context manager).

    Enter it before the load, pass :meth:`watch` to :func:`~sage_sync.engine.apply.apply_ops`, and read
    :attr:`progress` once it is left: leaving stores what is confirmed and not stored yet. The commits are stored
    in a thread over a connection of its own; a state database held in memory (tests) has no second connection,
    so they are stored in the load's thread, as the load's news come.
    """

    def __init__(
        self, staging: Staging, entity: str, state: StateStore, run_id: str, seen: dict[int, str]
    ) -> None:
        """Commit ``entity``'s staged plan to the state database of ``state``."""
        self.staging, self.entity, self.run_id, self.seen = staging, entity, run_id, seen
        self.threaded = _own_connection(state)
        self.state = StateStore(state.url) if self.threaded else state
        self.chunk = STREAM_CHUNK
        self.progress = CommitProgress()
        self.error: str | None = None
        self._cond = threading.Condition()
        self._outcomes: Mapping[int, OpOutcome] = {}
        self._final = 0
        self._done = False
        self._thread = threading.Thread(target=self._run, name=f"commit-{entity}", daemon=True)
        self._reader: _Reader | None = None

    def __enter__(self) -> CommitStream:
        """Start the stream's thread."""
        if self.threaded:
            self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        """The load ended, or stopped on an error: store what it confirmed, and stop."""
        if not self.threaded:
            self._guarded(lambda: self._take(self._outcomes, self._final, done=True))
            return
        with self._cond:
            self._done = True
            self._cond.notify()
        self._thread.join()
        self.state.engine.dispose()

    def watch(self, outcomes: Mapping[int, OpOutcome], final: int) -> None:
        """The load's news: the outcomes so far, of which the first ``final`` are final (the load's thread)."""
        with self._cond:
            self._outcomes, self._final = outcomes, final
            self._cond.notify()
        if not self.threaded:
            self._guarded(lambda: self._take(outcomes, final, done=False))

    def _run(self) -> None:
        def stream() -> None:
            read = 0
            while True:
                with self._cond:
                    while self._final == read and not self._done:
                        self._cond.wait()
                    table, read, done = self._outcomes, self._final, self._done
                self._take(table, read, done)
                if done:
                    return

        self._guarded(stream)

    def _guarded(self, work: Callable[[], None]) -> None:
        """Run ``work`` unless the stream stopped; a failure stops it (the commit step stores the rest)."""
        if self.error is not None:
            return
        try:
            work()
        except Exception as exc:  # noqa: BLE001 - the commit step stores what the stream did not
            self.error = f"{type(exc).__name__}: {exc}"
            log.warning(
                "%s: committing as the load goes stopped after %d record(s) (%s); the commit step stores the rest",
                self.entity,
                self.progress.commits,
                self.error,
            )

    def _take(self, table: Mapping[int, OpOutcome], final: int, done: bool) -> None:
        """Read the outcomes final so far; store a chunk when one is ready, and all that is ready when ``done``."""
        if self._reader is None:
            self._reader = _Reader(self.staging, self.entity)
        reader = self._reader
        reader.read(table, final)
        if done or len(reader.ready) >= self.chunk or len(reader.entries) >= self.chunk:
            self._store(reader)

    def _store(self, reader: _Reader) -> None:
        """Store the ready commits and log entries in one transaction; count them once stored."""
        ready, entries = reader.ready, reader.entries
        state, settled = self.state, set[int]()
        with state.batch():
            released = store_commits(self.entity, ready, reader.outcomes, self.seen, settled, state)
            state.clear_pending(self.entity, sorted(settled))
            state.release_quarantine(self.entity, released)
            state.log_records(self.run_id, entries)
        done = self.progress
        done.commits += len(ready)
        done.ops += len(entries)
        done.head += entries[: LOG_HEAD - len(done.head)]
        reader.ready, reader.entries = [], []


class _Reader:
    """The staged plan read as the load's outcomes become final: the commits ready, the log entries to store."""

    def __init__(self, staging: Staging, entity: str) -> None:
        self.last = _last_ops(staging.staged_op_records(entity))
        self.ops = staging.staged_plan_ops(entity)
        self.commits = staging.staged_commits(entity)
        self.waiting = next(self.commits, None)
        self.outcomes = Outcomes()
        self.ready: list[Commit] = []
        self.entries: list[dict[str, str]] = []
        self.read_to = 0

    def read(self, table: Mapping[int, OpOutcome], final: int) -> None:
        """Read the outcomes up to ``final``, their log entries, and the commits that wait for no later op."""
        news = [table[i] for i in range(self.read_to, final)]
        self.outcomes.add(news)
        self.entries += (op_entry(op, out) for op, out in zip(islice(self.ops, len(news)), news, strict=True))
        self.read_to = final
        while self.waiting is not None and _last_op(self.waiting, self.last) < final:
            self.ready.append(self.waiting)
            self.waiting = next(self.commits, None)


def _last_ops(records: Iterator[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """The position of the last op of each record of a plan."""
    return {record: position for position, record in enumerate(records)}


def _last_op(commit: Commit, last: dict[tuple[str, str], int]) -> int:
    """The position of the last op a commit waits for: of its record and of those it depends on (-1: none)."""
    position = last.get((commit.entity, commit.key), -1)
    for record in commit.depends:
        position = max(position, last.get((record[0], record[1]), -1))
    return position
