"""The demo stack: a SQLite stand-in dossier, the SSM simulator and the real DAG under ``airflow dags test``.

:class:`SyncStack` starts what the demo (``sage-sync demo run``), the DAG integration tests and the end-to-end
benchmark need, in one working folder, and stops what it started: the dossier (``sage-sync standin create``), the
simulator (a subprocess on a free 127.0.0.1 port), an Airflow home with a SQLite metadata database, the
``ssm_api`` pool, and the connections as ``AIRFLOW_CONN_*`` JSON in the environment of each ``airflow`` command.
:func:`day_of_changes` makes a realistic day of edits on both sides, through the dossier's SQL and the public API.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import requests
import sqlalchemy as sa
import yaml

from sage_sync.hooks.retry import parse_retry_after
from sage_sync.settings import DAG_ID, SSM_POOL

if TYPE_CHECKING:
    from sage_sync_tools.api_server import ApiServer

POOL_SLOTS = 2
#: Task processes the LocalExecutor runs at once when a stack runs its DAG with an executor (two cores here).
EXECUTOR_PARALLELISM = 2
DAG_FILE = Path("dags") / "sage50_ssm_sync.py"


def find_project(start: Path | None = None) -> Path:
    """The project folder (the one holding ``dags/`` and ``plugins/``): ``start`` or the nearest parent of it.

    ``start`` defaults to the current folder; ``make demo``, ``make test`` and the benchmarks run from the project.
    """
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / DAG_FILE).is_file():
            return folder
    raise FileNotFoundError(
        f"no {DAG_FILE} in {here} or its parents: run this from the project folder (the one with dags/ and plugins/)"
    )


Echo = Callable[[str], None]


def _quiet(_: str) -> None:
    return None


def exit_on_sigterm() -> None:
    """Turn SIGTERM into a normal exit, so ``finally`` blocks stop the simulator this process started."""
    import signal

    def _exit(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, _exit)


def _stop_group(process: subprocess.Popen[bytes]) -> None:
    """Terminate a process started in its own session and every process of its group, then kill what is left.

    Airflow may outlive a SIGTERM while a task is busy, so the group (not only the direct child) is watched.
    """
    import signal

    def alive() -> bool:
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            return False
        return True

    for sig in (signal.SIGTERM, signal.SIGKILL):
        if not alive():
            break
        os.killpg(process.pid, sig)
        deadline = time.monotonic() + 10
        while alive() and time.monotonic() < deadline:
            process.poll()
            time.sleep(0.2)
    process.poll()


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _bin(name: str) -> str:
    """A console script of this environment (``airflow``, ``sage-sync``)."""
    candidate = Path(sys.executable).with_name(name)
    return str(candidate) if candidate.exists() else name


#: Runs a command and writes the peak resident memory of its process tree (KiB, as waited for) to argv[1].
_PEAK_WRAPPER = (
    "import resource, subprocess, sys\n"
    "code = subprocess.call(sys.argv[2:])\n"
    "open(sys.argv[1], 'w').write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))\n"
    "sys.exit(code)\n"
)


_FINISHED = re.compile(r"DagRun Finished: .*?run_id=(\S+?),")


@dataclass
class DagRunOutcome:
    """One ``airflow dags test`` run: exit code, wall seconds, its report, log, peak memory of the run."""

    returncode: int
    seconds: float
    report: dict[str, Any] | None
    log_path: Path
    peak_rss_mb: float = 0.0

    def log_tail(self, lines: int = 80) -> str:
        """The end of the run's log (for failure messages)."""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


class SsmClient:
    """A minimal API v4 client acting as a user (the demo's "salesperson" edits), not the integration."""

    def __init__(self, base_url: str, public_key: str, private_key: str) -> None:
        """Log in lazily with the given key pair."""
        self.base_url = base_url
        self._keys = (public_key, private_key)
        self._http = requests.Session()
        self._token: str | None = None

    def _headers(self) -> dict[str, str]:
        if self._token is None:
            reply = self._http.post(
                f"{self.base_url}/login",
                json={"username": self._keys[0], "password": self._keys[1]},
                timeout=30,
            )
            reply.raise_for_status()
            self._token = str(reply.json()["token"])
        return {"X-Session-Key": self._token, "Count": "1000"}

    def call(self, method: str, path: str, body: Any = None, params: dict[str, Any] | None = None) -> Any:
        """One API call; raises with the API's message on an error status.

        A ``429`` (the key's rate limit, e.g. a bench at a real tenant's 13 requests/s) is waited out as its
        ``Retry-After`` says, up to ten times: a refused call was not applied.
        """
        for _ in range(10):
            reply = self._http.request(
                method,
                f"{self.base_url}/{path.lstrip('/')}",
                json=body,
                params=params,
                headers=self._headers(),
                timeout=30,
            )
            if reply.status_code != 429:
                break
            time.sleep(parse_retry_after(reply.headers.get("Retry-After")) or 1.0)
        if reply.status_code >= 400:
            raise RuntimeError(f"{method} {path} -> {reply.status_code}: {reply.text[:300]}")
        return reply.json()

    def list(self, entity: str, where: str | None = None) -> list[dict[str, Any]]:
        """Every record of ``entity`` matching ``where`` (all pages)."""
        out: list[dict[str, Any]] = []
        page = 0
        while True:
            params: dict[str, Any] = {"page": page}
            if where:
                params["where"] = where
            items = self.call("GET", entity, params=params)
            out.extend(items)
            if len(items) < 1000:
                return out
            page += 1

    def value_id(self, value_list: str, label: str) -> int:
        """The id of the value-list item whose French label is ``label``."""
        for item in self.call("GET", value_list):
            if label in (item.get("descriptionFR"), item.get("description")):
                return int(item["id"])
        raise LookupError(f"{value_list} has no item {label!r}")

    def close(self) -> None:
        """Close the HTTP session."""
        self._http.close()


@dataclass
class SyncStack:
    """Everything one demo, test module or benchmark runs on, under ``root``."""

    root: Path
    echo: Echo = _quiet
    rate_limit: float = 0.0
    #: A PostgreSQL (WIN1252) dossier instead of SQLite: {"host", "port", "user", "database", "url"}; the
    #: database must exist (``sage-sync standin create --engine postgres`` fills it).
    postgres: dict[str, Any] | None = None
    #: ``SAGE_SYNC_DEADLINE_MINUTES`` of every ``airflow`` command. "0" (alert off) because ``airflow dags test``
    #: in 3.3.2 crashes on finishing a run of a DAG with a deadline alert; a real scheduler keeps it on (G1).
    deadline_minutes: str = "0"
    #: Settings of every run (``SAGE_SYNC_CONFIG``), e.g. a tighter G4 guard for a scenario.
    settings: dict[str, Any] = field(default_factory=dict)
    #: Where OpenLineage events are written (its file transport), or None for no lineage.
    lineage_file: Path | None = None
    #: The project folder whose dags/ and plugins/ Airflow loads (default: found from the current folder).
    project: Path = field(default_factory=find_project)
    #: Run each task in a process of its own through the LocalExecutor (``airflow dags test --use-executor``), as
    #: a scheduler does, ``EXECUTOR_PARALLELISM`` at a time, beside an API server the stack starts (the
    #: execution API the task processes talk to). False: every task in the ``dags test`` process, one at a time.
    executor: bool = False
    dossier: Path = field(init=False)
    port: int = field(init=False, default=0)
    keys: dict[str, Any] = field(init=False, default_factory=dict)
    process: subprocess.Popen[bytes] | None = field(init=False, default=None)
    runs: int = field(init=False, default=0)
    #: The API server of the executor's task processes (``executor`` only).
    api_server: ApiServer | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.root = self.root.resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.dossier = self.root / "dossier.sqlite"

    # --- layout ------------------------------------------------------------------------------------------

    @property
    def airflow_home(self) -> Path:
        """The Airflow home (SQLite metadata database, logs)."""
        return self.root / "airflow"

    @property
    def sage_sync_home(self) -> Path:
        """``SAGE_SYNC_HOME``: state database, staging, reports, Data Docs."""
        return self.root / "sage-sync"

    @property
    def base_url(self) -> str:
        """The simulator's API base URL."""
        return f"http://127.0.0.1:{self.port}/api/v4"

    @property
    def admin_url(self) -> str:
        """The simulator's admin endpoints."""
        return f"http://127.0.0.1:{self.port}/__sim"

    def env(self) -> dict[str, str]:
        """The environment of every ``airflow`` command: homes, folders, connections (secrets only here)."""
        integration = self.keys["integration"]
        sage_conn: dict[str, Any] = {
            "conn_type": "odbc",
            "schema": str(self.dossier),
            "extra": {"driver": "SQLite3"},
        }
        if self.postgres is not None:
            sage_conn = {
                "conn_type": "odbc",
                "host": self.postgres["host"],
                "port": self.postgres["port"],
                "login": self.postgres["user"],
                "schema": self.postgres["database"],
                "extra": {"driver": "PostgreSQL Unicode"},
            }
        ssm_conn = {
            "conn_type": "http",
            "host": self.base_url,
            "login": integration["public_key"],
            "password": integration["private_key"],
            # The client keeps to the simulator's pace (0: no limit on either side).
            "extra": {"requests_per_second": self.rate_limit},
        }
        env = dict(os.environ)
        env.update(
            {
                "AIRFLOW_HOME": str(self.airflow_home),
                "AIRFLOW__CORE__DAGS_FOLDER": str(self.project / "dags"),
                "AIRFLOW__CORE__PLUGINS_FOLDER": str(self.project / "plugins"),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__PROVIDERS_ODBC__ALLOW_DRIVER_IN_EXTRA": "True",
                "AIRFLOW_CONN_SAGE50_DEFAULT": json.dumps(sage_conn),
                "AIRFLOW_CONN_SSM_DEFAULT": json.dumps(ssm_conn),
                "SAGE_SYNC_HOME": str(self.sage_sync_home),
                "SAGE_SYNC_DEADLINE_MINUTES": self.deadline_minutes,
            }
        )
        env.pop("SAGE_SYNC_CONFIG", None)
        if self.lineage_file is not None:
            transport = {"type": "file", "log_file_path": str(self.lineage_file), "append": True}
            env["AIRFLOW__OPENLINEAGE__TRANSPORT"] = json.dumps(transport)
            env["AIRFLOW__OPENLINEAGE__NAMESPACE"] = "sage_sync"
        settings = dict(self.settings)
        # ``airflow dags test`` has no scheduler to time out an approval it asks for (G4): a stack's runs do not ask
        # unless its settings say how long to wait.
        settings.setdefault("approval_timeout_minutes", 0)
        if self.postgres is not None:
            # A server dossier has no file to put the pictures beside: the settings name the media folder (D3).
            settings.setdefault("media_folder", str(self.root / "dossier_media"))
        if settings:
            path = self.root / "settings.yaml"
            path.write_text(yaml.safe_dump(settings), encoding="utf-8")
            env["SAGE_SYNC_CONFIG"] = str(path)
        if self.api_server is not None:
            # ``dags test`` signs the task tokens with the secret the API server checks them with.
            env.update(
                {
                    "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
                    "AIRFLOW__CORE__PARALLELISM": str(EXECUTOR_PARALLELISM),
                    "AIRFLOW__API__BASE_URL": self.api_server.url,
                    "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.api_server.url}/execution/",
                    "AIRFLOW__API_AUTH__JWT_SECRET": self.api_server.jwt_secret,
                }
            )
        return env

    # --- start and stop ----------------------------------------------------------------------------------

    def clean(self) -> None:
        """Remove what an earlier stack left in ``root`` (only the names this class creates), to start afresh."""
        import shutil

        for name in ("airflow", "sage-sync", "dossier_media"):
            shutil.rmtree(self.root / name, ignore_errors=True)
        for pattern in (
            "dossier.sqlite*",
            "ssm-tenant.sqlite*",
            "dag-run-*",
            "simulator.log",
            "api-server-*.log",
            "airflow-env.sh",
        ):
            for path in self.root.glob(pattern):
                path.unlink()

    def create_dossier(self, scale: str = "small", seed: int = 7) -> None:
        """Create the stand-in dossier (and its media folder) with ``sage-sync standin create``."""
        where = ["--engine", "sqlite", "--path", str(self.dossier)]
        if self.postgres is not None:
            media = str(self.root / "dossier_media")
            where = ["--engine", "postgres", "--url", str(self.postgres["url"]), "--media", media]
        self.echo(
            f"Creating a {scale} Sage 50 FR stand-in dossier: {where[-1] if self.postgres else self.dossier}"
        )
        cmd = [
            sys.executable,
            "-m",
            "sage_sync.cli",
            "standin",
            "create",
            *where,
            "--scale",
            scale,
            "--seed",
            str(seed),
            "--force",
        ]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"standin create failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")

    def start_simulator(self, timeout: float = 60.0, *, detached: bool = False) -> None:
        """Start the SSM simulator on a free port and read its demo keys.

        ``detached``: in a session of its own, so it outlives the command that started it (the native stack).
        """
        self.port = free_port()
        log = (self.root / "simulator.log").open("wb")
        cmd = [
            sys.executable,
            "-m",
            "sage_sync.simulators.ssm",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--db",
            str(self.root / "ssm-tenant.sqlite"),
            "--admin",
            "--rate-limit",
            str(self.rate_limit),
        ]
        self.process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=detached)
        log.close()
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"the simulator exited with {self.process.returncode}; see {log.name}")
            try:
                self.keys = dict(requests.get(f"{self.admin_url}/keys", timeout=2).json())
                break
            except requests.RequestException:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the simulator did not answer within {timeout:.0f} s") from None
                time.sleep(0.1)
        self.echo(f"SSM simulator listening on {self.base_url} (pid {self.process.pid})")

    def airflow(
        self, *args: str, check: bool = True, timeout: float = 900
    ) -> subprocess.CompletedProcess[str]:
        """Run one ``airflow`` command in the stack's environment."""
        done = subprocess.run(
            [_bin("airflow"), *args],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and done.returncode != 0:
            raise RuntimeError(
                f"airflow {' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
            )
        return done

    def prepare_airflow(self) -> None:
        """Create the Airflow metadata database and the ``ssm_api`` pool."""
        self.echo(f"Preparing Airflow in {self.airflow_home} (metadata database, pool {SSM_POOL})")
        self.airflow_home.mkdir(parents=True, exist_ok=True)
        self.airflow("db", "migrate")
        self.airflow("pools", "set", SSM_POOL, str(POOL_SLOTS), "SSM API callers (sized to the rate limit)")

    def start(self, scale: str = "small", seed: int = 7) -> SyncStack:
        """Start afresh: dossier, simulator, Airflow; everything a DAG run needs."""
        self.clean()
        self.create_dossier(scale, seed)
        self.start_simulator()
        self.prepare_airflow()
        if self.executor:
            from sage_sync_tools.api_server import ApiServer  # it builds on this module

            self.api_server = ApiServer(self, users={}).start()
            self.echo(f"Airflow API server listening on {self.api_server.url} (LocalExecutor runs)")
        return self

    def stop(self) -> None:
        """Stop the simulator and the API server this stack started (nothing else was left running)."""
        if self.api_server is not None:
            self.api_server.stop()
            self.api_server = None
            self.echo("Airflow API server stopped")
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
            self.echo("SSM simulator stopped")
        self.process = None

    def __enter__(self) -> SyncStack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- runs ----------------------------------------------------------------------------------------------

    def run_dag(self, *, dry_run: bool = False, full_reconcile: bool = False, **conf: Any) -> DagRunOutcome:
        """One run of the real DAG with ``airflow dags test``; returns its report (``latest.json``)."""
        return self.run_dags([{"dry_run": dry_run, "full_reconcile": full_reconcile, **conf}])[0]

    def run_dags(self, confs: list[dict[str, Any]]) -> list[DagRunOutcome]:
        """Start one ``airflow dags test`` per conf at the same moment, wait for all; each with its own report."""
        reports = self.sage_sync_home / "reports"
        before = {p.name for p in reports.glob("*.json")} if reports.exists() else set()
        launched = []
        try:
            for conf in confs:
                self.runs += 1
                log_path = self.root / f"dag-run-{self.runs}.log"
                peak_file = self.root / f"dag-run-{self.runs}.peak"
                with log_path.open("w") as out:
                    # Its own process group: an interrupted run (Ctrl-C, SIGTERM, timeout) is stopped with its children.
                    process = subprocess.Popen(
                        [sys.executable, "-c", _PEAK_WRAPPER, str(peak_file), _bin("airflow"), "dags", "test"]
                        + [DAG_ID, "--conf", json.dumps(conf)]
                        + (["--use-executor"] if self.executor else []),
                        env=self.env(),
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                launched.append((process, log_path, peak_file, time.perf_counter()))
            finished = []
            for process, log_path, peak_file, started in launched:
                returncode = process.wait(timeout=1800)
                finished.append((returncode, time.perf_counter() - started, log_path, peak_file))
        except BaseException:
            for process, *_ in launched:
                _stop_group(process)
            raise
        new = [
            json.loads(p.read_text(encoding="utf-8"))
            for p in sorted(reports.glob("*.json"))
            if p.name != "latest.json" and p.name not in before
        ]
        outcomes = []
        for returncode, seconds, log_path, peak_file in finished:
            # The run's own id, from the line ``airflow dags test`` ends with (its log may name other runs).
            own = _FINISHED.findall(log_path.read_text(encoding="utf-8", errors="replace"))
            report = next((r for r in new if own and str(r.get("run_id")) == own[-1]), None)
            peak = float(peak_file.read_text()) / 1024 if peak_file.exists() else 0.0
            outcomes.append(DagRunOutcome(returncode, seconds, report, log_path, round(peak, 1)))
        return outcomes

    def stats(self) -> dict[str, Any]:
        """The simulator's call statistics since the last reset."""
        return dict(requests.get(f"{self.admin_url}/stats", timeout=10).json())

    def reset_stats(self) -> None:
        """Zero the simulator's call statistics."""
        requests.post(f"{self.admin_url}/stats/reset", timeout=10).raise_for_status()

    def user_client(self) -> SsmClient:
        """An API client acting as the demo salesperson (not the integration user)."""
        user = self.keys["user"]
        return SsmClient(self.base_url, user["public_key"], user["private_key"])

    def integration_client(self) -> SsmClient:
        """An API client with the integration's key (reads every record, read-only ones included)."""
        key = self.keys["integration"]
        return SsmClient(self.base_url, key["public_key"], key["private_key"])

    def sage_side(self) -> Any:
        """The dossier read as the sync reads it: the Sage side over the ODBC hook, with its media folder."""
        from airflow.models.connection import Connection

        from sage_sync.adapters.sage_odbc import SageOdbcSide
        from sage_sync.hooks.sage50 import Sage50Hook

        raw = json.loads(self.env()["AIRFLOW_CONN_SAGE50_DEFAULT"])
        extra = raw.pop("extra", {})
        connection = Connection(conn_id="sage50_default", extra=json.dumps(extra), **raw)
        return SageOdbcSide(Sage50Hook(connection=connection, driver=str(extra["driver"])))

    def sage(self) -> sa.Engine:
        """The dossier as a SQLAlchemy engine (for the demo's Sage-side edits and the tests' checks)."""
        if self.postgres is not None:
            return sa.create_engine(str(self.postgres["url"]))
        return sa.create_engine(f"sqlite:///{self.dossier}")


@dataclass
class DayOfChanges:
    """What :func:`day_of_changes` did, so a test or the demo can check the outcome per rule."""

    ssm_prospect_id: int = 0
    ssm_client_id: int = 0
    converted_code: str = ""
    edited_contact: tuple[str, int] = ("", 0)
    edited_contact_ssm_id: int = 0
    sage_job_title: str = "Directrice des achats"
    ssm_job_title: str = "Acheteuse principale"
    ssm_contact_id: int = 0
    ssm_contact_account: str = ""
    asleep_ref: str = ""
    posted_piece: str = ""
    deleted_code: str = ""
    deleted_ssm_id: int = 0
    lines: list[str] = field(default_factory=list)


def _post_invoice(db: sa.Connection, piece: str) -> None:
    """Post an open invoice as Sage does: the same DO_Piece becomes DO_Type 7, header and lines.

    The lines reference the header by (DO_Domaine, DO_Type, DO_Piece), so the posted header is written first, the
    lines moved to it, then the open header removed (a PostgreSQL dossier enforces that foreign key).
    """
    from sqlalchemy import MetaData, Table

    stored = next(t for t in sa.inspect(db).get_table_names() if t.lower() == "f_docentete")  # PG folds case
    headers = Table(stored, MetaData(), autoload_with=db)
    names = {c.name.lower(): c.name for c in headers.columns}
    domain, kind, number = (headers.c[names[n]] for n in ("do_domaine", "do_type", "do_piece"))
    row = dict(db.execute(sa.select(headers).where(domain == 0, kind == 6, number == piece)).mappings().one())
    row[names["do_type"]] = 7
    db.execute(headers.insert().values(**row))
    db.execute(
        sa.text("UPDATE F_DOCLIGNE SET DO_Type = 7 WHERE DO_Domaine = 0 AND DO_Type = 6 AND DO_Piece = :p"),
        {"p": piece},
    )
    db.execute(headers.delete().where(domain == 0, kind == 6, number == piece))


def _bound(client: SsmClient, entity: str) -> dict[str, dict[str, Any]]:
    return {str(r["extId"]): r for r in client.list(entity) if r.get("extId") and not r.get("deleted")}


def day_of_changes(stack: SyncStack, echo: Echo = _quiet) -> DayOfChanges:
    """A realistic day on both sides, after a first sync (see the module docstring for the list)."""
    day = DayOfChanges()
    admin = stack.integration_client()
    user = stack.user_client()
    accounts = _bound(admin, "accounts")
    contacts = _bound(admin, "contacts")
    engine = stack.sage()
    try:
        with engine.begin() as db:
            # P2: a prospect (with contacts, so P5 releases them) becomes a customer in Sage.
            day.converted_code = str(
                db.execute(
                    sa.text(
                        "SELECT c.CT_Num FROM F_COMPTET c WHERE c.CT_Type = 0 AND c.CT_Prospect = 1 "
                        "AND EXISTS (SELECT 1 FROM F_CONTACTT k WHERE k.CT_Num = c.CT_Num) ORDER BY c.CT_Num LIMIT 1"
                    )
                ).scalar_one()
            )
            db.execute(
                sa.text("UPDATE F_COMPTET SET CT_Prospect = 0 WHERE CT_Num = :c"), {"c": day.converted_code}
            )
            day.lines.append(f"Sage: prospect {day.converted_code} converted to a customer (P2)")
            # G2: the same field of one contact edited on both sides.
            row = db.execute(
                sa.text(
                    "SELECT k.CT_Num, k.CT_No FROM F_CONTACTT k JOIN F_COMPTET c ON c.CT_Num = k.CT_Num "
                    "WHERE c.CT_Prospect = 0 AND c.CT_Type = 0 ORDER BY k.CT_Num, k.CT_No LIMIT 1"
                )
            ).one()
            day.edited_contact = (str(row[0]), int(row[1]))
            db.execute(
                sa.text("UPDATE F_CONTACTT SET CT_Fonction = :f WHERE CT_Num = :c AND CT_No = :n"),
                {"f": day.sage_job_title, "c": row[0], "n": row[1]},
            )
            # D5: an article put asleep.
            day.asleep_ref = str(
                db.execute(
                    sa.text("SELECT AR_Ref FROM F_ARTICLE WHERE AR_Sommeil = 0 ORDER BY AR_Ref LIMIT 1")
                ).scalar_one()
            )
            db.execute(
                sa.text("UPDATE F_ARTICLE SET AR_Sommeil = 1 WHERE AR_Ref = :r"), {"r": day.asleep_ref}
            )
            day.lines.append(f"Sage: article {day.asleep_ref} put asleep (D5)")
            # I1: an open invoice posted (DO_Type 6 -> 7, same DO_Piece).
            piece = db.execute(
                sa.text(
                    "SELECT DO_Piece FROM F_DOCENTETE WHERE DO_Domaine = 0 AND DO_Type = 6 AND DO_Provenance <> 2 "
                    "ORDER BY DO_Piece LIMIT 1"
                )
            ).scalar()
            if piece is not None:
                day.posted_piece = str(piece)
                _post_invoice(db, str(piece))
                day.lines.append(f"Sage: invoice {day.posted_piece} posted (I1)")
            # C3: a customer without documents deleted (with its contacts).
            day.deleted_code = str(
                db.execute(
                    sa.text(
                        "SELECT c.CT_Num FROM F_COMPTET c WHERE c.CT_Type = 0 AND c.CT_Prospect = 0 "
                        "AND c.CT_Num <> :k AND NOT EXISTS (SELECT 1 FROM F_DOCENTETE d WHERE d.DO_Tiers = c.CT_Num) "
                        "AND NOT EXISTS (SELECT 1 FROM F_DOCLIGNE l WHERE l.CT_Num = c.CT_Num) "
                        "ORDER BY c.CT_Num DESC LIMIT 1"
                    ),
                    {"k": day.edited_contact[0]},
                ).scalar_one()
            )
            for table in ("F_CONTACTT", "F_LIVRAISON", "F_COMPTET"):
                db.execute(sa.text(f"DELETE FROM {table} WHERE CT_Num = :c"), {"c": day.deleted_code})
            day.deleted_ssm_id = int(accounts[day.deleted_code]["id"]) if day.deleted_code in accounts else 0
            day.lines.append(f"Sage: customer {day.deleted_code} deleted (C3)")
    finally:
        engine.dispose()
    contact_key = f"{day.edited_contact[0]}/{day.edited_contact[1]}"
    day.edited_contact_ssm_id = int(contacts[contact_key]["id"])
    user_id = int(stack.keys["user"]["user_id"])
    # The salesperson's side of the day, through the public API with a user key.
    user.call("PUT", f"contacts/{day.edited_contact_ssm_id}", {"Z_JobTitle": day.ssm_job_title})
    day.lines.append(
        f"Both: contact {contact_key} job title set to {day.sage_job_title!r} in Sage and "
        f"{day.ssm_job_title!r} in SSM (G2 conflict)"
    )
    prospect_status = user.value_id("accountStatuses", "Prospect")
    client_status = user.value_id("accountStatuses", "Client")
    common = {"branchId": 1, "salesRepId1": user_id}
    day.ssm_prospect_id = int(
        user.call(
            "POST",
            "accounts",
            {**common, "name": "Fromagerie des Alpes", "statusId": prospect_status, "city": "Annecy"},
        )["id"]
    )
    day.lines.append(f"SSM: prospect 'Fromagerie des Alpes' created (id {day.ssm_prospect_id}, P1)")
    day.ssm_client_id = int(
        user.call(
            "POST",
            "accounts",
            {**common, "name": "Cave Saint-Vincent", "statusId": client_status, "city": "Beaune"},
        )["id"]
    )
    day.lines.append(f"SSM: company 'Cave Saint-Vincent' created as Client (id {day.ssm_client_id}, C4/C6)")
    customer = next(
        code
        for code, rec in sorted(accounts.items())
        if code not in (day.deleted_code, day.converted_code) and rec.get("readOnly")
    )
    day.ssm_contact_account = customer
    day.ssm_contact_id = int(
        user.call(
            "POST",
            "contacts",
            {
                "accountId": int(accounts[customer]["id"]),
                "firstName": "Léa",
                "lastName": "Moreau",
                "email": "lea.moreau@example.fr",
                "salesRepId": user_id,
            },
        )["id"]
    )
    day.lines.append(f"SSM: contact 'Léa Moreau' added to customer {customer} (id {day.ssm_contact_id}, K1)")
    admin.close()
    user.close()
    for line in day.lines:
        echo(f"  - {line}")
    return day
