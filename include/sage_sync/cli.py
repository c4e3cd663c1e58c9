"""The ``sage-sync`` command line.

Each command group lives beside the code it drives; this module only assembles them, and every group imports
its heavy dependencies inside its commands so that ``sage-sync --help`` stays instant.
"""

from __future__ import annotations

import typer

from sage_sync.onboarding.cli import doctor, match
from sage_sync.simulators.ssm.cli import app as simulator_app
from sage_sync.simulators.standin.cli import app as standin_app
from sage_sync_tools.bench_cli import app as bench_app
from sage_sync_tools.demo_cli import app as demo_app
from sage_sync_tools.stack_cli import app as stack_app

app = typer.Typer(
    help="Synchronise Sage 50 FR dossiers with Sage Sales Management: onboarding checks and matching, demo, native production stack, demo data, simulator, benchmarks.",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(demo_app, name="demo", help="Run the demo sync end to end on this machine.")
app.add_typer(standin_app, name="standin", help="Create a Sage 50 FR stand-in dossier with demo data.")
app.add_typer(simulator_app, name="simulator", help="Run the Sage Sales Management API v4 simulator.")
app.add_typer(
    stack_app, name="stack", help="Run the production stack (CeleryExecutor) on this machine, without Docker."
)
app.add_typer(bench_app, name="bench", help="Run the project's benchmarks and print JSON results.")
app.command("doctor")(doctor)
app.command("match")(match)

if __name__ == "__main__":  # pragma: no cover
    app()
