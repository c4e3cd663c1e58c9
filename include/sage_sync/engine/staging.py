"""The staging area of one run: each step's output, one folder per entity, under a root every task can reach.

A step reads what the previous one wrote and writes its own result, so a re-run of one step reads exactly what
its upstream step produced, and XCom carries only paths and counts. The root is passed in: a location of
:mod:`sage_sync.location`, a local folder for the demo and the tests, or Airflow's ``ObjectStoragePath`` on the
shared location when the tasks run on several machines (see :mod:`sage_sync.settings`).

Files of an entity: ``extract_input.jsonl`` (the plan input as extracted), ``extract.json`` (the state token, the
change counts, the SSM dates read), ``sage.parquet`` (the Sage snapshot as validated; invoice lines in
``lines.parquet``), ``quality.json``, ``input.jsonl`` (the plan input less quarantined rows), ``plan.jsonl``
(:meth:`Staging.write_plan`; with ``plan_digest.json``, what the report and the approvals read of it),
``apply.json``, ``commit.json``. Run-wide: ``value_lists.json``.
"""

from __future__ import annotations

import hashlib
import itertools
import re
import tempfile
from array import array
from collections import Counter
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from sage_sync.engine.collector import paused_collector
from sage_sync.engine.inputs import PlanInput
from sage_sync.engine.plan import DIGEST_OPS, Commit, Op, Plan
from sage_sync.errors import FatalSyncError
from sage_sync.location import Location, write_bytes_atomic, write_chunks_atomic

if TYPE_CHECKING:
    from collections.abc import Iterator

    import pandas as pd

    from sage_sync.engine.snapshot import SageLines

#: The staged plan of an entity (:meth:`Staging.write_plan`).
PLAN_FILE = "plan.jsonl"
#: The plan input as the extract made it (read by the validate step only; :meth:`Staging.write_input`).
EXTRACTED_INPUT = "extract_input.jsonl"
#: The plan input less the rows the validation quarantined (the plan step's).
PLAN_INPUT = "input.jsonl"
#: Entries of a plan input's large mapping or list staged per line.
INPUT_PART = 5_000


def run_name(run_id: str) -> str:
    """A file-name-safe form of a run id, at most 40 characters (the ledger's key length)."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", run_id).strip("_") or "run"
    if len(name) <= 40:
        return name
    return f"{name[:31]}_{hashlib.sha1(run_id.encode()).hexdigest()[:8]}"


#: Step files of a large dossier hold millions of records (ADR 0018): orjson writes them about six times faster
#: than the standard library, straight to UTF-8 bytes. Keys sorted, keys that are not text written as text (like
#: ``json.dumps``), NumPy scalars as numbers, datetimes and any other value through ``str``.
_JSON_OPTIONS = (
    orjson.OPT_SORT_KEYS
    | orjson.OPT_NON_STR_KEYS
    | orjson.OPT_SERIALIZE_NUMPY
    | orjson.OPT_PASSTHROUGH_DATETIME
)


def dumps(data: Any) -> bytes:
    """``data`` as the compact UTF-8 JSON of a step file."""
    return orjson.dumps(data, default=str, option=_JSON_OPTIONS)


class Staging:
    """The step files of one run under ``root`` (``<staging location>/<run name>``)."""

    def __init__(self, root: Location) -> None:
        """Use ``root`` as the run's folder; entity folders are created when a step first writes."""
        self.root = root

    def folder(self, entity: str | None) -> Any:
        """The folder of ``entity`` (None: the run's own folder)."""
        return self.root if entity is None else self.root / entity

    def path(self, entity: str | None, name: str) -> Any:
        """Where the file ``name`` of ``entity`` lives."""
        return self.folder(entity) / name

    def has(self, entity: str | None, name: str) -> bool:
        """True when a step wrote ``name`` for ``entity`` in this run."""
        return bool(self.path(entity, name).exists())

    def _writable(self, entity: str | None, name: str) -> Any:
        folder = self.folder(entity)
        folder.mkdir(parents=True, exist_ok=True)
        return folder / name

    def write_json(self, entity: str | None, name: str, data: Any) -> Any:
        """Write ``data`` as compact UTF-8 JSON; on a local disk atomically (a crash never leaves half a file)."""
        target = self._writable(entity, name)
        write_bytes_atomic(target, dumps(data))
        return target

    def copy(self, entity: str, source: str, name: str) -> Any:
        """Stage ``source``'s bytes again as ``name`` (a megabyte at a time), as :meth:`write_json` writes."""
        origin = _upstream(self.path(entity, source))
        target = self._writable(entity, name)
        with origin.open("rb") as fh:
            write_chunks_atomic(target, iter(lambda: fh.read(1 << 20), b""))
        return target

    def read_json(self, entity: str | None, name: str) -> Any:
        """Read a step file; a missing one means its step did not run in this run (a clear, fatal error)."""
        target = _upstream(self.path(entity, name))
        with target.open("rb") as fh, paused_collector():  # a JSON document is a tree (no cycle to collect)
            return orjson.loads(fh.read())

    def read_json_or_none(self, entity: str | None, name: str) -> Any:
        """Read a step file, or None when its step did not run (the report reads what exists)."""
        return self.read_json(entity, name) if self.has(entity, name) else None

    def write_input(self, entity: str, name: str, inp: PlanInput, lines: SageLines | None = None) -> Any:
        """Stage a plan input as JSON Lines: a head line with its small fields, then its large ones in parts.

        A mapping or list of more than :data:`INPUT_PART` entries (the Sage records, the bindings, ...) is written
        :data:`INPUT_PART` entries a line, a mapping in key order. Neither the writer nor the reader holds the whole
        document as one string or one parse: a large dossier's first load stages 392 MB of invoices, which took
        3 GB to parse at once (ADR 0018, decision 40). A record without its ``lines`` gets them from ``lines``
        while its part is written, and gives them back after: a first load's million lines are records a part at
        a time (decision 42).
        """
        target = self._writable(entity, name)
        with paused_collector():  # a plan input is a tree of millions of objects
            if lines is not None and len(inp.sage) <= INPUT_PART:
                lines.attach(inp.sage)  # written in the head line
            write_chunks_atomic(target, _input_lines(inp.to_dict(), lines=lines))
        return target

    def read_input(self, entity: str, name: str, *, records: bool = True) -> PlanInput:
        """The plan input staged as ``name`` (:meth:`write_input`).

        ``records`` False leaves the Sage records staged in parts unread (``sage`` holds only those of the head
        line): what the validation reads, which takes some of them out (:meth:`restage_input`).
        """
        with _line_file(_upstream(self.path(entity, name))) as fh, paused_collector():
            head = orjson.loads(fh.readline())
            raw: dict[str, Any] = head["fields"]
            for _ in range(int(head["parts"])):
                text = fh.readline()
                if not records and text.startswith(_RECORDS_PART):
                    continue
                line = orjson.loads(text)
                name, part = line["field"], line["part"]
                if isinstance(part, dict):
                    raw.setdefault(name, {}).update(part)
                else:
                    raw.setdefault(name, []).extend(part)
            return PlanInput.from_dict(raw)

    def restage_input(self, entity: str, source: str, name: str, inp: PlanInput, drop: set[str]) -> Any:
        """Stage as ``name`` the plan input ``inp`` read from ``source`` without records, less the ``drop`` keys.

        ``inp``'s fields are written as :meth:`write_input` writes them; the Sage records staged in parts in
        ``source`` are copied a part at a time, a part holding a dropped key written again without it.
        """
        origin = _upstream(self.path(entity, source))
        with _line_file(origin) as fh:
            staged = sum(1 for text in fh if text.startswith(_RECORDS_PART))

        def records() -> Iterator[bytes]:
            with _line_file(origin) as fh:
                for text in fh:
                    if not text.startswith(_RECORDS_PART):
                        continue
                    if not text.endswith(b"\n"):
                        raise FatalSyncError(
                            f"{origin} is cut short: clear the entity's task group to extract again"
                        )
                    part = orjson.loads(text)["part"]
                    if drop.isdisjoint(part):
                        yield text
                        continue
                    kept = {k: v for k, v in part.items() if k not in drop}
                    yield dumps({"field": "sage", "part": kept}) + b"\n"

        target = self._writable(entity, name)
        with paused_collector():
            lines = itertools.chain(_input_lines(inp.to_dict(), staged_parts=staged), records())
            write_chunks_atomic(target, lines)
        return target

    def write_plan(self, entity: str, plan: Plan) -> Any:
        """Stage ``plan`` as JSON Lines: a head line, then one line per op, then one per commit.

        The head holds everything but the ops and commits (:meth:`Plan.head`) and their counts. A large dossier's
        plan (1.3 million ops and as many commits for a million invoice lines) is written and read a line at a
        time, never as one document: parsing one 1.1 GB document took 9 GB at its peak (ADR 0018).
        """
        target = self._writable(entity, PLAN_FILE)
        write_chunks_atomic(target, _plan_lines(plan))
        return target

    @staticmethod
    def plan_spool() -> SpooledPlan:
        """A spool for a plan written as it is made (:class:`SpooledPlan`, a context manager)."""
        return SpooledPlan()

    def has_plan(self, entity: str) -> bool:
        """True when the plan step staged a plan for ``entity`` in this run."""
        return self.has(entity, PLAN_FILE)

    def read_plan(self, entity: str, *, ops: bool = True, commits: bool = True) -> Plan:
        """The staged plan of ``entity``; without its ops or its commits when those are False (its head only)."""
        target = self.path(entity, PLAN_FILE)
        with _line_file(target) as fh, paused_collector():  # millions of small trees (no cycle to collect)
            head = orjson.loads(fh.readline())
            op_count, count = int(head.pop("op_count")), int(head.pop("commit_count"))
            plan = Plan.from_dict(head)
            if ops:
                plan.ops = [Op.from_dict(orjson.loads(fh.readline())) for _ in range(op_count)]
            elif commits:
                for _ in range(op_count):
                    fh.readline()
            if commits:
                plan.commits = [Commit(**orjson.loads(fh.readline())) for _ in range(count)]
        return plan

    def staged_plan_ops(self, entity: str, start: int = 0) -> Iterator[Op]:
        """The ops of the staged plan of ``entity`` in plan order from position ``start``, one at a time (the log)."""
        target = self.path(entity, PLAN_FILE)
        with _line_file(target) as fh:
            count = int(orjson.loads(fh.readline())["op_count"])
            for _ in range(min(start, count)):
                fh.readline()
            for _ in range(start, count):
                yield Op.from_dict(orjson.loads(fh.readline()))

    def staged_op_records(self, entity: str) -> Iterator[tuple[str, str]]:
        """The record (entity, key) of each op of the staged plan of ``entity``, in plan order (ops not parsed)."""
        target = self.path(entity, PLAN_FILE)
        with _line_file(target) as fh:
            for _ in range(int(orjson.loads(fh.readline())["op_count"])):
                yield _op_record(fh.readline())

    def staged_ops(self, entity: str) -> StagedOps:
        """The ops of the staged plan of ``entity``, read a group at a time (:class:`StagedOps`, a context manager)."""
        return StagedOps(_upstream(self.path(entity, PLAN_FILE)))

    def staged_commits(self, entity: str, start: int = 0) -> Iterator[Commit]:
        """The commits of the staged plan of ``entity`` from position ``start``, one at a time (stored in chunks)."""
        target = self.path(entity, PLAN_FILE)
        with _line_file(target) as fh:
            head = orjson.loads(fh.readline())
            count = int(head["commit_count"])
            for _ in range(int(head["op_count"]) + min(start, count)):
                fh.readline()
            for _ in range(start, count):
                yield Commit(**orjson.loads(fh.readline()))

    def write_frame(self, entity: str, name: str, frame: pd.DataFrame) -> Any:
        """Stage a frame as Parquet; object columns Arrow cannot type (mixed values) are staged as text."""
        import pyarrow as pa

        target = self._writable(entity, name)
        try:
            self._to_parquet(frame, target)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            mixed = [c for c in frame.columns if frame[c].dtype == object]
            self._to_parquet(frame.astype({c: "string" for c in mixed}), target)
        return target

    @staticmethod
    def _to_parquet(frame: pd.DataFrame, target: Any) -> None:
        with target.open("wb") as fh:
            frame.to_parquet(fh, index=False)

    def read_frame(self, entity: str, name: str, columns: list[str] | None = None) -> pd.DataFrame:
        """Read a staged frame (only ``columns`` when given)."""
        import pandas as pd

        target = _upstream(self.path(entity, name))
        with target.open("rb") as fh:
            return pd.read_parquet(fh, columns=columns)


class SpooledPlan:
    """The ops and commits a planner has settled, in two local spool files written as they come.

    :meth:`~sage_sync.engine.plan.Plan.settle` hands them over; :meth:`Staging.write_plan` copies them into the
    staged plan before the rest.

    The invoices of a large dossier's first load are 1.3 million ops and as many commits: held whole they were
    2.1 GB of the plan step's 3.8 GB (ADR 0018, decision 39).
    """

    def __init__(self) -> None:
        """An empty spool (its files are made when the object is entered)."""
        self.kinds: Counter[str] = Counter()
        self.head: list[Op] = []
        self.commit_count = 0
        self._folder: tempfile.TemporaryDirectory[str] | None = None
        self._files: dict[str, Any] = {}

    def __enter__(self) -> SpooledPlan:
        """Open the spool files in a local temporary folder."""
        self._folder = tempfile.TemporaryDirectory(prefix="sage-sync-plan-")
        for name in ("ops", "commits"):
            self._files[name] = (Path(self._folder.name) / name).open("w+b", buffering=1 << 20)
        return self

    def __exit__(self, *_: object) -> None:
        """Close and remove the spool files."""
        for fh in self._files.values():
            fh.close()
        self._files = {}
        if self._folder is not None:
            self._folder.cleanup()
            self._folder = None

    def add(self, ops: list[Op], commits: list[Commit]) -> None:
        """Write ``ops`` and ``commits`` after those written before; count the ops by kind, keep the first ones."""
        if not self._files:
            raise RuntimeError("SpooledPlan is written inside its `with` block")
        self._files["ops"].write(b"".join(dumps(op) + b"\n" for op in ops))
        self._files["commits"].write(b"".join(dumps(c) + b"\n" for c in commits))
        self.kinds.update(op.kind for op in ops)
        self.commit_count += len(commits)
        if len(self.head) < DIGEST_OPS:
            self.head.extend(ops[: DIGEST_OPS - len(self.head)])

    def read(self, name: str) -> Iterator[bytes]:
        """The lines written to the spool file ``name`` (``ops`` or ``commits``), a megabyte at a time."""
        fh = self._files[name]
        fh.flush()
        fh.seek(0)
        yield from iter(lambda: fh.read(1 << 20), b"")
        fh.seek(0, 2)


class StagedOps:
    """The ops of a staged plan for a load that sends them a group at a time, never all parsed at once.

    A group is the ops of one kind and one entity, in plan order: the load sends the Sage writes, then each
    entity's creates, updates and deletes (:mod:`sage_sync.engine.apply`). Entering reads the plan's op lines once
    and sorts them by group into spool files in a local temporary folder, without parsing them (an op line begins
    with its kind and entity, :func:`_plan_lines`); :meth:`select` then parses one op at a time as the load reaches
    it. A large dossier's first load keeps a bulk call's ops in memory instead of 1.3 million (ADR 0018, decision
    38), and its first call leaves as soon as the lines are sorted instead of once they are all parsed. A file cut
    short is found before any op is sent.
    """

    def __init__(self, target: Any) -> None:
        """The ops of the staged plan ``target`` (sorted by group when the object is entered)."""
        self.target = target
        self.positions: dict[tuple[str, str], array[int]] = {}
        self.count = 0
        self._spool: tempfile.TemporaryDirectory[str] | None = None

    def __enter__(self) -> StagedOps:
        """Sort the op lines into one spool file per group."""
        self._spool = tempfile.TemporaryDirectory(prefix="sage-sync-ops-")
        files: dict[tuple[str, str], Any] = {}
        try:
            with _line_file(self.target) as fh:
                self.count = int(orjson.loads(fh.readline())["op_count"])
                for position in range(self.count):
                    line = fh.readline()
                    if not line.endswith(
                        b"\n"
                    ):  # every op line is followed by another line: the file was cut
                        raise FatalSyncError(
                            f"{self.target} is damaged (cut short): clear the entity's task group to plan again"
                        )
                    group = _op_group(line)
                    if group not in files:
                        files[group] = self._group_file(group).open("wb", buffering=1 << 20)
                        self.positions[group] = array("q")
                    files[group].write(line)
                    self.positions[group].append(position)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        finally:
            for out in files.values():
                out.close()
        return self

    def __exit__(self, *_: object) -> None:
        """Remove the spool files."""
        if self._spool is not None:
            self._spool.cleanup()
            self._spool = None

    def __len__(self) -> int:
        """How many ops the plan holds."""
        return self.count

    def groups(self) -> list[tuple[str, str]]:
        """The ``(kind, entity)`` groups the plan holds, in the order they first appear."""
        return list(self.positions)

    def select(self, kind: str, entity: str) -> Iterator[tuple[int, Op]]:
        """The ops of ``kind`` on ``entity`` with their positions in the plan, parsed one at a time."""
        group = (kind, entity)
        if group not in self.positions:
            return
        with _line_file(self._group_file(group)) as fh:
            for position in self.positions[group]:
                yield position, Op.from_dict(orjson.loads(fh.readline()))

    def _group_file(self, group: tuple[str, str]) -> Path:
        if self._spool is None:
            raise RuntimeError("StagedOps is read inside its `with` block")
        return Path(self._spool.name) / hashlib.sha1("|".join(group).encode()).hexdigest()


def _op_group(line: bytes) -> tuple[str, str]:
    """The kind and entity of a staged op line, read from its first bytes (parsed whole when they differ)."""
    if line.startswith(b'{"kind":"'):
        end = line.find(b'"', 9)
        if line.startswith(b'","entity":"', end):
            stop = line.find(b'"', end + 12)
            return _GROUP_NAMES.setdefault(
                line[9:stop], (line[9:end].decode(), line[end + 12 : stop].decode())
            )
    raw = orjson.loads(line)
    return str(raw["kind"]), str(raw["entity"])


def _op_record(line: bytes) -> tuple[str, str]:
    """The entity and key of a staged op line, read from its first bytes (parsed whole when they differ)."""
    kind, entity = _op_group(line)
    prefix = f'{{"kind":"{kind}","entity":"{entity}","key":"'.encode()
    if line.startswith(prefix):
        stop = line.find(b'"', len(prefix))
        key = line[len(prefix) : stop]
        if b"\\" not in key:  # an escaped character: the key is read by the JSON parser
            return entity, key.decode()
    return entity, str(orjson.loads(line)["key"])


#: The groups met so far, by the bytes that name them (one tuple per group however many ops it holds).
_GROUP_NAMES: dict[bytes, tuple[str, str]] = {}


#: How a staged plan input's line of Sage records starts (``dumps`` sorts keys: ``field`` before ``part``).
_RECORDS_PART = b'{"field":"sage","part":'


def _input_lines(
    data: dict[str, Any], *, lines: SageLines | None = None, staged_parts: int = 0
) -> Iterator[bytes]:
    """The lines of a staged plan input (:meth:`Staging.write_input`).

    The records of a part of ``sage`` without their ``lines`` get them from ``lines`` for the time of the part.
    ``staged_parts`` more lines of records follow the ones written here (:meth:`Staging.restage_input`).
    """
    large = {k: v for k, v in data.items() if isinstance(v, dict | list) and len(v) > INPUT_PART}
    parts = sum(-(-len(v) // INPUT_PART) for v in large.values()) + staged_parts
    yield dumps({"fields": {k: v for k, v in data.items() if k not in large}, "parts": parts}) + b"\n"
    for name, value in large.items():
        items = sorted(value.items(), key=lambda kv: str(kv[0])) if isinstance(value, dict) else value
        for start in range(0, len(items), INPUT_PART):
            part = items[start : start + INPUT_PART]
            if not isinstance(value, dict):
                yield dumps({"field": name, "part": part}) + b"\n"
                continue
            chunk = dict(part)
            lent = [k for k, r in chunk.items() if "lines" not in r] if name == "sage" and lines else []
            if lines is not None and lent:
                lines.attach(chunk, lent)
            yield dumps({"field": name, "part": chunk}) + b"\n"
            for key in lent:
                del chunk[key]["lines"]


def _upstream(target: Any) -> Any:
    """``target``, a file an earlier step writes; a missing one means that step did not run (a clear, fatal error)."""
    if not target.exists():
        raise FatalSyncError(f"{target} is missing: its upstream step did not complete in this run")
    return target


@contextmanager
def _line_file(target: Any) -> Iterator[Any]:
    """The open JSON Lines file ``target`` (a plan, a plan input); a missing or damaged one is a clear, fatal error."""
    with _upstream(target).open("rb") as fh:
        try:
            yield fh
        except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
            raise FatalSyncError(
                f"{target} is damaged ({exc}): clear the entity's task group to plan again"
            ) from exc


def _plan_lines(plan: Plan) -> Iterator[bytes]:
    """The lines of a staged plan (:meth:`Staging.write_plan`), a thousand at a time.

    An op or a commit is written as its dataclass (orjson reads its fields in order, without building a dict per
    record: 13.0 -> 7.6 s for the 2.6 million lines of a large dossier's invoices); the values inside are written
    as :func:`dumps` writes them, keys sorted.
    """
    spool = plan.spool
    if spool is not None and not isinstance(spool, SpooledPlan):
        raise TypeError(f"a plan spooled in a {type(spool).__name__} cannot be staged")
    settled = spool.commit_count if spool is not None else 0
    head = {**plan.head(), "op_count": plan.op_count, "commit_count": settled + len(plan.commits)}
    yield dumps(head) + b"\n"
    for name, records in (("ops", plan.ops), ("commits", plan.commits)):
        if spool is not None:
            yield from spool.read(name)
        for start in range(0, len(records), 1000):
            yield b"".join(dumps(r) + b"\n" for r in records[start : start + 1000])
