"""Engine benchmark: the pipeline's steps for the accounts entity with 1 % churn, in-memory sides.

    .venv/bin/python bench/engine_plan_bench.py [--sizes 10000 100000] [--churn 0.01] [--runs 3]

Each size gets a SQLite state database in a temporary folder and an initial full load (not timed); then each
timed run edits ``churn`` of the accounts in Sage and runs the five steps of one entity. One JSON object goes to
stdout with the median seconds per step and in total; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.support.memory import SyncWorld, account_row

from sage_sync.engine.config import SyncConfig
from sage_sync.engine.pipeline import StepContext, commit, extract, load, plan, validate
from sage_sync.engine.staging import Staging


def _world(size: int, folder: Path) -> SyncWorld:
    world = SyncWorld(f"sqlite:///{folder / 'state.db'}", SyncConfig())
    for i in range(size):
        world.sage.put("accounts", account_row(f"C{i:07d}", f"Company {i}", city="Lyon", zip="69001"))
    world.run(entities=("accounts",))  # the initial load: every account created in SSM
    return world


def _one_run(world: SyncWorld, size: int, churn: float, round_no: int) -> dict[str, float]:
    step = max(1, int(1 / churn))
    for i in range(0, size, step):
        world.sage.edit("accounts", (f"C{i:07d}",), city=f"Lyon {round_no}")
    world.ssm.advance(900)
    with tempfile.TemporaryDirectory() as tmp:
        ctx = StepContext.of(f"bench{round_no}", "accounts", Staging(Path(tmp)), config=world.config)
        t0 = time.perf_counter()
        extract(ctx, world.sage, world.ssm, world.state)
        t1 = time.perf_counter()
        validate(ctx, world.state)
        t2 = time.perf_counter()
        planned = plan(ctx)
        t3 = time.perf_counter()
        loaded = load(ctx, world.sage, world.ssm, world.state)
        commit(ctx, world.state)
        t4 = time.perf_counter()
    if planned.ops != len(range(0, size, step)) or loaded.failed:
        raise RuntimeError(f"expected {len(range(0, size, step))} confirmed updates, planned {planned.ops}")
    return {
        "extract_s": t1 - t0,
        "validate_s": t2 - t1,
        "plan_s": t3 - t2,
        "load_commit_s": t4 - t3,
        "total_s": t4 - t0,
    }


def measure(size: int, churn: float, runs: int) -> dict[str, Any]:
    """Median step timings of ``runs`` incremental runs over ``size`` accounts."""
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        world = _world(size, Path(tmp))
        print(f"size {size}: initial load {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        samples = []
        for r in range(runs):
            samples.append(_one_run(world, size, churn, r + 1))
            print(f"size {size}: run {r + 1}/{runs} {samples[-1]['total_s']:.2f} s", file=sys.stderr)
    return {k: round(statistics.median(s[k] for s in samples), 4) for k in samples[0]}


def main() -> None:
    """Parse the options, measure every size, print one JSON object."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--churn", type=float, default=0.01, help="share of accounts edited per run")
    parser.add_argument("--runs", type=int, default=3, help="timed runs per size (the median is reported)")
    args = parser.parse_args()
    out: dict[str, Any] = {"entity": "accounts", "churn": args.churn, "runs": args.runs, "sizes": {}}
    for size in args.sizes:
        out["sizes"][str(size)] = measure(size, args.churn, args.runs)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
