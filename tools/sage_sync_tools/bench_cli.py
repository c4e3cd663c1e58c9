"""``sage-sync bench``: benchmarks that print one JSON object per measurement."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from sage_sync_tools.bench_e2e import e2e

app = typer.Typer(no_args_is_help=True, add_completion=False)
app.command("e2e")(e2e)

# The benchmarks and their baselines live in the source checkout's bench/ folder, beside include/.
_BENCH_DIR = Path(__file__).resolve().parents[2] / "bench"


def _bench_module_path() -> Path:
    if not (_BENCH_DIR / "diff_harness.py").exists():
        raise typer.BadParameter(
            f"the benchmarks run from a source checkout; {_BENCH_DIR / 'diff_harness.py'} was not found"
        )
    return _BENCH_DIR


@app.command("diff")
def diff(
    rows: int = typer.Option(1_000_000, "--rows", min=1, help="Rows in the previous snapshot."),
    churn: float = typer.Option(
        0.01,
        "--churn",
        min=0.0,
        max=1.0,
        help="Fraction of rows changed, split evenly: creates, updates, deletes.",
    ),
    runs: int = typer.Option(5, "--runs", min=1, help="Timed runs per approach (after one warm-up run)."),
    columns: int = typer.Option(
        12, "--columns", min=3, help="Columns per row, the two key columns included."
    ),
    seed: int | None = typer.Option(None, "--seed", help="Seed of the generated data (a fixed default)."),
) -> None:
    """Time the snapshot diff against a pandas merge-and-compare and datacompy; print one JSON object.

    Each approach runs in its own process on the same generated invoice headers, so its peak memory is its own.
    datacompy runs from bench/.venv-datacompy (its releases pin an older pandas); when that environment is
    missing the JSON gives datacompy_error with the command that creates it. Progress goes to stderr.
    """
    sys.path.insert(0, str(_bench_module_path()))
    from diff_harness import run_diff_benchmark

    result = run_diff_benchmark(rows=rows, churn=churn, runs=runs, columns=columns, seed=seed)
    typer.echo(json.dumps(result))
