"""The staging area of a run: one folder per entity holding each step's output (JSON, Parquet).

XCom carries only the paths and counts; the data stays here (``$SAGE_SYNC_HOME/staging/<run>/<entity>/``), so a
re-run of one step reads exactly what the previous step produced. Names of the files each step writes:
``extract.json`` (the engine's plan input), ``sage.parquet`` (the Sage snapshot as validated), ``quality.json``,
``input.json`` (the plan input minus quarantined rows), ``plan.json``, ``apply.json``, ``commit.json``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from sage_sync.engine.state import StateStore, record_log, snapshot_rows


def write_json(path: Path, data: Any) -> Path:
    """Write ``data`` as JSON atomically (a crash never leaves half a file for the next step)."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    # Compact: the step files of a medium dossier hold hundreds of thousands of records.
    tmp.write_text(json.dumps(data, ensure_ascii=False, sort_keys=True, default=str), encoding="utf-8")
    os.replace(tmp, path)
    return path


def read_json(path: Path) -> Any:
    """Read a step file; a missing one means the upstream step did not run for this run."""
    if not path.exists():
        from sage_sync.errors import FatalSyncError

        raise FatalSyncError(f"{path} is missing: its upstream step did not complete in this run")
    return json.loads(path.read_text(encoding="utf-8"))


def state_token(state: StateStore, entity: str) -> str:
    """A marker of how far the state of ``entity`` has moved: watermark, snapshot size, last logged record.

    The load and commit steps compare it with the one taken at extract time: when another run committed in
    between, the staged plan is stale and must not be applied (a re-run of an old interval never writes older
    data over newer).
    """
    with state.engine.connect() as conn:
        size = conn.execute(
            sa.select(sa.func.count()).select_from(snapshot_rows).where(snapshot_rows.c.entity == entity)
        ).scalar()
        last = conn.execute(
            sa.select(sa.func.max(record_log.c.id)).where(record_log.c.entity == entity)
        ).scalar()
    return f"{state.watermark(entity)}|{int(size or 0)}|{int(last or 0)}"
