"""``sage-sync standin``: create a Sage 50 FR stand-in dossier filled with deterministic French demo data."""

from __future__ import annotations

import sys
import time
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="Create a Sage 50 FR stand-in dossier (SQLite file or PostgreSQL WIN1252 database) with demo data.",
)


#: Environment variable read when --url is not given (keeps a password off the command line).
URL_ENV = "SAGE_SYNC_STANDIN_URL"


class Engine(StrEnum):
    """Database engines the stand-in dossier can be created on."""

    sqlite = "sqlite"
    postgres = "postgres"


@app.callback()
def _group() -> None:
    """Create a Sage 50 FR stand-in dossier (SQLite file or PostgreSQL WIN1252 database) with demo data."""


@app.command()
def create(
    engine: Annotated[
        Engine,
        typer.Option("--engine", help="Where to create the dossier: a SQLite file or a PostgreSQL database."),
    ],
    seed: Annotated[
        int, typer.Option("--seed", help="Random seed: the same seed always gives the same dossier.")
    ],
    path: Annotated[
        Path | None, typer.Option("--path", help="SQLite dossier file to create (with --engine sqlite).")
    ] = None,
    url: Annotated[
        str | None,
        typer.Option(
            "--url",
            envvar=URL_ENV,
            show_envvar=True,
            help="SQLAlchemy URL of an existing PostgreSQL database with encoding WIN1252, e.g. "
            "postgresql://user@127.0.0.1:5432/dossier (with --engine postgres). Defaults to the environment "
            f"variable {URL_ENV}: set it there rather than here when the URL holds a password, so the "
            "password does not show in the process list or the shell history.",
        ),
    ] = None,
    scale: Annotated[
        str,
        typer.Option(
            "--scale",
            help="small (300 accounts), medium (10,000), large (100,000 accounts and over a million invoice "
            "lines), or a number of accounts.",
        ),
    ] = "small",
    media: Annotated[
        Path | None,
        typer.Option(
            "--media",
            help="Folder for the article pictures (AR_Photo paths are relative to it). Default for SQLite: "
            "<file stem>_media beside the file; required for PostgreSQL.",
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace an existing dossier at the same place.")
    ] = False,
) -> None:
    """Create a stand-in dossier filled with deterministic French demo data.

    Customers, prospects and suppliers with contacts and delivery addresses; articles with families, VAT,
    stock by depot and pictures; invoices (open and posted), credit notes, quotes, orders and delivery notes.
    The same --scale and --seed always give the same rows. An existing dossier is only replaced with --force
    (checked before anything is generated).
    """
    from sage_sync.errors import ConfigurationError
    from sage_sync.simulators.standin.create import (
        CreationResult,
        check_postgres_target,
        check_sqlite_target,
        create_postgres_dossier,
        create_sqlite_dossier,
    )
    from sage_sync.simulators.standin.generator import generate_dossier, resolve_scale

    try:
        accounts = resolve_scale(scale)
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--scale") from error
    if engine is Engine.sqlite and path is None:
        raise typer.BadParameter("--engine sqlite needs --path FILE", param_hint="--path")
    if engine is Engine.postgres and not url:
        raise typer.BadParameter(f"--engine postgres needs --url URL or {URL_ENV}", param_hint="--url")
    if engine is Engine.postgres and media is None:
        raise typer.BadParameter(
            "--engine postgres needs --media DIR for the article pictures", param_hint="--media"
        )

    try:  # refuse at once, not after generating a large dossier
        if engine is Engine.sqlite:
            assert path is not None
            check_sqlite_target(path, force=force)
        else:
            assert url is not None
            check_postgres_target(url, force=force)
    except ConfigurationError as error:
        typer.echo(f"Error: {error}", err=True)
        raise typer.Exit(code=2) from error

    started = time.monotonic()
    typer.echo(f"Generating {accounts:,} accounts with seed {seed}...")
    dossier = generate_dossier(accounts, seed)
    typer.echo(f"Generated in {time.monotonic() - started:.1f} s; loading:")

    interactive = sys.stdout.isatty()

    def progress(table: str, done: int, total: int) -> None:
        if done < total:
            if interactive:  # in-place counter for the big tables; logs only get the final line
                typer.echo(f"\r  {table:<12} {done:>10,} / {total:,} rows", nl=False)
            return
        unit = "files" if table == "pictures" else "rows"
        line = f"  {table:<12} {total:>10,} {unit}"
        typer.echo(f"\r{line}{' ' * 20}" if interactive else line)

    try:
        result: CreationResult
        if engine is Engine.sqlite:
            assert path is not None
            result = create_sqlite_dossier(path, dossier, media_dir=media, force=force, progress=progress)
        else:
            assert url is not None and media is not None
            result = create_postgres_dossier(url, dossier, media_dir=media, force=force, progress=progress)
    except ConfigurationError as error:
        typer.echo(f"Error: {error}", err=True)
        raise typer.Exit(code=2) from error

    typer.echo(f"\nDossier {result.location} created in {time.monotonic() - started:.1f} s")
    typer.echo(f"{'table':<12} {'rows':>10}")
    for table, count in result.counts.items():
        typer.echo(f"{table:<12} {count:>10,}")
    typer.echo(f"Media folder: {result.media_dir} ({result.pictures:,} pictures)")
