"""``sage-sync demo``: the whole bidirectional cycle on this machine, with the real DAG and the SSM simulator."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from sage_sync_tools.stack import DagRunOutcome, SyncStack

app = typer.Typer(
    help="Run the demo: a stand-in dossier, the SSM simulator and the real DAG.", no_args_is_help=True
)


def _say(text: str) -> None:
    typer.echo(text, err=False)


@app.callback()
def _group() -> None:
    """Run the demo sync end to end."""


@app.command()
def run(
    folder: Annotated[
        Path,
        typer.Option("--folder", help="Working folder for the dossier, simulator, Airflow home and reports."),
    ] = Path("demo-run"),
    scale: Annotated[
        str, typer.Option("--scale", help="Stand-in dossier size: small, medium, large.")
    ] = "small",
    seed: Annotated[int, typer.Option("--seed", help="Seed of the stand-in's demo data.")] = 7,
) -> None:
    """Create a dossier, start the simulator, sync, make a day of changes on both sides, sync again, report.

    Everything lives under FOLDER and is recreated on each run; the simulator started here is stopped at the end
    (also on failure).
    """
    from sage_sync.report import render_markdown
    from sage_sync_tools.stack import SyncStack, day_of_changes, exit_on_sigterm

    exit_on_sigterm()

    stack = SyncStack(folder, echo=lambda line: _say(f"[demo] {line}"))
    env = stack.root / "airflow-env.sh"
    steps = 6
    try:
        _say(f"[demo] 1/{steps} setting up in {stack.root}")
        stack.start(scale=scale, seed=seed)
        _write_env(stack, env)
        _say(f"[demo] 2/{steps} first sync: airflow dags test sage50_ssm_sync (about a minute)")
        first = stack.run_dag()
        _check(first, "first sync")
        _say(f"[demo]      {_totals(first.report)} in {first.seconds:.0f} s")
        _say(f"[demo] 3/{steps} a day of changes on both sides:")
        day_of_changes(stack, echo=lambda line: _say(f"[demo] {line}"))
        _say(f"[demo] 4/{steps} second sync")
        stack.reset_stats()
        second = stack.run_dag()
        _check(second, "second sync")
        stats = stack.stats()
        _say(
            f"[demo]      {_totals(second.report)} in {second.seconds:.0f} s; SSM calls: {stats.get('total')}"
        )
        _say(f"[demo] 5/{steps} the report of the second sync:\n")
        assert second.report is not None
        _say(render_markdown(second.report))
    finally:
        _say(f"[demo] 6/{steps} stopping what the demo started")
        stack.stop()
    reports = stack.sage_sync_home / "reports"
    docs = stack.sage_sync_home / "data_docs"
    _say(
        "\n[demo] Done.\n"
        f"  Reports:   {reports}/latest.json (and .md / .html beside it)\n"
        f"  Data Docs: {next(iter(sorted(docs.rglob('index.html'))), docs)}\n"
        f"  Airflow UI on this data:\n"
        f"      source {env}\n"
        f"      sage-sync simulator serve --port {stack.port} --db {stack.root / 'ssm-tenant.sqlite'} --admin &\n"
        f"      airflow standalone   (then open http://localhost:8080)"
    )


def _totals(report: dict[str, Any] | None) -> str:
    if not report:
        return "no report"
    t = report["totals"]
    return (
        f"created {t['created']}, updated {t['updated']}, deleted {t['deleted']}, unchanged {t['unchanged']}, "
        f"deferred {t['deferred']}, quarantined {t['quarantined']}, conflicts {t['conflicts']}, failed {t['failed']}"
    )


def _check(outcome: DagRunOutcome, what: str) -> None:
    if outcome.report is None:
        _say(outcome.log_tail())
        _say(
            f"[demo] {what}: the DAG run wrote no report (exit {outcome.returncode}); log: {outcome.log_path}"
        )
        raise typer.Exit(1)
    if outcome.returncode != 0:
        _say(
            f"[demo]      {what}: the DAG run needs attention (exit {outcome.returncode}); log: {outcome.log_path}"
        )


def _write_env(stack: SyncStack, path: Path) -> None:
    """Write the environment for ``airflow standalone`` on the demo's data; secrets stay in this local file."""
    wanted = (
        "AIRFLOW_HOME",
        "AIRFLOW__CORE__DAGS_FOLDER",
        "AIRFLOW__CORE__PLUGINS_FOLDER",
        "AIRFLOW__CORE__LOAD_EXAMPLES",
        "AIRFLOW__PROVIDERS_ODBC__ALLOW_DRIVER_IN_EXTRA",
        "AIRFLOW_CONN_SAGE50_DEFAULT",
        "AIRFLOW_CONN_SSM_DEFAULT",
        "SAGE_SYNC_HOME",
    )
    env = stack.env()
    lines = [f"export {k}='{env[k]}'" for k in wanted]
    # The project's virtual environment first, so `sage-sync` and `airflow` resolve without activating it.
    lines.append(f'export PATH="{Path(sys.executable).parent}:$PATH"')
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    path.chmod(0o600)
