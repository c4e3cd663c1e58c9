"""Python's cycle collector and the millions of objects of a large run (ADR 0018, decision 26).

CPython's cycle collector runs when allocations outnumber deallocations, and a full pass traverses every tracked
object (dict, list, instance) alive. Parsing a step file, building a plan or committing one allocates millions of
them in a row, so the passes grow with what was already built: parsing the invoices' 1.1 GB staged plan of a
`large` first load took 45 s with the collector and 11 s without it (20 full passes over up to ten million objects).

What these steps build is a tree (JSON values, plans, plan inputs, state rows: no object refers back to its
parents), freed by reference counting alone when dropped. So they are built with the collector paused; it resumes
when the build is done, and collects whatever cycles a library made meanwhile (a bounded amount per step).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def paused_collector() -> Iterator[None]:
    """Run the block without the cycle collector (nested blocks keep it paused until the outermost ends)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
