"""Reading a Sage entity the way the sync does: the hook's source frames, assembled by the engine."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd

from sage_sync.adapters.sage_odbc import SageOdbcSide
from sage_sync.engine.snapshot import KEY, assemble
from sage_sync.hooks.sage50 import Sage50Hook
from sage_sync.mapping.registry import registry


def read_entity(hook: Sage50Hook, entity: str, media: Path | None = None) -> dict[str, pd.DataFrame]:
    """The source frames of ``entity``; an entity with an assembly (products) as one assembled frame."""
    side = SageOdbcSide(hook, media_folder=media)
    frames = side.read_snapshot(entity)
    if registry()[entity].assemble is None:
        return frames

    def picture_hash(relative: str) -> str | None:
        content = side.read_picture(relative)
        return hashlib.sha256(content).hexdigest() if content is not None else None

    return {entity: assemble(entity, frames, picture_hash).drop(columns=[KEY])}
