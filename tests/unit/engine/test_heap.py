"""Memory a large step freed goes back to the system before the next task of the process (ADR 0018)."""

from __future__ import annotations

from pathlib import Path


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS in /proc/self/status")


def test_freed_heap_memory_is_given_back_to_the_system() -> None:
    from sage_sync.engine.heap import return_freed_memory

    # 200 MB in 8 KB blocks (below the allocator's mmap threshold: they live in the heap), then one block kept
    # above them, so freeing the rest leaves a hole the allocator does not give back on its own.
    blocks = [bytearray(8192) for _ in range(25_000)]
    kept = bytearray(8192)
    before = _rss_mb()
    del blocks
    held = _rss_mb()
    assert return_freed_memory(above_mb=0) is True
    after = _rss_mb()
    assert held > before - 50, f"the allocator gave the hole back by itself ({before:.0f} -> {held:.0f} MB)"
    assert after < held - 150, f"RSS {held:.0f} MB before the trim, {after:.0f} MB after"
    assert len(kept) == 8192
    # A process smaller than the threshold is not trimmed (a trim of a large heap takes tens of milliseconds).
    assert return_freed_memory(above_mb=after + 10_000) is False
