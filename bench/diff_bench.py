"""Snapshot-diff benchmark at 10k, 100k and 1M rows: JSON lines on stdout, a Markdown table in bench/results/.

    .venv/bin/python bench/diff_bench.py [--sizes 10000 100000 1000000] [--churn 0.01] [--runs 5] [--columns 12]

Each size is one ``sage-sync bench diff`` measurement (see ``bench/diff_harness.py``); the table is written to
``bench/results/diff.md`` (git-ignored) and printed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from diff_harness import BENCH_DIR, GOAL_MEDIAN_S, GOAL_PEAK_MB, MEMORY_METHOD, run_diff_benchmark  # noqa: E402

RESULTS = BENCH_DIR / "results" / "diff.md"


def _cell(value: Any, unit: str = "") -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.3f}{unit}" if unit == " s" else f"{value:.1f}{unit}"
    return f"{value}{unit}"


def markdown(results: list[dict[str, Any]]) -> str:
    """The results as a Markdown table, with how they were measured."""
    head = (
        "| rows | load (1 min) | ours median | ours CPU | ours peak | hash current | ours cold | pandas median | pandas CPU | pandas peak "
        "| datacompy median | datacompy CPU | datacompy peak | vs pandas | vs datacompy | all correct |"
    )
    lines = [
        "# Snapshot diff benchmark",
        "",
        f"Goal at 1,000,000 rows x 12 columns, 1 % churn: <= {GOAL_MEDIAN_S} s median, <= {GOAL_PEAK_MB:.0f} MB peak.",
        "",
        head,
        "|" + "---|" * (head.count("|") - 1),
    ]
    for r in results:
        correct = all(r.get(f"{a}_correct", True) for a in ("ours", "pandas", "datacompy"))
        lines.append(
            f"| {r['rows']:,} | {r.get('load_average_1m', {}).get('ours')} | {_cell(r['ours_median_s'], ' s')} | {_cell(r.get('ours_cpu_median_s'), ' s')} "
            f"| {_cell(r['ours_peak_mb'], ' MB')} "
            f"| {_cell(r.get('ours_hash_current_median_s'), ' s')} | {_cell(r.get('ours_cold_median_s'), ' s')} "
            f"| {_cell(r['pandas_median_s'], ' s')} | {_cell(r.get('pandas_cpu_median_s'), ' s')} "
            f"| {_cell(r['pandas_peak_mb'], ' MB')} "
            f"| {_cell(r['datacompy_median_s'], ' s')} | {_cell(r.get('datacompy_cpu_median_s'), ' s')} "
            f"| {_cell(r['datacompy_peak_mb'], ' MB')} "
            f"| {_cell(r['speedup_vs_pandas'], 'x')} | {_cell(r['speedup_vs_datacompy'], 'x')} | {correct} |"
        )
    first = results[0] if results else {}
    lines += [
        "",
        f"Columns: {first.get('columns')}, churn: {first.get('churn')}, runs: {first.get('runs')} (after one warm-up), "
        f"seed: {first.get('seed')}, CPUs: {first.get('machine', {}).get('cpus')}.",
        f"Peak memory: {MEMORY_METHOD}.",
        f"Timed: {first.get('timed', '')}",
    ]
    errors = [
        f"- {r['rows']:,} rows: datacompy: {r['datacompy_error']}"
        for r in results
        if r.get("datacompy_error")
    ]
    if errors:
        lines += ["", "Not measured:", *errors]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the snapshot-diff benchmark at several sizes.")
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--churn", type=float, default=0.01)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--columns", type=int, default=12)
    args = parser.parse_args(argv)
    results = []
    for rows in args.sizes:
        result = run_diff_benchmark(rows=rows, churn=args.churn, runs=args.runs, columns=args.columns)
        print(json.dumps(result), flush=True)
        results.append(result)
    table = markdown(results)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(table)
    print(table)
    print(f"written to {RESULTS.relative_to(BENCH_DIR.parent)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
