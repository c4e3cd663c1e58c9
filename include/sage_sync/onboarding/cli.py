"""``sage-sync doctor`` (O2) and ``sage-sync match`` (O1): onboarding commands for the person installing the sync.

Both read the same configuration as the DAG: the Airflow connections (``AIRFLOW_CONN_*`` or the metadata
database), ``$SAGE_SYNC_HOME``, the dossiers file or ``settings.yaml``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from sage_sync.dossiers import DossierSet
    from sage_sync.onboarding.doctor import Check
    from sage_sync.settings import Settings

DossierOption = Annotated[
    str | None,
    typer.Option("--dossier", help="Only this dossier of the dossiers file (default: every dossier)."),
]
DossiersOption = Annotated[
    Path | None,
    typer.Option(
        "--dossiers",
        help="The dossiers file (default: $SAGE_SYNC_DOSSIERS or $SAGE_SYNC_HOME/dossiers.yaml).",
    ),
]
ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", help="Without a dossiers file: the settings file (default: $SAGE_SYNC_CONFIG)."),
]
SageConnOption = Annotated[
    str, typer.Option("--sage-conn", help="Without a dossiers file: the Sage ODBC connection id.")
]
SsmConnOption = Annotated[str, typer.Option("--ssm-conn", help="The SSM HTTP connection id.")]


def _file_checks(found: DossierSet) -> list[Check]:
    from sage_sync.onboarding.doctor import Check

    checks = []
    for d in found:
        problems = found.problems.get(d.name)
        state = "" if d.enabled else " (switched off: enabled is false)"
        if problems:
            checks += [Check("dossiers file", d.name, "blocking", p) for p in problems]
        else:
            checks.append(
                Check(
                    "dossiers file",
                    d.name,
                    "ok",
                    f"connection {d.connection}, prefix {d.prefix!r}, branches {list(d.branches)}{state}",
                )
            )
    return checks


def _targets(
    dossier: str | None, dossiers: Path | None, config: Path | None, sage_conn: str
) -> tuple[list[tuple[str, Settings | None, str, str]], list[Check]]:
    """(label, settings or None when invalid, Sage connection, why invalid) of each dossier to check."""
    from sage_sync.dossiers import load_dossiers
    from sage_sync.errors import ConfigurationError
    from sage_sync.onboarding.doctor import Check
    from sage_sync.settings import load_settings

    try:
        found = load_dossiers(dossiers)
    except ConfigurationError as exc:
        return [], [Check("dossiers file", str(dossiers or "dossiers.yaml"), "blocking", str(exc))]
    if found is None:
        if dossier is not None:
            return [], [
                Check(
                    "dossiers file",
                    dossier,
                    "blocking",
                    "--dossier names a dossier, but there is no dossiers file",
                )
            ]
        try:
            return [("dossier", load_settings(config), sage_conn, "")], []
        except ConfigurationError as exc:
            return [], [Check("settings", str(config or "settings.yaml"), "blocking", str(exc))]
    names = [dossier] if dossier is not None else list(found.names)
    targets: list[tuple[str, Settings | None, str, str]] = []
    for name in names:
        try:
            targets.append((name, found.settings(name), found.get(name).connection, ""))
        except ConfigurationError as exc:
            targets.append((name, None, "", str(exc)))
    checks = (
        _file_checks(found) if dossier is None else [c for c in _file_checks(found) if c.target == dossier]
    )
    return targets, checks


def doctor(
    dossier: DossierOption = None,
    dossiers: DossiersOption = None,
    config: ConfigOption = None,
    sage_conn: SageConnOption = "sage50_default",
    ssm_conn: SsmConnOption = "ssm_default",
) -> None:
    """Check that a dossier is ready to sync (O2) and print one table per dossier.

    Checks the dossiers file, both connections, the ODBC driver, every table and column the mappings name (with a
    compatible type), the SSM value lists and Z_ fields, and the media folder when articles name pictures. Exits 1
    when any problem is blocking, 0 otherwise; nothing is written anywhere.
    """
    from sage_sync.onboarding.doctor import blocking, render, run_checks

    targets, file_checks = _targets(dossier, dossiers, config, sage_conn)
    stop = len(blocking(file_checks))
    if file_checks:
        typer.echo(render(file_checks, title="Dossiers file") + "\n")
    for label, settings, connection, _why in targets:
        if settings is None:
            typer.echo(
                f"Dossier {label}: not checked further until its entry in the dossiers file is fixed "
                "(see the table above)\n"
            )
            continue
        checks, _ = run_checks(settings, connection, ssm_conn)
        stop += len(blocking(checks))
        typer.echo(render(checks, title=f"Preflight of {label}") + "\n")
    if stop or any(s is None for _, s, _, _ in targets):
        typer.echo(f"doctor: {stop} blocking problem(s)", err=True)
        raise typer.Exit(1)


def match(
    dossier: DossierOption = None,
    dossiers: DossiersOption = None,
    config: ConfigOption = None,
    sage_conn: SageConnOption = "sage50_default",
    ssm_conn: SsmConnOption = "ssm_default",
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Propose and report only: bind nothing, remember nothing.")
    ] = False,
) -> None:
    """Match SSM records without extId to Sage records (O1) and apply the decisions of matching/decisions.csv.

    Accounts by SIRET, then VAT number, then normalised name + postcode; contacts by email within the matched
    company; products by reference. Pairs at or above match_auto_confidence are bound (the SSM record gets the
    Sage key as extId; SSM-only fields are kept), the others wait for a person: they are listed in
    matching/proposals.csv, and a person writes bind, reject or ssm_only in matching/decisions.csv. The next sync
    run adopts the bound records; until then nothing is created for the waiting ones on either side.
    """
    from datetime import UTC, datetime

    from sage_sync.engine.state import StateStore
    from sage_sync.errors import ConfigurationError
    from sage_sync.onboarding.step import match as match_step
    from sage_sync.operators.sides import sage_side, ssm_side

    targets, file_checks = _targets(dossier, dossiers, config, sage_conn)
    if len(targets) != 1 or targets[0][1] is None:
        problems = [c.detail for c in file_checks if c.status == "blocking"] or [
            t[3] for t in targets if t[3]
        ]
        hint = "name one dossier with --dossier" if len(targets) > 1 else "; ".join(problems) or "no dossier"
        typer.echo(f"match: {hint}", err=True)
        raise typer.Exit(2)
    label, settings, connection, _ = targets[0]
    assert settings is not None
    run_id = f"match_cli_{datetime.now(UTC):%Y%m%dT%H%M%S}"
    settings.home.mkdir(parents=True, exist_ok=True)
    state = StateStore(settings.state_database_url)
    state.migrate()
    try:
        summary = match_step(
            run_id,
            settings.staging(run_id),
            sage_side(connection, settings),
            ssm_side(ssm_conn, settings),
            state,
            folder=settings.matching_dir,
            threshold=settings.match_auto_confidence,
            dry_run=dry_run,
            requested=True,
        )
    except ConfigurationError as exc:
        typer.echo(f"match: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"{label}: {summary.sentence()}")
    for problem in summary.problems:
        typer.echo(f"  problem: {problem}")
    typer.echo(
        f"Proposals: {settings.matching_dir / 'proposals.csv'}; decisions: {settings.matching_dir / 'decisions.csv'}"
    )
