"""The snapshot-diff benchmark: one data set, three approaches, each timed in its own interpreter.

Approaches: ``ours`` (:func:`sage_sync.engine.diff.diff_snapshots` with the previous snapshot's persisted
hashes), ``pandas`` (the straightforward outer merge and column compare,
:func:`tests.support.diff_reference.reference_diff`) and ``datacompy`` (``PandasCompare`` plus
``all_mismatch()``). datacompy pins pandas below the project's version, so it runs in its own virtual
environment, created by :data:`DATACOMPY_VENV_COMMAND`; without it the result says why instead of failing.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
DATACOMPY_VENV = BENCH_DIR / ".venv-datacompy"
DATACOMPY_PYTHON = DATACOMPY_VENV / "bin" / "python"
DATACOMPY_VENV_COMMAND = (
    "uv venv -q --allow-existing --python 3.11 bench/.venv-datacompy && "
    "uv pip install -q --python bench/.venv-datacompy/bin/python 'datacompy==1.1.0' 'pandas>=3.0,<3.1' pyarrow"
)
GOAL_MEDIAN_S = 1.0
GOAL_PEAK_MB = 1024.0
MEMORY_METHOD = (
    "resident-set growth during one run: VmHWM reset via /proc/self/clear_refs before the run, read after it, "
    "minus VmRSS at the start (all allocators); the largest over the runs"
)


def _say(message: str) -> None:
    print(f"[bench diff] {message}", file=sys.stderr, flush=True)


def _run(python: Path | str, approach: str, data: Path, runs: int, timeout_s: float) -> dict[str, Any]:
    command = [str(python), str(BENCH_DIR / "diff_runner.py"), "--approach", approach, "--data", str(data)]
    completed = subprocess.run(
        [*command, "--runs", str(runs)], capture_output=True, text=True, timeout=timeout_s, check=False
    )
    if completed.returncode != 0:
        last = (completed.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"{approach} run failed (exit {completed.returncode}): {last}")
    result: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    return result


def _datacompy_python() -> tuple[Path | None, str | None]:
    if not DATACOMPY_PYTHON.exists():
        return None, f"bench/.venv-datacompy is missing; create it with: {DATACOMPY_VENV_COMMAND}"
    probe = subprocess.run(
        [str(DATACOMPY_PYTHON), "-c", "import datacompy, pyarrow"],
        capture_output=True,
        text=True,
        check=False,
    )
    if probe.returncode != 0:
        return (
            None,
            f"datacompy does not import in bench/.venv-datacompy; recreate it with: {DATACOMPY_VENV_COMMAND}",
        )
    return DATACOMPY_PYTHON, None


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or denominator is None or denominator <= 0:
        return None
    return round(numerator / denominator, 2)


def run_diff_benchmark(
    rows: int,
    churn: float = 0.01,
    runs: int = 5,
    columns: int = 12,
    seed: int | None = None,
    say: Callable[[str], None] = _say,
    timeout_s: float = 900.0,
) -> dict[str, Any]:
    """Generate one snapshot pair, time the three approaches on it and return the combined result."""
    sys.path.insert(0, str(BENCH_DIR))
    from diff_data import DEFAULT_SEED, KEY, make_snapshots

    seed = DEFAULT_SEED if seed is None else seed
    out: dict[str, Any] = {"rows": rows, "churn": churn, "columns": columns, "runs": runs, "seed": seed}
    # Other work on the machine slows every approach; the 1-minute load average says how busy it was.
    out["load_average_1m"] = {"start": _load()}
    with tempfile.TemporaryDirectory(prefix="sage-sync-diff-bench-") as folder:
        data = Path(folder)
        started = time.perf_counter()
        say(f"generating {rows:,} rows x {columns} columns with {churn:.2%} churn (seed {seed})")
        previous, current, expected = make_snapshots(rows, churn, columns, seed)
        previous.to_parquet(data / "previous.parquet")
        current.to_parquet(data / "current.parquet")
        (data / "meta.json").write_text(json.dumps({"key": list(KEY), "expected": expected}))
        out["expected"] = expected
        out["dtypes"] = {name: str(dtype) for name, dtype in previous.dtypes.items()}
        del previous, current
        say(f"data ready in {time.perf_counter() - started:.1f} s")

        for approach in ("ours", "pandas", "datacompy"):
            python: Path | str | None = sys.executable
            error = None
            if approach == "datacompy":
                python, error = _datacompy_python()
            result: dict[str, Any] | None = None
            if python is not None:
                say(f"timing {approach} ({runs} runs, own process)")
                try:
                    result = _run(python, approach, data, runs, timeout_s)
                except (RuntimeError, subprocess.TimeoutExpired, json.JSONDecodeError) as exc:
                    error = str(exc)
            if result is None:
                say(f"{approach}: not measured: {error}")
                out[f"{approach}_median_s"] = None
                out[f"{approach}_peak_mb"] = None
                out[f"{approach}_cpu_median_s"] = None
                out[f"{approach}_error"] = error
                continue
            out[f"{approach}_median_s"] = round(result["median_s"], 4)
            out[f"{approach}_peak_mb"] = round(result["peak_mb"], 1)
            out[f"{approach}_cpu_median_s"] = round(result["cpu_median_s"], 4)
            out[f"{approach}_times_s"] = [round(t, 4) for t in result["times_s"]]
            out[f"{approach}_correct"] = result["correct"]
            if not result["correct"]:
                out[f"{approach}_counts"] = result["counts"]
            if approach == "ours":
                out["ours_hash_current_median_s"] = round(result["hash_current_median_s"], 4)
                out["ours_hash_current_peak_mb"] = round(result["hash_current_peak_mb"], 1)
                out["ours_cold_median_s"] = round(result["cold_median_s"], 4)
                out["ours_cold_peak_mb"] = round(result["cold_peak_mb"], 1)
            if approach == "datacompy":
                out["datacompy_version"] = result.get("datacompy_version")
                out["datacompy_pandas_version"] = result.get("pandas_version")
            out["load_average_1m"][approach] = _load()
            say(
                f"{approach}: median {result['median_s']:.3f} s (CPU {result['cpu_median_s']:.3f} s), "
                f"peak {result['peak_mb']:.0f} MB (load {_load()})"
            )

    ours_s, ours_mb = out["ours_median_s"], out["ours_peak_mb"]
    out["speedup_vs_pandas"] = _ratio(out["pandas_median_s"], ours_s)
    out["speedup_vs_datacompy"] = _ratio(out["datacompy_median_s"], ours_s)
    out["memory_ratio_pandas_to_ours"] = _ratio(out["pandas_peak_mb"], ours_mb)
    out["memory_ratio_datacompy_to_ours"] = _ratio(out["datacompy_peak_mb"], ours_mb)
    out["goal"] = {
        "median_s": GOAL_MEDIAN_S,
        "peak_mb": GOAL_PEAK_MB,
        "met": ours_s is not None
        and ours_s <= GOAL_MEDIAN_S
        and ours_mb is not None
        and ours_mb <= GOAL_PEAK_MB,
    }
    out["memory_method"] = MEMORY_METHOD
    out["timed"] = (
        "ours: diff_snapshots including hashing the current extract, given the previous snapshot's persisted "
        "hashes; ours_cold: the same without them (both sides hashed); ours_hash_current: hashing the current "
        "extract alone; pandas: outer merge + column compare; datacompy: PandasCompare + all_mismatch. Ours "
        "gets the amounts as pyarrow decimal128, the baselines as float64 (their fastest case). Loading the parquet inputs is never timed."
    )
    out["machine"] = {"python": platform.python_version(), "cpus": _cpu_count()}
    return out


def _load() -> float | None:
    return round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None


def _cpu_count() -> int | None:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
