"""Time one snapshot-diff approach in this process and print one JSON object.

Run by ``bench/diff_harness.py``, once per approach, each in its own interpreter so that peak memory is the
approach's own:

    python bench/diff_runner.py --approach ours|pandas|datacompy --data DIR --runs 5

``DIR`` holds ``previous.parquet``, ``current.parquet`` and ``meta.json`` written by the harness. Loading them
is not timed. Peak memory is the growth of the resident set during one run: the kernel's high-water mark
(``VmHWM``) is reset through ``/proc/self/clear_refs`` just before the run and read just after it, minus the
resident size (``VmRSS``) at the start; it counts every allocator (numpy, pyarrow, Python). The largest value
over the runs is reported. Without ``/proc`` (not Linux) it falls back to ``ru_maxrss`` minus the
resident size after loading, which can only over-estimate.

Only the standard library, numpy, pandas and pyarrow are imported at module level, because the datacompy run
uses a separate interpreter (``bench/.venv-datacompy``) where the project is not installed.
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def _status_kb(field: str) -> int:
    for line in _STATUS.read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def _can_reset_peak() -> bool:
    try:
        _CLEAR_REFS.write_text("5")
        return True
    except OSError:
        return False


def measure(work: Callable[[], Any], runs: int) -> tuple[list[float], float, Any, list[float]]:
    """Run ``work`` once untimed, then ``runs`` times; return wall times, peak growth (MB), result, CPU times.

    The warm-up run pays one-time costs (lazy imports, kernel registration) that are no part of a diff. Its
    memory growth still counts in the peak, which can only over-estimate it.
    """
    resettable = _can_reset_peak()
    peaks: list[float] = []
    times: list[float] = []
    cpu_times: list[float] = []
    result: Any = None
    for attempt in range(runs + 1):
        result = None
        gc.collect()
        if resettable:
            _CLEAR_REFS.write_text("5")
            start_kb = _status_kb("VmRSS")
        else:
            start_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        started, cpu_started = time.perf_counter(), time.process_time()
        result = work()
        if attempt:
            times.append(time.perf_counter() - started)
            # CPU time of this process: much less sensitive than wall time to other work on the machine.
            cpu_times.append(time.process_time() - cpu_started)
        end_kb = _status_kb("VmHWM") if resettable else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        peaks.append(max(0, end_kb - start_kb) / 1024)
    return times, max(peaks), result, cpu_times


def load(
    directory: Path, *, decimals_as_float: bool = False
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Read the pair back with the extract's dtypes (decimals stay pyarrow decimals unless asked otherwise)."""

    def mapper(kind: pa.DataType) -> Any:
        if pa.types.is_decimal(kind):
            return None if decimals_as_float else pd.ArrowDtype(kind)
        return None

    frames = []
    for name in ("previous", "current"):
        table = pq.read_table(directory / f"{name}.parquet")
        if decimals_as_float:
            table = table.cast(
                pa.schema(
                    [
                        pa.field(f.name, pa.float64()) if pa.types.is_decimal(f.type) else f
                        for f in table.schema
                    ]
                )
            )
        frames.append(table.to_pandas(types_mapper=mapper, ignore_metadata=True))
    meta = json.loads((directory / "meta.json").read_text())
    return frames[0], frames[1], meta


def _ours(previous: pd.DataFrame, current: pd.DataFrame, key: list[str], runs: int) -> dict[str, Any]:
    from sage_sync.engine.diff import diff_snapshots
    from sage_sync.engine.row_hash import snapshot_hashes

    columns = [c for c in current.columns if c not in key]
    # What the previous run persisted with its committed snapshot: computed here, outside the timed section.
    persisted = snapshot_hashes(previous, key, columns)
    times, peak, result, cpu = measure(
        lambda: diff_snapshots(previous, current, key, previous_hashes=persisted), runs
    )
    hash_times, hash_peak, _, _ = measure(lambda: snapshot_hashes(current, key, columns), runs)
    cold_times, cold_peak, _, _ = measure(lambda: diff_snapshots(previous, current, key), runs)
    return {
        "times_s": times,
        "cpu_times_s": cpu,
        "peak_mb": peak,
        "counts": result.counts(),
        "hashes_reused": result.previous_hashes_reused,
        "hash_current_median_s": statistics.median(hash_times),
        "hash_current_peak_mb": hash_peak,
        "cold_median_s": statistics.median(cold_times),
        "cold_peak_mb": cold_peak,
    }


def _pandas(previous: pd.DataFrame, current: pd.DataFrame, key: list[str], runs: int) -> dict[str, Any]:
    from tests.support.diff_reference import reference_diff

    times, peak, result, cpu = measure(lambda: reference_diff(previous, current, key), runs)
    return {"times_s": times, "cpu_times_s": cpu, "peak_mb": peak, "counts": result.counts()}


def _datacompy(previous: pd.DataFrame, current: pd.DataFrame, key: list[str], runs: int) -> dict[str, Any]:
    import datacompy

    def work() -> dict[str, int]:
        compare = datacompy.PandasCompare(previous, current, join_columns=key, cast_column_names_lower=False)
        # The rows with at least one differing column, with both values: what the sync needs from a diff.
        mismatched = compare.all_mismatch()
        matched = compare.count_matching_rows()
        return {
            "created": len(compare.df2_unq_rows),
            "updated": len(mismatched),
            "deleted": len(compare.df1_unq_rows),
            "unchanged": int(matched),
        }

    times, peak, counts, cpu = measure(work, runs)
    return {
        "times_s": times,
        "cpu_times_s": cpu,
        "peak_mb": peak,
        "counts": counts,
        "datacompy_version": datacompy.__version__,
    }


_APPROACHES = {"ours": _ours, "pandas": _pandas, "datacompy": _datacompy}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Time one snapshot-diff approach; print one JSON object.")
    parser.add_argument("--approach", choices=sorted(_APPROACHES), required=True)
    parser.add_argument(
        "--data", type=Path, required=True, help="folder with previous/current parquet + meta.json"
    )
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    # The baselines get the amounts as float64, their fastest case (datacompy would get Decimal objects, and the
    # merge is slower on pyarrow decimals); ours gets the exact decimals an arrow-odbc extract yields.
    previous, current, meta = load(args.data, decimals_as_float=args.approach != "ours")
    out = _APPROACHES[args.approach](previous, current, list(meta["key"]), args.runs)
    out["median_s"] = statistics.median(out["times_s"])
    out["cpu_median_s"] = statistics.median(out["cpu_times_s"])
    out["correct"] = out["counts"] == meta["expected"]
    out["pandas_version"] = pd.__version__
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
