"""``sage-sync bench e2e``: the whole DAG at a given scale, three phases, one JSON object per phase.

Phases: ``initial`` (first load into an empty SSM tenant), ``churn`` (1 % of records changed on both sides:
Sage accounts, contacts and articles through SQL; SSM prospects and contacts through the API as a salesperson),
``no_change`` (nothing changed). Each object gives the DAG run's wall seconds (``airflow dags test``, Airflow
start-up included), the SSM API read and write calls (simulator statistics), the peak memory of the run's process
tree, and the calls a naive full push (every record re-sent in bulk, every list re-read) would make.
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

#: Bulk sizes of the API (contracts/SSM-API.md) and the list page size the hook uses.
BULK = {"accounts": 200, "contacts": 200, "products": 100, "salesorders": 200, "salesordersLines": 200}
PAGE = 1000


def sage_counts(stack: SyncStack) -> dict[str, int]:
    """Rows per synced entity in the dossier (what a naive full push would send)."""
    import sqlalchemy as sa

    queries = {
        "accounts": "SELECT COUNT(*) FROM F_COMPTET WHERE CT_Type = 0",
        "contacts": "SELECT COUNT(*) FROM F_CONTACTT k JOIN F_COMPTET c ON c.CT_Num = k.CT_Num WHERE c.CT_Type = 0",
        "products": "SELECT COUNT(*) FROM F_ARTICLE",
        "salesorders": "SELECT COUNT(*) FROM F_DOCENTETE WHERE DO_Domaine = 0 AND DO_Type IN (6, 7)",
        "salesordersLines": "SELECT COUNT(*) FROM F_DOCLIGNE WHERE DO_Domaine = 0 AND DO_Type IN (6, 7)",
    }
    engine = stack.sage()
    try:
        with engine.connect() as db:
            return {name: int(db.execute(sa.text(q)).scalar_one()) for name, q in queries.items()}
    finally:
        engine.dispose()


def naive_calls(counts: dict[str, int]) -> dict[str, int]:
    """Calls of a naive full push: every record in bulk writes, every SSM list read in full to compare."""
    writes = sum(math.ceil(n / BULK[name]) for name, n in counts.items())
    reads = sum(math.ceil(n / PAGE) for n in counts.values())
    return {"naive_full_push_writes": writes, "naive_full_push_reads": reads}


def churn(stack: SyncStack, share: float = 0.01, seed: int = 3) -> dict[str, int]:
    """Change ``share`` of the records on both sides; return how many of each kind were changed."""
    import sqlalchemy as sa

    rng = random.Random(seed)
    done: dict[str, int] = {}
    engine = stack.sage()
    try:
        with engine.begin() as db:
            for table, key, column, value in (
                ("F_COMPTET", "CT_Num", "CT_Telephone", lambda i: f"01 02 03 {i % 100:02d} {i % 97:02d}"),
                ("F_ARTICLE", "AR_Ref", "AR_PrixVen", lambda i: round(10 + i * 0.37, 2)),
            ):
                where = " WHERE CT_Type = 0" if table == "F_COMPTET" else ""
                keys = [r[0] for r in db.execute(sa.text(f"SELECT {key} FROM {table}{where}"))]
                picked = rng.sample(keys, max(1, int(len(keys) * share)))
                for i, k in enumerate(picked):
                    db.execute(
                        sa.text(f"UPDATE {table} SET {column} = :v WHERE {key} = :k"), {"v": value(i), "k": k}
                    )
                done[f"sage_{table}"] = len(picked)
            rows = list(db.execute(sa.text("SELECT CT_Num, CT_No FROM F_CONTACTT")))
            picked_rows = rng.sample(rows, max(1, int(len(rows) * share)))
            for i, (code, number) in enumerate(picked_rows):
                db.execute(
                    sa.text("UPDATE F_CONTACTT SET CT_Fonction = :v WHERE CT_Num = :c AND CT_No = :n"),
                    {"v": f"Fonction {i}", "c": code, "n": number},
                )
            done["sage_F_CONTACTT"] = len(picked_rows)
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
    scale: str, folder: Path, *, seed: int = 7, emit: Callable[[dict[str, Any]], None] | None = None
) -> list[dict[str, Any]]:
    """Run the three phases on a fresh stack under ``folder``; return (and emit) one result per phase."""
    from sage_sync_tools.stack import SyncStack, exit_on_sigterm

    exit_on_sigterm()

    results: list[dict[str, Any]] = []
    with SyncStack(folder, echo=lambda line: typer.echo(line, err=True)) as stack:
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
                "peak_rss_mb": outcome.peak_rss_mb,
                "changed": changed,
                "created": totals.get("created"),
                "updated": totals.get("updated"),
                "deleted": totals.get("deleted"),
                "failed": totals.get("failed"),
                "dag_exit_code": outcome.returncode,
                **naive,
            }
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
) -> None:
    """Run the whole DAG at --scale: initial load, 1 % churn on both sides, no change; one JSON line per phase."""
    run_e2e(scale, folder, seed=seed, emit=lambda r: typer.echo(json.dumps(r)))
