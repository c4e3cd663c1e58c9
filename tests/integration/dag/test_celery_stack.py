"""The production topology for real: the native stack of docker-compose.yml (CeleryExecutor, PostgreSQL metadata
database and state store, Redis broker, API server, scheduler, DAG processor, triggerer, two Celery workers each
with its own private data folder, the shared location on ``file://``), started by ``CeleryStack`` exactly as
``sage-sync stack up`` starts it, against the stand-in dossier (SQLite ODBC driver) and the SSM simulator.

One scenario, as an operator would live it, with the deadline alert on (G1, 12 minutes):
1. a person logs in through the REST API and triggers the first sync; while an entity's ``load`` runs and has
   written part of its records, the Celery worker running it is killed with SIGKILL, together with everything
   below it (a host that dies); the scheduler finds the task without a heartbeat and fails it (``load`` has no
   retry), so the run fails; the worker comes back (compose's ``restart: always``);
2. the person triggers the next run: it succeeds on the workers and converges (G5): every Sage record the sync
   owns is in SSM exactly once (0 lost, 0 duplicated), checked through the SSM API, the Sage SQL and the state
   store's SQL, with one rule per entity (C1 accounts, K1 contacts, D1 products, I1 invoices);
3. the API server's sync page and report show the run the workers produced, read from the shared location;
   neither worker's private folder holds a step file or a report (no task read another one's local disk).
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
import sqlalchemy as sa

from sage_sync.engine.staging import run_name
from sage_sync.settings import DAG_ID
from sage_sync_tools.celery_stack import CeleryStack, descendants

FIRST_RUN = "manual__celery_first_sync_worker_killed"
SECOND_RUN = "manual__celery_converges"
#: Slow every SSM call a little, so a load of several calls is still running when the worker is killed.
LATENCY_MS = 1200
RUN_TIMEOUT_S = 8 * 60
KILL_TIMEOUT_S = 5 * 60
#: The entities whose load may be the one interrupted, with the SSM endpoint each one writes: the loads that make
#: many write calls in this dossier (products: a bulk call, then one upload per picture; invoices: the orders', then
#: the lines' bulk calls), so the load is still running for many seconds after its first write is seen. The accounts'
#: and the contacts' loads are one or two bulk calls here: once a write shows, the task may be finishing already.
WRITE_ROUTES = {
    "products": "products",
    "invoices": "salesorders",
}


def _say(text: str) -> None:
    print(f"[celery stack test] {text}", file=sys.stderr, flush=True)


@dataclass
class StackScenario:
    """What the scenario produced, for the assertions."""

    stack: CeleryStack
    killed: dict[str, Any] = field(default_factory=dict)
    first: dict[str, Any] = field(default_factory=dict)
    first_tasks: dict[str, dict[str, Any]] = field(default_factory=dict)
    second: dict[str, Any] = field(default_factory=dict)
    second_tasks: dict[str, dict[str, Any]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


def _api(stack: CeleryStack, method: str, path: str, **kwargs: Any) -> Any:
    reply = requests.request(
        method, f"{stack.api_url}{path}", headers=stack.auth_headers(), timeout=30, **kwargs
    )
    assert reply.ok, f"{method} {path}: HTTP {reply.status_code} {reply.text[:500]}"
    return reply.json()


def _tasks(stack: CeleryStack, run_id: str) -> dict[str, dict[str, Any]]:
    found = _api(stack, "GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances?limit=100")
    return {str(ti["task_id"]): ti for ti in found["task_instances"]}


def _trigger(stack: CeleryStack, run_id: str) -> None:
    _api(stack, "POST", f"/api/v2/dags/{DAG_ID}/dagRuns", json={"dag_run_id": run_id, "logical_date": None})
    _say(f"triggered {run_id} through the REST API")


def _simulator(stack: CeleryStack, method: str, path: str, body: Any = None) -> Any:
    reply = requests.request(method, f"{stack.sync.admin_url}{path}", json=body, timeout=30)
    reply.raise_for_status()
    return reply.json()


def _writes(stats: dict[str, Any], entity: str) -> int:
    """Write calls the simulator answered on ``entity``'s endpoint (routes read ``"POST /api/v4/accounts/bulk"``)."""
    endpoint = WRITE_ROUTES[entity]
    return sum(
        n
        for route, n in stats["by_route"].items()
        if not route.startswith("GET")
        and route.partition(" ")[2].removeprefix("/api/v4/").startswith(endpoint)
    )


def _wait_for_run(stack: CeleryStack, run_id: str, timeout: float) -> dict[str, Any]:
    started = last = time.monotonic()
    while True:
        for name in list(stack.pids):
            if name in ("api-server", "scheduler") and stack.exited(name):
                raise AssertionError(f"{name} exited:\n{stack.log_tail(name)}")
        run = _api(stack, "GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}")
        if run["state"] in ("success", "failed"):
            _say(f"{run_id} {run['state']} after {time.monotonic() - started:.0f} s")
            return dict(run)
        if time.monotonic() - last > 20:
            last = time.monotonic()
            states = Counter(str(ti["state"]) for ti in _tasks(stack, run_id).values())
            _say(f"{time.monotonic() - started:.0f} s: {run_id} {run['state']}, tasks {dict(states)}")
        assert time.monotonic() - started < timeout, (
            f"{run_id} not finished in {timeout:.0f} s:\n{stack.log_tail('scheduler')}"
        )
        time.sleep(2)


def _kill_a_worker_during_a_load(stack: CeleryStack) -> dict[str, Any]:
    """Wait until a ``<entity>.load`` runs and has written to SSM, then SIGKILL the worker that runs it."""
    started = time.monotonic()
    while time.monotonic() - started < KILL_TIMEOUT_S:
        tasks = _tasks(stack, FIRST_RUN)
        stats = _simulator(stack, "GET", "/stats")
        for entity in WRITE_ROUTES:
            ti = tasks.get(f"{entity}.load") or {}
            if ti.get("state") != "running" or not ti.get("pid") or _writes(stats, entity) == 0:
                continue
            worker = next(
                (
                    name
                    for name, pid in stack.pids.items()
                    if name.startswith("worker-") and int(ti["pid"]) in descendants(pid)
                ),
                None,
            )
            if worker is None:
                continue
            written = _writes(stats, entity)
            victims = stack.kill_worker(worker)
            return {
                "entity": entity,
                "worker": worker,
                "task_pid": int(ti["pid"]),
                "pids": victims,
                "writes_before_kill": written,
                "at_s": round(time.monotonic() - started, 1),
            }
        time.sleep(0.3)
    raise AssertionError("no entity load was seen running with writes done: nothing was killed")


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackScenario]:
    stack = CeleryStack(
        tmp_path_factory.mktemp("celery-stack"),
        echo=_say,
        scale="120",
        seed=5,
        extra_env={
            # Only the runs the person triggers (no */15 run once the DAG is unpaused).
            "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
            # The killed worker's task is failed within seconds rather than stack.env's minute.
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "20",
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
            # A task sent to the worker at the moment it is killed is lost with it (the broker gives the message back
            # only after its visibility timeout): the scheduler sends it again once it has been queued this long,
            # within a minute and a half rather than Airflow's ten. Two workers of two slots each run this small
            # dossier's few parallel tasks: no task waits that long for a slot otherwise.
            "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "90",
            "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT_CHECK_INTERVAL": "10",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.5",
        },
    )
    outcome = StackScenario(stack)
    try:
        t0 = time.monotonic()
        stack.up()
        outcome.seconds["up"] = time.monotonic() - t0
        _api(stack, "PATCH", f"/api/v2/dags/{DAG_ID}", json={"is_paused": False})
        _simulator(stack, "POST", "/faults", {"latency_ms": LATENCY_MS})
        _simulator(stack, "POST", "/stats/reset")
        t0 = time.monotonic()
        _trigger(stack, FIRST_RUN)
        outcome.killed = _kill_a_worker_during_a_load(stack)
        _say(f"killed {outcome.killed}")
        _simulator(stack, "POST", "/heal")
        stack.start_worker(outcome.killed["worker"])  # compose restarts a dead worker (restart: always)
        outcome.first = _wait_for_run(stack, FIRST_RUN, RUN_TIMEOUT_S)
        outcome.first_tasks = _tasks(stack, FIRST_RUN)
        outcome.seconds["first"] = time.monotonic() - t0
        t0 = time.monotonic()
        _trigger(stack, SECOND_RUN)
        outcome.second = _wait_for_run(stack, SECOND_RUN, RUN_TIMEOUT_S)
        outcome.second_tasks = _tasks(stack, SECOND_RUN)
        outcome.seconds["second"] = time.monotonic() - t0
        _say(f"timings {outcome.seconds}")
        yield outcome
    finally:
        stack.down()


def _live_by_ext(stack: CeleryStack, route: str) -> Counter[str]:
    client = stack.sync.integration_client()
    try:
        return Counter(r["extId"] for r in client.list(route) if r.get("extId") and not r.get("deleted"))
    finally:
        client.close()


def _sage_keys(stack: CeleryStack) -> dict[str, set[str]]:
    """The keys the sync owns, read from the dossier with SQL.

    Customers and prospects (C1), the customers' contacts (K1, P5), the articles (D1), the invoices of the sales
    domain (I1).
    """
    engine = stack.sync.sage()
    queries = {
        "accounts": "SELECT CT_Num FROM F_COMPTET WHERE CT_Type = 0",
        # P5: a prospect's contacts wait for its conversion.
        "contacts": "SELECT k.CT_Num || '/' || k.CT_No FROM F_CONTACTT k "
        "JOIN F_COMPTET c ON c.CT_Num = k.CT_Num WHERE c.CT_Type = 0 AND c.CT_Prospect = 0",
        "products": "SELECT AR_Ref FROM F_ARTICLE",
        "salesorders": "SELECT DISTINCT DO_Piece FROM F_DOCENTETE WHERE DO_Domaine = 0 AND DO_Type IN (6, 7)",
    }
    try:
        with engine.connect() as db:
            return {name: {str(r[0]) for r in db.execute(sa.text(q))} for name, q in queries.items()}
    finally:
        engine.dispose()


def _state(stack: CeleryStack, query: str) -> list[tuple[Any, ...]]:
    engine = sa.create_engine(stack.postgres_url("sage_sync_state"))
    try:
        with engine.connect() as db:
            return [tuple(r) for r in db.execute(sa.text(query))]
    finally:
        engine.dispose()


def test_the_killed_worker_was_running_a_load_that_had_written_part_of_its_records(
    scenario: StackScenario,
) -> None:
    killed = scenario.killed
    assert killed["writes_before_kill"] >= 1, killed
    assert killed["task_pid"] in killed["pids"], "the task process died with its worker"
    load = scenario.first_tasks[f"{killed['entity']}.load"]
    assert load["state"] == "failed", load  # found without a heartbeat; load has no retry
    assert scenario.first["state"] == "failed"


def test_g5_the_next_run_succeeds_on_the_workers_and_converges_without_loss_or_duplicate(
    scenario: StackScenario,
) -> None:
    stack = scenario.stack
    assert scenario.second["state"] == "success", scenario.second_tasks
    hosts = {str(ti["hostname"]) for ti in scenario.second_tasks.values() if ti["state"] == "success"}
    assert hosts, "no task ran"
    queues = {str(ti["queue"]) for ti in scenario.second_tasks.values()}
    assert queues == {"default"}, queues  # every task was sent to the one queue both workers consume
    expected = _sage_keys(stack)
    open_quarantine = {
        (str(entity), str(key))
        for entity, key in _state(
            stack, "SELECT entity, key FROM quarantine WHERE released_at IS NULL AND severity = 'error'"
        )
    }
    route_entity = {
        "accounts": "accounts",
        "contacts": "contacts",
        "products": "products",
        "salesorders": "invoices",
    }
    summary: dict[str, dict[str, Any]] = {}
    for route, entity in route_entity.items():
        live = _live_by_ext(stack, route)
        wanted = {k for k in expected[route] if (entity, k) not in open_quarantine}
        # The state store binds each of them to the SSM record that carries it.
        bound = {
            str(key)
            for (key,) in _state(
                stack,
                f"SELECT key FROM bindings WHERE entity = '{entity}' AND ssm_id IS NOT NULL AND status = 'ok'",
            )
        }
        summary[route] = {
            "expected": len(wanted),
            "live": len(live),
            "lost": sorted(wanted - set(live))[:10],
            "not in Sage": sorted(set(live) - expected[route])[:10],
            "duplicated": sorted(k for k, n in live.items() if n > 1)[:10],
            "unbound": sorted(wanted - bound)[:10],
        }
    _say(f"convergence {summary}")
    for route, found in summary.items():
        assert not found["duplicated"], f"{route}: extIds on more than one live SSM record: {summary}"
        assert not found["lost"], f"{route}: Sage records missing in SSM: {summary}"
        assert not found["unbound"], f"{route}: not bound in the state store: {summary}"
        assert not found["not in Sage"], f"{route}: SSM records the dossier does not have: {summary}"
    # The simulator's own count: no extId on two live records of any entity, whatever the listing showed.
    duplicates = _simulator(stack, "GET", "/stats")["duplicate_ext_ids"]
    assert not any(duplicates.values()), duplicates


def test_the_api_server_shows_the_run_the_workers_produced(scenario: StackScenario) -> None:
    stack = scenario.stack
    page = requests.get(
        f"{stack.api_url}/sage-sync/dags/{DAG_ID}/sync", headers=stack.auth_headers(), timeout=30
    )
    assert page.ok, page.status_code
    assert SECOND_RUN in page.text
    report = requests.get(
        f"{stack.api_url}/sage-sync/dags/{DAG_ID}/reports/{run_name(SECOND_RUN)}.html",
        headers=stack.auth_headers(),
        timeout=30,
    )
    assert report.ok, report.status_code
    assert SECOND_RUN in report.text
    # The preflight probed the shared location from a worker (O2) and raised no warning about the deployment.
    log = (
        stack.airflow_home / "logs" / f"dag_id={DAG_ID}" / f"run_id={SECOND_RUN}" / "task_id=preflight"
    ).glob("attempt=*.log")
    text = "\n".join(p.read_text(errors="replace") for p in log)
    assert "shared location" in text and f"file://{stack.shared}" in text, text[-2000:]
    assert "writable and readable (SAGE_SYNC_SHARED_URL)" in text, text[-2000:]
    assert "tasks may run on several hosts" not in text, text[-2000:]
    # Everything the runs shared went through the shared location: no step file or report in a private folder.
    assert (stack.shared / "reports" / f"{run_name(SECOND_RUN)}.json").exists()
    for name in ("worker-1", "worker-2"):
        private = stack.private_home(name)
        leaked = [p for p in private.rglob("*") if p.is_file() and p.suffix in (".json", ".parquet")]
        assert not leaked, f"{name} kept files other tasks would need: {leaked[:5]}"
