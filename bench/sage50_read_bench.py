"""Read benchmark of the Sage 50 FR dossier over ODBC: pyodbc ``fetchmany`` vs arrow-odbc.

Measures ``Sage50Hook.read_source`` (the whole path: ODBC fetch, typed pandas frame with the mapping's dtypes)
for ``F_COMPTET`` (accounts source) and ``F_DOCLIGNE`` (invoice lines source) on a ``large`` dossier, with both
fetch paths, several runs each, and reports the median rows/s. Prints one JSON object, then a Markdown table.

Create the dossier first (SQLite, through the SQLite3 ODBC driver)::

    .venv/bin/sage-sync standin create --engine sqlite --path /tmp/large.db --scale large --seed 1
    .venv/bin/python bench/sage50_read_bench.py --path /tmp/large.db --runs 5

Recorded on the project machine (2 cores, other jobs running, load average about 5), ``large`` seed 1,
chunk 50,000, median of 5 runs after one warm-up (docs/adr/0004-odbc-fetch-path.md has the discussion)::

    | table      | fetch path | rows      | median s | median rows/s |
    |------------|------------|----------:|---------:|--------------:|
    | F_COMPTET  | pyodbc     |    97,000 |    3.369 |        28,794 |
    | F_COMPTET  | arrow      |    97,000 |    1.149 |        84,405 |
    | F_DOCLIGNE | pyodbc     | 1,093,813 |   17.873 |        61,200 |
    | F_DOCLIGNE | arrow      | 1,093,813 |    9.065 |       120,657 |
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

from airflow.models.connection import Connection

from sage_sync.hooks.sage50 import FETCH_PATHS, Sage50Hook

TARGETS = (("F_COMPTET", "accounts", "accounts"), ("F_DOCLIGNE", "invoices", "lines"))


def _hook(path: Path, fetch_path: str, chunk_size: int) -> Sage50Hook:
    connection = Connection(conn_id="sage50_bench", conn_type="odbc", schema=str(path))
    return Sage50Hook(
        connection=connection,
        driver="SQLite3",
        fetch_path=fetch_path,  # type: ignore[arg-type]
        chunk_size=chunk_size,
    )


def measure(path: Path, runs: int, chunk_size: int) -> dict[str, object]:
    """Run every (table, fetch path) ``runs`` times, alternating paths, and return the medians."""
    results: dict[str, dict[str, dict[str, object]]] = {}
    for table, entity, source in TARGETS:
        timings: dict[str, list[float]] = {p: [] for p in FETCH_PATHS}
        rows: dict[str, int] = {}
        for run in range(runs + 1):  # run 0 warms the OS page cache and is not counted
            order = FETCH_PATHS if run % 2 == 0 else tuple(reversed(FETCH_PATHS))
            for fetch_path in order:
                hook = _hook(path, fetch_path, chunk_size)
                start = time.perf_counter()
                frame = hook.read_source(entity, source)
                elapsed = time.perf_counter() - start
                rows[fetch_path] = len(frame)
                if run:
                    timings[fetch_path].append(elapsed)
                print(
                    f"{table} {fetch_path} run {run}: {len(frame):,} rows in {elapsed:.2f}s", file=sys.stderr
                )
        results[table] = {
            p: {
                "rows": rows[p],
                "median_seconds": round(statistics.median(timings[p]), 3),
                "median_rows_per_second": round(rows[p] / statistics.median(timings[p])),
                "runs_seconds": [round(t, 3) for t in timings[p]],
            }
            for p in FETCH_PATHS
        }
    return {
        "dossier": str(path),
        "engine": "sqlite (SQLite3 ODBC driver)",
        "runs": runs,
        "chunk_size": chunk_size,
        "python": platform.python_version(),
        "results": results,
    }


def markdown(report: dict[str, object]) -> str:
    """The report as a Markdown table: one row per table and fetch path."""
    lines = ["| table | fetch path | rows | median s | median rows/s |", "|---|---|---:|---:|---:|"]
    results = report["results"]
    assert isinstance(results, dict)
    for table, paths in results.items():
        for path, r in paths.items():
            lines.append(
                f"| {table} | {path} | {r['rows']:,} | {r['median_seconds']} | {r['median_rows_per_second']:,} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments, run the benchmark, print JSON then Markdown."""
    parser = argparse.ArgumentParser(
        description="Measure Sage50Hook reads (pyodbc fetchmany vs arrow-odbc) of F_COMPTET and F_DOCLIGNE."
    )
    parser.add_argument(
        "--path", type=Path, default=Path("/tmp/large.db"), help="SQLite dossier (scale large)"
    )
    parser.add_argument("--runs", type=int, default=5, help="measured runs per table and path (median taken)")
    parser.add_argument("--chunk-size", type=int, default=50_000, help="rows per fetch / Arrow batch")
    args = parser.parse_args(argv)
    if not args.path.exists():
        parser.error(f"{args.path} does not exist; create it with `sage-sync standin create --scale large`")
    report = measure(args.path, args.runs, args.chunk_size)
    print(json.dumps(report, indent=2))
    print()
    print(markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
