"""Run every benchmark in this folder and keep each one's JSON output under bench/results/.

Usage: .venv/bin/python bench/run_all.py [--only NAME ...] [--quick]

Each benchmark runs in its own process (several runs, medians, baselines measured in the same run); this script
only sequences them, shows progress and collects their last JSON line into bench/results/<name>.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
PY = sys.executable
LARGE_DOSSIER = RESULTS / "large.db"


def _benchmarks(quick: bool) -> dict[str, list[list[str]]]:
    runs = "2" if quick else "5"
    return {
        "standin_generate": [
            [PY, str(HERE / "standin_generate.py"), "--scale", "large", "--runs", "1" if quick else "3"]
        ],
        "sage50_read": [
            *(
                []
                if LARGE_DOSSIER.exists()
                else [
                    [
                        str(Path(PY).parent / "sage-sync"),
                        "standin",
                        "create",
                        "--engine",
                        "sqlite",
                        "--path",
                        str(LARGE_DOSSIER),
                        "--scale",
                        "large",
                        "--seed",
                        "1",
                    ]
                ]
            ),
            [PY, str(HERE / "sage50_read_bench.py"), "--path", str(LARGE_DOSSIER), "--runs", runs],
        ],
        "ssm_api": [[PY, str(HERE / "ssm_api_bench.py"), "--runs", runs]],
        "diff": [[PY, str(HERE / "diff_bench.py"), "--runs", runs]],
    }


def _last_json(text: str) -> object | None:
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("{") and line.endswith("}"):
            try:
                return json.loads(line)
            except json.JSONDecodeError:
                continue
    return None


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", nargs="*", help="run only these benchmarks (default: all)")
    parser.add_argument("--quick", action="store_true", help="fewer runs, for a smoke check")
    args = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    selected = _benchmarks(args.quick)
    if args.only:
        unknown = set(args.only) - set(selected)
        if unknown:
            parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}; known: {', '.join(selected)}")
        selected = {name: cmds for name, cmds in selected.items() if name in args.only}
    failed = []
    for index, (name, commands) in enumerate(selected.items(), start=1):
        print(f"[{index}/{len(selected)}] {name} ...", flush=True)
        started = time.perf_counter()
        output = ""
        for command in commands:
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            output = done.stdout
            if done.returncode != 0:
                failed.append(name)
                print(f"    failed (exit {done.returncode}):\n{done.stderr[-2000:]}", flush=True)
                break
        else:
            result = _last_json(output)
            (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
            print(
                f"    done in {time.perf_counter() - started:.0f} s -> bench/results/{name}.json", flush=True
            )
    if failed:
        print(f"Failed: {', '.join(failed)}")
        return 1
    print(f"All {len(selected)} benchmark(s) done; results in bench/results/.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
