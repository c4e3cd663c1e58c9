"""End-to-end benchmark of the whole DAG: initial load, 1 % churn on both sides, no change (one JSON per phase).

Usage: ``python bench/e2e_bench.py --scale medium [--folder DIR]`` (same as ``sage-sync bench e2e``).
"""

from __future__ import annotations

import typer

from sage_sync_tools.bench_e2e import e2e

if __name__ == "__main__":
    typer.run(e2e)
