"""The real DAG under a real Airflow scheduler, with its deadline alert on (G1).

``airflow dags test`` runs every task in one process and crashes (Airflow 3.3.2) when it finishes a run of a DAG
that has a deadline alert, so the other DAG tests turn the alert off. Here the alert stays on: the production
components run as subprocesses on 127.0.0.1 (API server with the execution API, DAG processor, scheduler with the
LocalExecutor) on a SQLite metadata database, against the stand-in dossier (SQLite ODBC driver) and the SSM
simulator over HTTP. One run is triggered with ``airflow dags trigger`` and a 15-second deadline, which a
21-task run of separate task processes on 2 cores cannot meet, so the scheduler marks the deadline missed and the
executor runs the callback while the run goes on.

One scenario, checked from the outside: the run succeeded (tasks in their own processes, XCom between them);
the alert file names the run; the callback's log says why; Airflow recorded the deadline as missed; the run report
(JSON, and the HTML page the API server's plugin serves) says "deadline missed"; both systems got the initial sync.

Then customers are purged in Sage beyond the mass-deletion guard (G4) and a second run is triggered: it asks for
approval in the UI (a human-in-the-loop task, deferred to the triggerer) and nobody answers. After the configured
time the run finishes on its own, the deletions stay withheld (nothing deleted in SSM), the report records the
timeout, and the timeout is not kept as a rejection (the next run asks again).
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy as sa

from sage_sync.engine.staging import run_name
from sage_sync.settings import DAG_ID
from sage_sync_tools.stack import SyncStack, free_port
from tests.support.sage_edits import delete_customers, insert_customers
from tests.support.ssm_reads import by_ext_id

#: Far below what a first sync under a scheduler takes (each of the 21 tasks starts its own process; the
#: accounts -> contacts chain alone is ten of them in a row), so the miss does not depend on machine speed.
DEADLINE_MINUTES = "0.25"
RUN_ID = "manual__g1_deadline_scheduler_test"
TIMEOUT_RUN_ID = "manual__g4_approval_timeout_scheduler_test"
#: How long the second run waits for an answer nobody gives (seconds, so the scenario stays short).
APPROVAL_TIMEOUT_MINUTES = 0.25
#: Five customers created before the first run and deleted before the second, of about 25: they trip the guard (G4).
SETTINGS = {"guard_ratio": 0.05, "guard_minimum": 2, "approval_timeout_minutes": APPROVAL_TIMEOUT_MINUTES}
PURGED = 5
RUN_TIMEOUT_S = 8 * 60
PROGRESS_EVERY_S = 20.0


def _say(text: str) -> None:
    """Progress on the terminal (visible with ``pytest -s``; captured otherwise and shown on failure)."""
    print(f"[scheduler test] {text}", file=sys.stderr, flush=True)


@dataclass
class AirflowComponents:
    """The Airflow services of one test, each a subprocess in its own process group, stopped in ``stop``."""

    stack: SyncStack
    api_port: int = field(default_factory=free_port)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    #: Signs the task and callback tokens (scheduler) and checks them (API server); never printed.
    _jwt_secret: str = field(default_factory=lambda: secrets.token_urlsafe(32), repr=False)

    @property
    def api_url(self) -> str:
        """The API server (REST API, execution API, plugin pages)."""
        return f"http://127.0.0.1:{self.api_port}"

    def env(self) -> dict[str, str]:
        """The stack's environment (connections, homes, the deadline) plus what the services share."""
        env = self.stack.env()
        env.update(
            {
                "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
                # Two cores: a few task processes at a time (the ssm_api pool has 2 slots anyway).
                "AIRFLOW__CORE__PARALLELISM": "4",
                "AIRFLOW__API__BASE_URL": self.api_url,
                "AIRFLOW__API__WORKERS": "1",
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.api_url}/execution/",
                "AIRFLOW__API_AUTH__JWT_SECRET": self._jwt_secret,
                # Read-only REST polling by the test without a login (a throw-away home on 127.0.0.1).
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
                # Only the triggered run: no scheduled run of the */15 timetable once the DAG is unpaused.
                "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
                "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.5",
            }
        )
        return env

    def start(self) -> None:
        """Start the API server, the DAG processor and the scheduler; wait until the API answers."""
        logs = self.stack.root / "components"
        logs.mkdir(exist_ok=True)
        airflow = str(Path(sys.executable).with_name("airflow"))
        commands = {
            "api-server": [airflow, "api-server", "--host", "127.0.0.1", "--port", str(self.api_port)],
            "dag-processor": [airflow, "dag-processor"],
            "scheduler": [airflow, "scheduler"],
            "triggerer": [airflow, "triggerer"],  # runs the deferred approval tasks (their timeout)
        }
        env = self.env()
        for name, cmd in commands.items():
            with (logs / f"{name}.log").open("wb") as out:
                self.processes[name] = subprocess.Popen(
                    cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
                )
            _say(f"started {name} (pid {self.processes[name].pid})")
        self._wait("the API server", lambda: self.get("/api/v2/monitor/health") is not None, 180)

    def log(self, name: str) -> str:
        """One component's output so far (for failure messages)."""
        path = self.stack.root / "components" / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def _check_alive(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise AssertionError(
                    f"airflow {name} exited with {process.returncode}:\n{self.log(name)[-4000:]}"
                )

    def _wait(self, what: str, ready: Any, timeout: float) -> None:
        started = time.monotonic()
        while not ready():
            self._check_alive()
            if time.monotonic() - started > timeout:
                raise AssertionError(f"{what} not ready within {timeout:.0f} s")
            time.sleep(1)
        _say(f"{what} ready after {time.monotonic() - started:.0f} s")

    def get(self, path: str) -> Any:
        """A GET on the API server; ``None`` while it does not answer or answers with an error."""
        try:
            reply = requests.get(f"{self.api_url}{path}", timeout=10)
        except requests.RequestException:
            return None
        return reply.json() if reply.ok else None

    def airflow(self, *args: str) -> str:
        """One ``airflow`` CLI command in the services' environment; its output."""
        done = subprocess.run(
            [str(Path(sys.executable).with_name("airflow")), *args],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, (
            f"airflow {' '.join(args)}:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
        )
        return done.stdout

    def wait_for_dag(self, timeout: float = 180) -> None:
        """Wait until the DAG processor has parsed and stored the DAG (with its deadline alert)."""
        self._wait(f"DAG {DAG_ID}", lambda: self.get(f"/api/v2/dags/{DAG_ID}") is not None, timeout)

    def wait_for_run(self, run_id: str, timeout: float, watch: Any = None) -> dict[str, Any]:
        """Wait (bounded) until the run is finished, printing the task states now and then; the run.

        ``watch`` (optional) is called at each poll while the run goes on.
        """
        started = last = time.monotonic()
        while True:
            self._check_alive()
            if watch is not None:
                watch()
            run = self.get(f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}") or {}
            if run.get("state") in ("success", "failed"):
                _say(f"run {run_id} {run['state']} after {time.monotonic() - started:.0f} s")
                return dict(run)
            if time.monotonic() - last >= PROGRESS_EVERY_S:
                last = time.monotonic()
                tis = (self.get(f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances") or {}).get(
                    "task_instances", []
                )
                states: dict[str, int] = {}
                for ti in tis:
                    states[str(ti.get("state"))] = states.get(str(ti.get("state")), 0) + 1
                _say(f"{time.monotonic() - started:.0f} s: run {run.get('state')}, tasks {states}")
            if time.monotonic() - started > timeout:
                raise AssertionError(
                    f"run {run_id} not finished within {timeout:.0f} s:\n{self.log('scheduler')[-4000:]}"
                )
            time.sleep(2)

    def stop(self) -> None:
        """SIGTERM each service's process group, then SIGKILL what is left (task processes included)."""
        for name, process in reversed(list(self.processes.items())):
            _stop_group(process)
            _say(f"stopped {name}")
        self.processes.clear()


def _group_alive(pid: int) -> bool:
    try:
        os.killpg(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _stop_group(process: subprocess.Popen[bytes]) -> None:
    for sig, grace in ((signal.SIGTERM, 20.0), (signal.SIGKILL, 10.0)):
        if not _group_alive(process.pid):
            break
        os.killpg(process.pid, sig)
        until = time.monotonic() + grace
        while _group_alive(process.pid) and time.monotonic() < until:
            process.poll()
            time.sleep(0.2)
    process.poll()


@dataclass
class SchedulerRun:
    """What the scenario produced, for the assertions."""

    stack: SyncStack
    run: dict[str, Any]
    ssm_company_id: int
    deadlines: list[dict[str, Any]]
    report_html: str
    callback_logs: list[Path]
    purged: list[str] = field(default_factory=list)
    ssm_before_purge: dict[str, dict[str, Any]] = field(default_factory=dict)
    timeout_run: dict[str, Any] = field(default_factory=dict)
    asked: list[dict[str, Any]] = field(default_factory=list)
    task_states: dict[str, str] = field(default_factory=dict)
    ssm_after: dict[str, dict[str, Any]] = field(default_factory=dict)


@pytest.fixture(scope="module")
def scheduler_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SchedulerRun]:
    stack = SyncStack(
        tmp_path_factory.mktemp("dag-scheduler"),
        echo=_say,
        deadline_minutes=DEADLINE_MINUTES,
        settings=SETTINGS,
    )
    components = AirflowComponents(stack)
    try:
        stack.start(scale="20", seed=3)
        created = insert_customers(
            stack, PURGED
        )  # synced by the first run, deleted in Sage before the second
        # C4 before the first run: a company created in SSM as "Client", so Sage gets a write too.
        user = stack.user_client()
        try:
            company = user.call(
                "POST",
                "accounts",
                {
                    "name": "Biscuiterie du Port",
                    "statusId": user.value_id("accountStatuses", "Client"),
                    "branchId": 1,
                    "salesRepId1": int(stack.keys["user"]["user_id"]),
                    "city": "Nantes",
                },
            )
        finally:
            user.close()
        components.start()
        components.wait_for_dag()
        # Unpaused through the REST API (an ``airflow`` CLI call costs seconds of start-up on 2 cores).
        reply = requests.patch(
            f"{components.api_url}/api/v2/dags/{DAG_ID}", json={"is_paused": False}, timeout=30
        )
        assert reply.ok, reply.text
        components.airflow("dags", "trigger", DAG_ID, "--run-id", RUN_ID)
        _say(f"triggered {RUN_ID} with a {DEADLINE_MINUTES}-minute deadline")
        run = components.wait_for_run(RUN_ID, RUN_TIMEOUT_S)
        # The alert usually fires long before the run ends; give a late callback a few seconds to land.
        alert = stack.sage_sync_home / "alerts" / f"{RUN_ID}.json"
        until = time.monotonic() + 60
        while not alert.exists() and time.monotonic() < until:
            time.sleep(1)
        deadlines = (components.get(f"/ui/dags/{DAG_ID}/dagRuns/{RUN_ID}/deadlines") or {}).get(
            "deadlines", []
        )
        html = requests.get(f"{components.api_url}/sage-sync/reports/{RUN_ID}.html", timeout=30)
        callback_logs = sorted((stack.airflow_home / "logs").rglob("executor_callbacks/**/*"))
        outcome = SchedulerRun(
            stack=stack,
            run=run,
            ssm_company_id=int(company["id"]),
            deadlines=list(deadlines),
            report_html=html.text if html.ok else f"HTTP {html.status_code}",
            callback_logs=[p for p in callback_logs if p.is_file()],
        )
        _approval_nobody_answers(components, outcome, created)
        yield outcome
    finally:
        components.stop()
        stack.stop()


def _approval_nobody_answers(components: AirflowComponents, outcome: SchedulerRun, codes: list[str]) -> None:
    """G4 under the scheduler: a purge beyond the guard, a run that asks, nobody answers, the run finishes."""
    stack = outcome.stack
    outcome.ssm_before_purge = by_ext_id(stack, "accounts")
    delete_customers(stack, codes)
    outcome.purged = codes
    components.airflow("dags", "trigger", DAG_ID, "--run-id", TIMEOUT_RUN_ID)
    _say(f"triggered {TIMEOUT_RUN_ID} after purging {len(outcome.purged)} customers; nobody will answer")
    hitl = f"/api/v2/dags/{DAG_ID}/dagRuns/{TIMEOUT_RUN_ID}/hitlDetails"

    def watch() -> None:
        if not outcome.asked:
            outcome.asked = list((components.get(hitl) or {}).get("hitl_details") or [])

    outcome.timeout_run = components.wait_for_run(TIMEOUT_RUN_ID, RUN_TIMEOUT_S, watch)
    outcome.asked = list((components.get(hitl) or {}).get("hitl_details") or []) or outcome.asked
    tis = components.get(f"/api/v2/dags/{DAG_ID}/dagRuns/{TIMEOUT_RUN_ID}/taskInstances") or {}
    outcome.task_states = {str(t["task_id"]): str(t["state"]) for t in tis.get("task_instances", [])}
    outcome.ssm_after = by_ext_id(stack, "accounts")


def _report(stack: SyncStack, run_id: str = RUN_ID) -> dict[str, Any]:
    path = stack.sage_sync_home / "reports" / f"{run_name(run_id)}.json"
    assert path.exists(), f"no run report at {path}"
    return dict(json.loads(path.read_text(encoding="utf-8")))


def test_g1_the_run_succeeds_under_a_real_scheduler(scheduler_run: SchedulerRun) -> None:
    """Every task ran in its own process and handed its files over by XCom; the run and its report are ok."""
    assert scheduler_run.run["state"] == "success", scheduler_run.run
    report = _report(scheduler_run.stack)
    assert report["run_id"] == RUN_ID
    assert report["status"] == "ok", {e: s["status"] for e, s in report["entities"].items()}


def test_g1_missed_deadline_fires_the_callback_and_leaves_an_alert_file(scheduler_run: SchedulerRun) -> None:
    """G1: the scheduler marked the deadline missed and the executor ran ``run_overdue`` for this run."""
    path = scheduler_run.stack.sage_sync_home / "alerts" / f"{RUN_ID}.json"
    assert path.exists(), "the deadline callback left no alert file"
    alert = json.loads(path.read_text(encoding="utf-8"))
    assert alert["run_id"] == RUN_ID
    assert alert["dag_id"] == DAG_ID
    assert alert["deadline_minutes"] == float(DEADLINE_MINUTES)
    assert alert["deadline"] == "15 seconds"
    assert alert["fired_at"] and alert["queued_at"] and alert["deadline_time"]
    assert f"Run {RUN_ID} was not done 15 seconds after it was queued" in alert["message"]
    # Airflow's own record: the run's deadline is marked missed.
    assert [d.get("missed") for d in scheduler_run.deadlines] == [True], scheduler_run.deadlines
    # The callback's log (the executor writes one per callback) carries the warning.
    logs = "\n".join(p.read_text(errors="replace") for p in scheduler_run.callback_logs)
    assert f"sage50_ssm_sync run {RUN_ID} is not done 15 seconds after it was queued" in logs, (
        scheduler_run.callback_logs
    )


def test_g1_run_report_says_the_deadline_was_missed(scheduler_run: SchedulerRun) -> None:
    """G1/G7: the JSON report flags the miss, and the HTML page served in the Airflow UI says it in a sentence."""
    report = _report(scheduler_run.stack)
    assert report["deadline_missed"] is True
    assert report["deadline"]["deadline_minutes"] == float(DEADLINE_MINUTES)
    assert report["deadline"]["path"].endswith(f"alerts/{RUN_ID}.json")
    assert "<strong>Deadline missed</strong> (G1): the run was not done 15 seconds after it was queued" in (
        scheduler_run.report_html
    )


def test_c1_c4_both_systems_got_the_initial_sync(scheduler_run: SchedulerRun) -> None:
    """C1: every Sage account is in SSM once by ``extId``; C4: the SSM "Client" company is now a Sage customer."""
    stack = scheduler_run.stack
    report = _report(stack)
    engine = stack.sage()
    try:
        with engine.connect() as db:
            codes = {str(r[0]) for r in db.execute(sa.text("SELECT CT_Num FROM F_COMPTET WHERE CT_Type = 0"))}
            # The customers deleted in Sage before the second run were synced by the first; withheld since (G4).
            codes |= set(scheduler_run.purged)
            client = stack.integration_client()
            try:
                accounts = client.list("accounts")
                products = [p for p in client.list("products") if p.get("extId")]
            finally:
                client.close()
            company = next(a for a in accounts if int(a["id"]) == scheduler_run.ssm_company_id)
            assert company.get("extId"), "C4: the SSM company got no Sage code"
            row = db.execute(
                sa.text("SELECT CT_Intitule, CT_Prospect FROM F_COMPTET WHERE CT_Num = :c"),
                {"c": company["extId"]},
            ).one()
    finally:
        engine.dispose()
    assert (row[0], row[1]) == ("Biscuiterie du Port", 0)
    live = [a for a in accounts if a.get("extId") and not a.get("deleted")]
    assert {a["extId"] for a in live} == codes
    assert len(live) == len(codes), "duplicate extId in SSM (C1)"
    # Every Sage account created in SSM, and the SSM company created in Sage (then its extId set: the update).
    assert report["entities"]["accounts"]["counts"]["created"] == len(codes)
    assert report["entities"]["accounts"]["counts"]["updated"] == 1
    assert report["entities"]["products"]["counts"]["created"] == len(products) > 0
    assert report["entities"]["invoices"]["counts"]["created"] > 0


def test_g4_a1_an_unanswered_approval_times_out_and_the_run_finishes_with_the_deletions_withheld(
    scheduler_run: SchedulerRun,
) -> None:
    """G4/A1: asked in the UI, nobody answers: after the configured time the run ends, nothing deleted in SSM."""
    purged = scheduler_run.purged
    assert set(purged) <= set(scheduler_run.ssm_before_purge), "the first run did not sync the new customers"
    assert scheduler_run.timeout_run["state"] == "success", scheduler_run.timeout_run
    # The run asked (the triggerer held the task): the question names the count.
    asked = [a for a in scheduler_run.asked if a["task_instance"]["task_id"] == "accounts.approve"]
    assert asked and f"Delete {PURGED} accounts" in asked[0]["subject"], scheduler_run.asked
    assert not asked[0].get("responded_by_user"), asked[0]
    # The default answer was taken at the timeout: the approved pass did not run.
    assert scheduler_run.task_states["accounts.apply_approved"] == "skipped", scheduler_run.task_states
    assert scheduler_run.task_states["report"] == "success", scheduler_run.task_states
    report = _report(scheduler_run.stack, TIMEOUT_RUN_ID)
    accounts = report["entities"]["accounts"]
    withheld = {d["key"] for d in accounts["deferred"] if d["rule"] == "G4"}
    assert set(purged) <= withheld
    decision = accounts["approval_decision"]
    assert decision["decision"] == "timed out" and decision["by"] is None, decision
    assert decision["set"] == accounts["withheld_set"] and decision["count"] == len(withheld)
    # SSM: none of the purged customers was deleted.
    before, after = scheduler_run.ssm_before_purge, scheduler_run.ssm_after
    assert all(not after[code].get("deleted") for code in purged)
    assert {k for k, r in after.items() if r.get("deleted")} == {
        k for k, r in before.items() if r.get("deleted")
    }
    # A timeout is not a decision: the next run asks again (no rejection kept for this set).
    decisions = scheduler_run.stack.sage_sync_home / "approvals.json"
    kept = json.loads(decisions.read_text(encoding="utf-8")) if decisions.exists() else {}
    assert kept.get("accounts", {}).get("decision") != "rejected", kept
