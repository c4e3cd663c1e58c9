"""``sage-sync simulator``: run the Sage Sales Management API v4 simulator."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    help="Run the Sage Sales Management API v4 simulator (a local HTTP server with a persistent tenant).",
    no_args_is_help=True,
    add_completion=False,
)


@app.command("serve")
def serve_command(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port to listen on.")] = 8765,
    db: Annotated[Path, typer.Option(help="SQLite file holding the tenant (created if missing).")] = Path(
        "ssm-simulator.sqlite"
    ),
    admin: Annotated[
        bool, typer.Option("--admin", help="Enable the /__sim/ test endpoints (reset, faults, stats, clock).")
    ] = False,
    rate_limit: Annotated[
        float, typer.Option(help="Requests per second per API key; 0 disables the limit.")
    ] = 13.0,
    token_ttl: Annotated[float, typer.Option(help="Session token lifetime in seconds.")] = 3600.0,
    seed: Annotated[
        int,
        typer.Option(
            help="Seed of the demo tenant's API keys (same seed, same keys). An existing --db keeps the seed it "
            "was created with: another seed is refused."
        ),
    ] = 0,
) -> None:
    """Serve the simulated API until interrupted; prints the base URL, demo keys and users first."""
    from sage_sync.errors import ConfigurationError
    from sage_sync.simulators.ssm.app import Settings
    from sage_sync.simulators.ssm.server import serve

    if rate_limit < 0:
        raise typer.BadParameter(f"--rate-limit must be 0 or more, got {rate_limit}")
    if token_ttl <= 0:
        raise typer.BadParameter(f"--token-ttl must be positive, got {token_ttl}")
    settings = Settings(db_path=db, admin=admin, rate_limit=rate_limit, token_ttl=token_ttl, seed=seed)
    try:
        serve(settings, host, port)
    except ConfigurationError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


@app.command("keys")
def keys_command(seed: Annotated[int, typer.Option(help="Seed of the demo tenant.")] = 0) -> None:
    """Print the demo API keys a simulator started with --seed would accept."""
    from sage_sync.simulators.ssm.seed import derive_keys

    integration, user = derive_keys(seed)
    typer.echo(f"integration: public={integration.public_key} private={integration.private_key}")
    typer.echo(f"user:        public={user.public_key} private={user.private_key}")
