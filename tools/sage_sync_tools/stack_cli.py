"""``sage-sync stack``: the production topology (CeleryExecutor, PostgreSQL, Redis) on this machine, without Docker."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from sage_sync_tools.celery_stack import CeleryStack

app = typer.Typer(
    help="Start, inspect and stop the production stack of docker-compose.yml natively (no Docker).",
    no_args_is_help=True,
)

Folder = Annotated[
    Path,
    typer.Option("--folder", help="The stack's folder: databases, logs, private and shared data folders."),
]


def _say(text: str) -> None:
    typer.echo(f"[stack] {text}")


def _stack(folder: Path, **kwargs: object) -> CeleryStack:
    from sage_sync_tools.celery_stack import CeleryStack

    return CeleryStack(folder, echo=_say, **kwargs)  # type: ignore[arg-type]


@app.callback()
def _group() -> None:
    """The native stack."""


@app.command()
def up(
    folder: Folder = Path("stack-run"),
    scale: Annotated[
        str, typer.Option("--scale", help="Stand-in dossier size: small, medium, large.")
    ] = "small",
    workers: Annotated[int, typer.Option("--workers", min=1, max=8, help="Celery workers to start.")] = 2,
) -> None:
    """Start the stack and return once the UI answers and the DAG is parsed.

    PostgreSQL, Redis, the Airflow API server, scheduler, DAG processor, triggerer and Celery workers, with the SSM
    simulator and a stand-in dossier. Everything is recreated under FOLDER; `sage-sync stack down` stops it. The DAG starts paused: unpause it in
    the UI (runs every 15 minutes) or trigger a run.
    """
    from sage_sync_tools.stack import exit_on_sigterm

    exit_on_sigterm()
    stack = _stack(folder, scale=scale, workers=workers)
    try:
        stack.up()
    except RuntimeError as exc:
        _say(f"failed: {exc}")
        raise typer.Exit(1) from None
    env = stack.root / "airflow-env.sh"
    _write_env(stack, env)
    _say("The stack is up.")
    typer.echo(
        f"  UI and REST API:  {stack.api_url}\n"
        f"  Log in as:        admin (password in {stack.airflow_home}/simple_auth_manager_passwords.json.generated)\n"
        f"  SSM simulator:    {stack.sync.base_url}\n"
        f"  Shared location:  file://{stack.shared}\n"
        f"  Logs:             {stack.root}/logs/ and {stack.airflow_home}/logs/\n"
        f"  airflow CLI:      source {env}\n"
        f"  Stop it:          sage-sync stack down --folder {folder}"
    )


@app.command()
def status(folder: Folder = Path("stack-run")) -> None:
    """Show each part of the stack started in FOLDER: pid, port, running or not."""
    stack = _stack(folder)
    if not stack.load():
        _say(f"no stack was started in {stack.root}")
        raise typer.Exit(1)
    rows = stack.status()
    typer.echo(f"{'part':<15} {'pid':>8} {'port':>6}  state")
    for row in rows:
        state = "running" if row["running"] else "stopped"
        typer.echo(f"{row['part']:<15} {row['pid'] or '-':>8} {row['port'] or '-':>6}  {state}")
    down = [r["part"] for r in rows if not r["running"]]
    if down:
        _say(f"{len(down)} of {len(rows)} parts are not running: {', '.join(down)}")
        raise typer.Exit(1)
    _say(f"all {len(rows)} parts are running; UI at http://127.0.0.1:{stack.ports['api-server']}")


@app.command()
def down(folder: Folder = Path("stack-run")) -> None:
    """Stop what `sage-sync stack up` started in FOLDER (by pid, task processes included), then PostgreSQL."""
    stack = _stack(folder)
    if not stack.load():
        _say(f"no stack was started in {stack.root}: nothing to stop")
        return
    stopped = stack.down()
    _say(f"stopped {len(stopped)} parts: {', '.join(stopped) or 'none was running'}")


def _write_env(stack: CeleryStack, path: Path) -> None:
    """The environment of the stack's ``airflow`` commands, in a file only its owner can read (it has secrets)."""
    env = stack.env()
    wanted = [k for k in env if k.startswith(("AIRFLOW", "SAGE_SYNC"))]
    lines = [f"export {k}='{env[k]}'" for k in sorted(wanted)]
    lines.append(f'export PATH="{Path(sys.executable).parent}:$PATH"')
    path.touch(mode=0o600)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
