"""Engine benchmark: extract -> plan -> apply+commit of the accounts entity with 1 % churn, in-memory sides.

    .venv/bin/python bench/engine_plan_bench.py [--sizes 10000 100000] [--churn 0.01] [--runs 3]

Each size gets a SQLite state database in a temporary folder and an initial full load (not timed); then each
timed run edits ``churn`` of the accounts in Sage and runs the three engine steps. One JSON object goes to
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

from sage_sync.engine.run import apply_and_commit, extract, plan_entity
from tests.support.memory import SyncWorld, account_row

from sage_sync.engine.config import SyncConfig
from sage_sync.engine.state import now_iso


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
    lists, run_at = world.ssm.value_lists(), now_iso()
    t0 = time.perf_counter()
    inp = extract("accounts", world.sage, world.ssm, world.state, world.config, lists=lists, run_at=run_at)
    t1 = time.perf_counter()
    plan = plan_entity(inp, world.config)
    t2 = time.perf_counter()
    applied = apply_and_commit(inp, plan, world.sage, world.ssm, world.state, f"bench{round_no}")
    t3 = time.perf_counter()
    if len(plan.ops) != len(range(0, size, step)) or not all(o.ok for o in applied.outcomes):
        raise RuntimeError(f"expected {len(range(0, size, step))} confirmed updates, planned {len(plan.ops)}")
    return {"extract_s": t1 - t0, "plan_s": t2 - t1, "commit_s": t3 - t2, "total_s": t3 - t0}


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
