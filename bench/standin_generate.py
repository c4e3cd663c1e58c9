"""Time the stand-in dossier generation on SQLite (default: ``large``, 3 runs) and print one JSON object.

Usage: .venv/bin/python bench/standin_generate.py [--scale large] [--runs 3] [--seed 7]
Each run generates the data in memory, then loads it into a fresh SQLite file in a temporary folder with its
media folder; the JSON gives per-run and median seconds for both phases, the row counts and the file size.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from sage_sync.simulators.standin.create import create_sqlite_dossier
from sage_sync.simulators.standin.generator import generate_dossier


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", default="large")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    generate_s, load_s, total_s = [], [], []
    counts: dict[str, int] = {}
    invoice_lines = size = pictures = 0
    for run in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="standin-bench-") as folder:
            path = Path(folder) / "dossier.db"
            started = time.perf_counter()
            dossier = generate_dossier(args.scale, args.seed)
            generated = time.perf_counter()
            result = create_sqlite_dossier(path, dossier)
            loaded = time.perf_counter()
            generate_s.append(generated - started)
            load_s.append(loaded - generated)
            total_s.append(loaded - started)
            counts, pictures, size = result.counts, result.pictures, path.stat().st_size
            invoice_lines = int(np.isin(dossier.tables["F_DOCLIGNE"].columns["DO_Type"], [6, 7]).sum())
            print(f"run {run + 1}/{args.runs}: {total_s[-1]:.1f} s", file=sys.stderr)
    print(
        json.dumps(
            {
                "benchmark": "standin_generate_sqlite",
                "scale": args.scale,
                "seed": args.seed,
                "runs": args.runs,
                "generate_s": [round(x, 2) for x in generate_s],
                "load_s": [round(x, 2) for x in load_s],
                "total_s": [round(x, 2) for x in total_s],
                "median_total_s": round(statistics.median(total_s), 2),
                "counts": counts,
                "invoice_lines": invoice_lines,
                "pictures": pictures,
                "file_bytes": size,
            }
        )
    )


if __name__ == "__main__":
    main()
