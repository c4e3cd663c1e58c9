"""Small deterministic PNG pictures for the stand-in catalogue, written with zlib and struct only."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np

PICTURE_SIZE = 48
_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


def render_png(seed: int, size: int = PICTURE_SIZE) -> bytes:
    """Return a ``size`` × ``size`` RGB PNG with two colours and a stripe pattern derived from ``seed``."""
    rng = np.random.default_rng(seed)
    colours = rng.integers(0, 256, (2, 3)).astype(np.uint8)
    period = int(rng.integers(3, 12))
    slope = int(rng.integers(0, 3))
    y, x = np.mgrid[0:size, 0:size]
    mask = ((x + slope * y) // period) % 2 == 0
    pixels = np.where(mask[..., None], colours[0], colours[1]).astype(np.uint8)
    # Each scanline starts with filter type 0 (none).
    raw = np.concatenate(
        [np.zeros((size, 1), dtype=np.uint8), pixels.reshape(size, size * 3)], axis=1
    ).tobytes()
    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return (
        _SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(raw, 9)) + _chunk(b"IEND", b"")
    )


def write_pictures(media_dir: Path, pictures: list[tuple[str, int]]) -> int:
    """Write each ``(relative path, seed)`` picture under ``media_dir``; return how many files were written."""
    media_dir.mkdir(parents=True, exist_ok=True)
    for relative, seed in pictures:
        target = media_dir / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(render_png(seed))
    return len(pictures)
