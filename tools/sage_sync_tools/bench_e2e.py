"""``sage-sync bench e2e``: the whole DAG at a given scale, three phases, one JSON object per phase.

Phases: ``initial`` (first load into an empty SSM tenant), ``churn`` (1 % of records changed on both sides:
Sage accounts, contacts and articles through SQL; SSM prospects and contacts through the API as a salesperson),
``no_change`` (nothing changed). Each object gives the DAG run's wall seconds (``airflow dags test``, Airflow
start-up included; with ``--executor`` each task runs in its own process through the LocalExecutor, as under a
scheduler), the SSM API read and write calls and the calls refused by the rate limit (simulator statistics), the
peak memory of the largest process of the run, and the calls a naive full push (every record re-sent in bulk,
every list re-read) would make.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from sage_sync_tools.stack import SyncStack

PAGE = 1000


def sage_counts(stack: SyncStack) -> dict[str, int]:
    """Records per SSM endpoint that the dossier holds (what a naive full push would send), read as the sync does."""
    from sage_sync.engine.snapshot import assemble_with_lines
    from sage_sync.mapping.registry import registry

    side = stack.sage_side()
    counts: dict[str, int] = {}
    for spec in registry():
        frame, lines = assemble_with_lines(spec.name, side.read_snapshot(spec.name))
        counts[spec.endpoint] = len(frame)
        if spec.lines is not None and lines is not None:
            counts[spec.lines.endpoint] = lines.count(str(h) for h in frame[lines.join].tolist())
    return counts


def naive_calls(counts: dict[str, int]) -> dict[str, int]:
    """Calls of a naive full push: every record in bulk writes, every SSM list read in full to compare."""
    from sage_sync.mapping.registry import registry

    bulk = registry().bulk_limits_by_endpoint()
    writes = sum(math.ceil(n / bulk[name]) for name, n in counts.items())
    reads = sum(math.ceil(n / PAGE) for n in counts.values())
    return {"naive_full_push_writes": writes, "naive_full_push_reads": reads}


def api_budget(report: dict[str, Any], stats: dict[str, Any], rate: float) -> dict[str, Any]:
    """The calls a phase truly needs, and how the run compares with them.

    Needed: each entity's creations, updates and deletions in bulk calls of the API maximum, one call per picture
    (creating its document; the bytes then go to the document's upload locator, outside the API and its rate
    limit), and one call per list the run reads (each GET route once). At
    ``rate`` requests per second (a real tenant: 13) they take ``calls / rate`` seconds: the run's wall time can
    not be shorter, and the ratio says how close it comes.
    """
    from sage_sync.mapping.registry import registry

    specs = registry()
    writes = sum(
        math.ceil(int(section.get("counts", {}).get(kind) or 0) / specs.bulk_limit(entity))
        for entity, section in (report.get("entities") or {}).items()
        if entity in specs.names
        for kind in ("created", "updated", "deleted")
    )
    routes: dict[str, int] = stats.get("by_route") or {}
    pictures = sum(
        n for route, n in routes.items() if route.startswith("POST") and route.endswith("/documents")
    )
    listings = sum(1 for route in routes if route.startswith("GET") and "/__sim" not in route)
    needed = writes + pictures + listings
    made = int(stats.get("total") or 0) - int(stats.get("logins") or 0)
    out: dict[str, Any] = {
        "api_budget_calls": needed,
        "api_calls_made": made,
        "api_calls_ratio": round(made / needed, 2) if needed else None,
    }
    if rate > 0:
        out["api_budget_seconds"] = round(needed / rate, 1)
    return out


def reads_by_endpoint(stats: dict[str, Any]) -> dict[str, int]:
    """Read calls per API route (the read-call figure of bench/RESULTS.md)."""
    routes: dict[str, int] = stats.get("by_route") or {}
    return {route[4:]: n for route, n in sorted(routes.items()) if route.startswith("GET ")}


def _churn_sage(db: Any, rng: random.Random, share: float, entity: str, field: str, value: Any) -> int:
    """Set ``field`` of ``share`` of ``entity``'s rows, as a Sage user would (physical names from the mapping)."""
    import sqlalchemy as sa

    from sage_sync.mapping.registry import registry

    source = registry()[entity].mapping.main
    keys = [str(source.sage_columns[k]) for k in source.key]
    column = source.sage_columns[field]
    filters = " AND ".join(
        f"{source.sage_columns[f]} IN ({', '.join(map(str, v))})" for f, v in source.filter.items()
    )
    rows = list(
        db.execute(
            sa.text(f"SELECT {', '.join(keys)} FROM {source.table}{' WHERE ' + filters if filters else ''}")
        )
    )
    picked = rng.sample(rows, max(1, int(len(rows) * share))) if rows else []
    match = " AND ".join(f"{k} = :k{i}" for i, k in enumerate(keys))
    for n, row in enumerate(picked):
        params = {"v": value(n), **{f"k{i}": part for i, part in enumerate(row)}}
        db.execute(sa.text(f"UPDATE {source.table} SET {column} = :v WHERE {match}"), params)
    return len(picked)


def churn(stack: SyncStack, share: float = 0.01, seed: int = 3) -> dict[str, int]:
    """Change ``share`` of the records on both sides; return how many of each kind were changed."""
    rng = random.Random(seed)
    done: dict[str, int] = {}
    engine = stack.sage()
    try:
        with engine.begin() as db:
            for entity, field, value in (
                ("accounts", "phone", lambda i: f"01 02 03 {i % 100:02d} {i % 97:02d}"),
                ("products", "sales_price", lambda i: round(10 + i * 0.37, 2)),
                ("contacts", "job_title", lambda i: f"Fonction {i}"),
            ):
                done[f"sage_{entity}"] = _churn_sage(db, rng, share, entity, field, value)
    finally:
        engine.dispose()
    user = stack.user_client()
    try:
        prospects = [
            a for a in user.list("accounts") if a.get("extId") and not a["readOnly"] and not a["deleted"]
        ]
        contacts = [c for c in user.list("contacts") if c.get("extId") and not c["deleted"]]
        for i, rec in enumerate(
            rng.sample(prospects, max(1, int(len(prospects) * share)) if prospects else 0)
        ):
            user.call("PUT", f"accounts/{rec['id']}", {"comment": f"Rappel client {i}"})
            done["ssm_accounts"] = done.get("ssm_accounts", 0) + 1
        for i, rec in enumerate(rng.sample(contacts, max(1, int(len(contacts) * share)) if contacts else 0)):
            user.call("PUT", f"contacts/{rec['id']}", {"phone2": f"06 11 22 {i % 100:02d} 00"})
            done["ssm_contacts"] = done.get("ssm_contacts", 0) + 1
    finally:
        user.close()
    return done


def run_e2e(
    scale: str,
    folder: Path,
    *,
    seed: int = 7,
    rate_limit: float = 0.0,
    executor: bool = False,
    emit: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Run the three phases on a fresh stack under ``folder``; return (and emit) one result per phase.

    ``rate_limit``: the simulator's requests per second per key (0: lifted); the client is set to the same pace.
    ``executor``: each task in its own process through the LocalExecutor, two at a time (as under a scheduler);
    otherwise every task in the ``airflow dags test`` process, one after the other.
    """
    from sage_sync_tools.stack import SyncStack, exit_on_sigterm

    exit_on_sigterm()

    results: list[dict[str, Any]] = []

    def echo(line: str) -> None:
        typer.echo(line, err=True)  # the stack's progress; the results alone go to stdout

    with SyncStack(folder, echo=echo, rate_limit=rate_limit, executor=executor) as stack:
        stack.start(scale=scale, seed=seed)
        naive = naive_calls(sage_counts(stack))
        for phase in ("initial", "churn", "no_change"):
            changed = churn(stack) if phase == "churn" else {}
            stack.reset_stats()
            typer.echo(f"phase {phase}: running the DAG", err=True)
            outcome = stack.run_dag()
            stats = stack.stats()
            totals = (outcome.report or {}).get("totals", {})
            result = {
                "benchmark": "e2e_dag",
                "phase": phase,
                "scale": scale,
                "wall_seconds": round(outcome.seconds, 1),
                "api_read_calls": stats.get("reads"),
                "api_write_calls": stats.get("writes"),
                "api_calls_total": stats.get("total"),
                # Calls the simulator refused for the key's rate limit (each retried after ``Retry-After``).
                "api_refused_429": stats.get("served_429"),
                "peak_rss_mb": outcome.peak_rss_mb,
                "changed": changed,
                "created": totals.get("created"),
                "updated": totals.get("updated"),
                "deleted": totals.get("deleted"),
                "failed": totals.get("failed"),
                "dag_exit_code": outcome.returncode,
                "rate_limit": rate_limit,
                "executor": "LocalExecutor" if executor else "none (airflow dags test)",
                **api_budget(outcome.report or {}, stats, rate_limit),
                **naive,
                "reads_by_route": reads_by_endpoint(stats),
            }
            if rate_limit > 0 and result.get("api_budget_seconds"):
                result["wall_budget_ratio"] = round(outcome.seconds / result["api_budget_seconds"], 2)
            results.append(result)
            if emit is not None:
                emit(result)
    return results


def e2e(
    scale: Annotated[
        str, typer.Option("--scale", help="Stand-in size: small, medium, large or a number.")
    ] = "medium",
    folder: Annotated[
        Path, typer.Option("--folder", help="Working folder (dossier, tenant, Airflow home).")
    ] = Path("bench-e2e"),
    seed: Annotated[int, typer.Option("--seed", help="Seed of the stand-in's data.")] = 7,
    rate_limit: Annotated[
        float,
        typer.Option(
            "--rate-limit", help="SSM requests per second per key (13 as a real tenant; 0 lifts it)."
        ),
    ] = 0.0,
    executor: Annotated[
        bool,
        typer.Option(
            "--executor/--no-executor",
            help="Run each task in its own process through the LocalExecutor, two at a time, as a scheduler "
            "would (an API server is started beside); default: every task in the airflow dags test process.",
        ),
    ] = False,
) -> None:
    """Run the whole DAG at --scale: initial load, 1 % churn on both sides, no change; one JSON line per phase.

    Each line gives the wall time, API reads and writes (and reads per route), peak memory, the calls the phase
    truly needs (the API budget) with the ratio of calls made to it, and what a naive full push would cost.
    """
    run_e2e(
        scale,
        folder,
        seed=seed,
        rate_limit=rate_limit,
        executor=executor,
        emit=lambda r: typer.echo(json.dumps(r)),
    )
