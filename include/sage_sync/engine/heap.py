"""Giving the memory a large step freed back to the system (ADR 0018, decision 32).

glibc's allocator keeps what a process frees for its own reuse, and gives back only the free space at the very top
of its heap. After the extract read the million invoice lines of a `large` dossier, the process held 1.1 GB for
220 MB of frames (arrow-odbc's batches and their conversion, freed but kept); ``malloc_trim(0)`` gave 520 MB back.
A task process that ends returns everything anyway, but ``airflow dags test`` (the demo, the bench, a manual run)
runs every task in one process, where each step's transient buffers would stay in every later step's footprint.
"""

from __future__ import annotations

import ctypes
import functools
import os
from collections.abc import Callable
from typing import Any


@functools.cache
def _malloc_trim() -> Callable[[int], Any] | None:
    """The C library's ``malloc_trim`` (glibc), or None where the C library has none (musl, macOS)."""
    try:  # the symbols the process has loaded, the C library's among them (no library search)
        process = ctypes.CDLL(None)
    except OSError:
        return None
    return getattr(process, "malloc_trim", None)


#: Below this resident size a process has little to give back, and a trim (40-50 ms on a large heap) is skipped.
WORTH_TRIMMING_MB = 1024


def return_freed_memory(*, above_mb: float = WORTH_TRIMMING_MB) -> bool:
    """Give the memory this process freed back to the system when it holds more than ``above_mb``.

    Returns whether a trim was made (False where the C library cannot, or the process is small).
    """
    if _resident_mb() < above_mb:
        return False
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True


def _resident_mb() -> float:
    """The resident memory of the process in MB (infinite where ``/proc`` does not say: trim anyway)."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return float("inf")
