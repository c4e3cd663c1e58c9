"""The production topology of docker-compose.yml on one machine, without Docker: ``sage-sync stack up|down|status``.

Started under one folder, each part on a free 127.0.0.1 port: PostgreSQL (the Airflow metadata database and the
sync's state store, run as an unprivileged user), Redis (the Celery broker), the Airflow API server, scheduler,
DAG processor and triggerer, two Celery workers each with its own private data folder (``SAGE_SYNC_HOME``), the
SSM simulator and a stand-in dossier. Every part reads ``stack.env`` (the file docker-compose.yml reads) plus the
addresses and folders of this machine (:data:`LOCATION_KEYS`). Step files, reports, alerts and Data Docs go to
the shared location ``SAGE_SYNC_SHARED_URL`` (``file://<folder>/shared``, through Airflow's ObjectStoragePath):
a worker never reads another one's private folder, which is what lets them run on separate hosts.

``up`` writes ``stack.json`` (ports and the pid of each part) and returns with everything running; ``down``
stops exactly those pids (and the task processes they started), then PostgreSQL; ``status`` prints a table.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from sage_sync.settings import DAG_ID, SSM_POOL
from sage_sync_tools.postgres_server import server_pid, start_server, stop_server
from sage_sync_tools.stack import POOL_SLOTS, SyncStack, find_project, free_port

#: The file of settings docker-compose.yml and this stack share (at the project's top, beside the compose file).
ENV_FILE = "stack.env"

#: The Airflow components: name -> arguments of ``airflow`` (the compose services run the same commands).
#: Workers are added by :func:`components` (``worker-1``, ``worker-2``...).
SERVICES: dict[str, list[str]] = {
    "api-server": ["api-server"],
    "scheduler": ["scheduler"],
    "dag-processor": ["dag-processor"],
    "triggerer": ["triggerer"],
}
WORKER_COMMAND = ["celery", "worker"]

#: What each side (compose, this stack) sets for its own hosts on top of ``stack.env``; nothing else may differ.
LOCATION_KEYS = (
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
    "AIRFLOW__CELERY__BROKER_URL",
    "AIRFLOW__CELERY__RESULT_BACKEND",
    "AIRFLOW__CORE__EXECUTION_API_SERVER_URL",
    "AIRFLOW__API_AUTH__JWT_SECRET",
    "AIRFLOW__CORE__DAGS_FOLDER",
    "AIRFLOW__CORE__PLUGINS_FOLDER",
    "SAGE_SYNC_HOME",
    "SAGE_SYNC_SHARED_URL",
    "SAGE_SYNC_STATE_URL",
)

STATE_FILE = "stack.json"
LOGIN_USER = "admin"

Echo = Callable[[str], None]


def read_env_file(path: Path) -> dict[str, str]:
    """``KEY=VALUE`` lines of an env file (``#`` comment lines and blank lines skipped), as compose reads them."""
    values: dict[str, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        key, sep, value = text.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"{path}:{number}: expected KEY=VALUE, got {text!r}")
        values[key.strip()] = value.strip()
    return values


def components(workers: int = 2) -> dict[str, list[str]]:
    """Every Airflow component of the stack with its ``airflow`` arguments, workers numbered from 1."""
    return {**SERVICES, **{f"worker-{n}": list(WORKER_COMMAND) for n in range(1, workers + 1)}}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (children, their children...), read from /proc."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        parents.setdefault(ppid, []).append(int(entry.name))
    found: list[int] = []
    todo = [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def kill_tree(pid: int) -> list[int]:
    """SIGKILL ``pid`` and every process below it at once (a host that dies); the pids killed."""
    victims = [pid, *descendants(pid)]
    for victim in victims:
        with contextlib.suppress(ProcessLookupError):
            os.kill(victim, signal.SIGKILL)
    return victims


def _group_alive(pid: int) -> bool:
    try:
        os.killpg(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop_all(leaders: list[int], reap: Callable[[], object], grace: float = 20.0) -> None:
    """Stop components together, task processes that left their worker's group included.

    SIGTERM to each one's process group, up to ``grace`` seconds for all of them to exit, then SIGKILL.
    """
    below = [child for pid in leaders for child in descendants(pid)]
    for pid in leaders:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
    until = time.monotonic() + grace
    while time.monotonic() < until:
        reap()
        if not any(_group_alive(pid) for pid in leaders):
            break
        time.sleep(0.2)
    for pid in leaders:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
    for child in below:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signal.SIGKILL)
    reap()


@dataclass
class CeleryStack:
    """The native stack under ``root``: what ``up`` starts and ``down`` stops."""

    root: Path
    echo: Echo = print
    workers: int = 2
    scale: str = "small"
    seed: int = 7
    #: The simulator's (and the client's) requests per second; 0: no limit.
    rate_limit: float = 0.0
    #: Sage-sync settings (``SAGE_SYNC_CONFIG``) of every run.
    settings: dict[str, Any] = field(default_factory=dict)
    #: Extra environment of every component (tests: a shorter heartbeat timeout, no scheduled runs...).
    extra_env: dict[str, str] = field(default_factory=dict)
    project: Path = field(default_factory=find_project)
    sync: SyncStack = field(init=False)
    ports: dict[str, int] = field(init=False, default_factory=dict)
    pids: dict[str, int] = field(init=False, default_factory=dict)
    _postgres_user: str = field(init=False, default="")
    _postgres_dir: Path | None = field(init=False, default=None)
    #: Signs the task tokens (scheduler) and checks them (API server); the same in every component, never printed.
    _jwt_secret: str = field(init=False, default_factory=lambda: secrets.token_urlsafe(32), repr=False)
    _token: str | None = field(init=False, default=None, repr=False)
    #: The processes this object started (reaped here, so a dead one is seen as dead, not as a zombie).
    _processes: dict[str, subprocess.Popen[bytes]] = field(init=False, default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.root = self.root.resolve()
        # The dossier and the simulator (the outer systems) live in their own sub-folder.
        self.sync = SyncStack(
            self.root / "outer", echo=self.echo, rate_limit=self.rate_limit, project=self.project
        )

    # --- layout --------------------------------------------------------------------------------------------

    @property
    def airflow_home(self) -> Path:
        """The Airflow home of every component on this machine (config, logs, generated passwords)."""
        return self.root / "airflow"

    @property
    def shared(self) -> Path:
        """The folder behind ``SAGE_SYNC_SHARED_URL``: step files, reports, alerts, Data Docs."""
        return self.root / "shared"

    def private_home(self, component: str) -> Path:
        """The private ``SAGE_SYNC_HOME`` of one component (nothing in it is read by another)."""
        return self.root / "private" / component

    @property
    def api_url(self) -> str:
        """The API server: UI, REST API, execution API, the sync's pages."""
        return f"http://127.0.0.1:{self.ports['api-server']}"

    @property
    def postgres_dir(self) -> Path:
        """The PostgreSQL cluster's folder (see :meth:`_postgres_folder`)."""
        return self._postgres_dir or self.root / "postgres"

    def postgres_url(self, database: str, scheme: str = "postgresql+psycopg2") -> str:
        """A database of the stack's PostgreSQL server (trust authentication on 127.0.0.1)."""
        user = self._postgres_user
        return f"{scheme}://{user}@127.0.0.1:{self.ports['postgres']}/{database}"

    def env_file(self) -> dict[str, str]:
        """The settings shared with docker-compose.yml."""
        return read_env_file(self.project / ENV_FILE)

    def locations(self, component: str) -> dict[str, str]:
        """The values of :data:`LOCATION_KEYS` on this machine for ``component``."""
        return {
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.postgres_url("airflow"),
            "AIRFLOW__CELERY__BROKER_URL": f"redis://127.0.0.1:{self.ports['redis']}/0",
            "AIRFLOW__CELERY__RESULT_BACKEND": self.postgres_url("airflow", "db+postgresql+psycopg2"),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.api_url}/execution/",
            "AIRFLOW__API_AUTH__JWT_SECRET": self._jwt_secret,
            "AIRFLOW__CORE__DAGS_FOLDER": str(self.project / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(self.project / "plugins"),
            "SAGE_SYNC_HOME": str(self.private_home(component)),
            "SAGE_SYNC_SHARED_URL": f"file://{self.shared}",
            "SAGE_SYNC_STATE_URL": self.postgres_url("sage_sync_state"),
        }

    def env(self, component: str = "cli") -> dict[str, str]:
        """The whole environment of one component: connections, ``stack.env``, this machine's locations."""
        env = self.sync.env()  # connections to the dossier and the simulator, the settings file
        for name in ("SAGE_SYNC_HOME", "SAGE_SYNC_DEADLINE_MINUTES"):
            env.pop(name, None)
        env.update(self.env_file())
        env.update(self.locations(component))
        env.update(
            {
                "AIRFLOW_HOME": str(self.airflow_home),
                "AIRFLOW__API__BASE_URL": self.api_url,
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__API__PORT": str(self.ports["api-server"]),
                "AIRFLOW__API__WORKERS": "1",
            }
        )
        env.update(self.extra_env)
        return env

    # --- up ------------------------------------------------------------------------------------------------

    def up(self) -> None:
        """Start every part (afresh), wait until the API answers and the DAG is parsed, write ``stack.json``."""
        if self.running():
            raise RuntimeError(
                f"a stack is already running in {self.root}: stop it first (sage-sync stack down)"
            )
        self._clean()
        steps = 6
        try:
            self.echo(f"1/{steps} PostgreSQL (metadata and state) in {self.postgres_dir}")
            self._postgres_dir = self._postgres_folder()
            server = start_server(self.postgres_dir, max_connections=120)
            self._postgres_user = server.user
            self.ports["postgres"] = server.port
            for database in ("airflow", "sage_sync_state"):
                server.create_database(database, encoding="UTF8")
            self.echo(f"2/{steps} Redis (the Celery broker)")
            self._start_redis()
            self.echo(f"3/{steps} the outer systems: a {self.scale} stand-in dossier and the SSM simulator")
            self.sync.settings = dict(self.settings)
            self.sync.settings.setdefault("approval_timeout_minutes", 10)
            self.sync.create_dossier(self.scale, self.seed)
            self.sync.start_simulator(detached=True)
            self.ports["simulator"] = self.sync.port
            self.pids["simulator"] = self.sync.process.pid if self.sync.process else 0
            self.ports["api-server"] = free_port()
            self._save()
            self.echo(f"4/{steps} Airflow metadata database and the {SSM_POOL} pool")
            self.airflow("db", "migrate")
            self.airflow(
                "pools", "set", SSM_POOL, str(POOL_SLOTS), "SSM API callers (sized to the rate limit)"
            )
            self.echo(f"5/{steps} Airflow components: {', '.join(components(self.workers))}")
            for name, args in components(self.workers).items():
                self._start_component(name, args)
            self._save()
            self.echo(f"6/{steps} waiting for the API server, the workers and the DAG")
            self._wait("the API server", lambda: self._get("/api/v2/monitor/health") is not None, 240)
            self._wait("the Celery workers", self._workers_ready, 240)
            self._wait(f"the DAG {DAG_ID}", self._dag_parsed, 240)
        except BaseException:
            self.echo("start-up failed: stopping what was started")
            self.down()
            raise

    def _clean(self) -> None:
        for name in ("airflow", "shared", "private", "postgres", "logs", "outer"):
            shutil.rmtree(self.root / name, ignore_errors=True)
        (self.root / "logs").mkdir(parents=True)
        self.sync = SyncStack(
            self.root / "outer", echo=self.echo, rate_limit=self.rate_limit, project=self.project
        )

    def _postgres_folder(self) -> Path:
        """Where the cluster goes: ``<root>/postgres``, or a temporary folder of its own.

        The second when the server's unprivileged user cannot reach ``root`` (a root-only parent folder, as
        pytest's temporary folders are).
        """
        import stat
        import tempfile

        folders = (self.root, *self.root.parents)
        if os.geteuid() != 0 or all(p.stat().st_mode & stat.S_IXOTH for p in folders):
            return self.root / "postgres"
        return Path(tempfile.mkdtemp(prefix="sage-sync-stack-pg-"))

    def _log(self, name: str) -> Path:
        return self.root / "logs" / f"{name}.log"

    def _start_redis(self) -> None:
        redis = shutil.which("redis-server")
        if redis is None:
            raise RuntimeError("redis-server is not installed (Debian: apt-get install redis-server)")
        self.ports["redis"] = port = free_port()
        with self._log("redis").open("wb") as out:
            process = subprocess.Popen(
                [redis, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.root,
                start_new_session=True,
            )
        self.pids["redis"] = process.pid
        self._processes["redis"] = process
        self._wait("Redis", lambda: self._redis_ping(port), 30)

    @staticmethod
    def _redis_ping(port: int) -> bool:
        import redis

        try:
            return bool(redis.Redis(host="127.0.0.1", port=port, socket_timeout=1).ping())
        except redis.RedisError:
            return False

    def _start_component(self, name: str, args: list[str]) -> None:
        cmd = [str(Path(sys.executable).with_name("airflow")), *args]
        if name.startswith("worker-"):
            # Both workers share this machine's log folder, which the API server reads directly; one log server
            # port per host, so the workers serve none (on separate hosts, drop --skip-serve-logs).
            cmd += ["--celery-hostname", f"{name}@%h", "--skip-serve-logs"]
        home = self.private_home(name)
        home.mkdir(parents=True, exist_ok=True)
        with self._log(name).open("wb") as out:
            process = subprocess.Popen(
                cmd,
                env=self.env(name),
                cwd=home,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.pids[name] = process.pid
        self._processes[name] = process

    def exited(self, name: str) -> bool:
        """True when the part ``name`` is no longer running."""
        process = self._processes.get(name)
        if process is not None:
            return process.poll() is not None
        return not _alive(self.pids[name])

    def start_worker(self, name: str) -> None:
        """(Re)start one worker (after :meth:`kill_worker`), with the same private folder."""
        self._start_component(name, list(WORKER_COMMAND))
        self._save()

    def kill_worker(self, name: str) -> list[int]:
        """``kill -9`` one worker with every process below it (its task processes too); the pids killed."""
        victims = kill_tree(self.pids[name])
        self.echo(f"killed {name} with SIGKILL: pids {victims}")
        return victims

    def _workers_ready(self) -> bool:
        return all(
            "ready." in self._log(name).read_text(errors="replace")
            for name in components(self.workers)
            if name.startswith("worker-")
        )

    def _dag_parsed(self) -> bool:
        return self._get(f"/api/v2/dags/{DAG_ID}") is not None

    def _get(self, path: str) -> Any:
        try:
            reply = requests.get(f"{self.api_url}{path}", headers=self.auth_headers(quiet=True), timeout=10)
        except requests.RequestException:
            return None
        return reply.json() if reply.ok else None

    def _wait(self, what: str, ready: Callable[[], bool], timeout: float) -> None:
        started = time.monotonic()
        while not ready():
            for name in components(self.workers):
                if name in self.pids and self.exited(name):
                    raise RuntimeError(f"{name} exited; its log:\n{self.log_tail(name)}")
            if time.monotonic() - started > timeout:
                raise RuntimeError(f"{what} not ready within {timeout:.0f} s")
            time.sleep(1)
        self.echo(f"   {what} ready after {time.monotonic() - started:.0f} s")

    def log_tail(self, name: str, chars: int = 4000) -> str:
        """The end of one part's log."""
        path = self._log(name)
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""

    def airflow(self, *args: str, timeout: float = 600) -> str:
        """One ``airflow`` CLI command against the stack; its output."""
        done = subprocess.run(
            [str(Path(sys.executable).with_name("airflow")), *args],
            env=self.env(),
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"airflow {' '.join(args)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
            )
        return done.stdout

    # --- login ---------------------------------------------------------------------------------------------

    def password(self) -> str | None:
        """The UI password of :data:`LOGIN_USER`, generated by the API server at its first start."""
        generated = self.airflow_home / "simple_auth_manager_passwords.json.generated"
        try:
            return str(json.loads(generated.read_text())[LOGIN_USER])
        except (OSError, ValueError, KeyError):
            return None

    def auth_headers(self, *, quiet: bool = False) -> dict[str, str]:
        """A bearer token of :data:`LOGIN_USER` (logged in through the API as a person would), as headers."""
        if self._token is None:
            password = self.password()
            if password is None:
                return {}
            try:
                reply = requests.post(
                    f"{self.api_url}/auth/token",
                    json={"username": LOGIN_USER, "password": password},
                    timeout=10,
                )
            except requests.RequestException:
                if quiet:
                    return {}
                raise
            if not reply.ok:
                if quiet:
                    return {}
                reply.raise_for_status()
            self._token = str(reply.json()["access_token"])
        return {"Authorization": f"Bearer {self._token}"}

    # --- state, status, down -------------------------------------------------------------------------------

    def _save(self) -> None:
        """``stack.json``: ports and pids (no secret), so ``status`` and ``down`` find what ``up`` started."""
        state = {
            "ports": self.ports,
            "pids": self.pids,
            "postgres_dir": str(self.postgres_dir),
            "postgres_user": self._postgres_user,
            "api_url": self.api_url if "api-server" in self.ports else None,
        }
        (self.root / STATE_FILE).write_text(json.dumps(state, indent=2), encoding="utf-8")

    def load(self) -> bool:
        """Read ``stack.json`` of an earlier ``up``; False when there is none."""
        path = self.root / STATE_FILE
        if not path.exists():
            return False
        state = json.loads(path.read_text(encoding="utf-8"))
        self.ports = {k: int(v) for k, v in state.get("ports", {}).items()}
        self.pids = {k: int(v) for k, v in state.get("pids", {}).items()}
        self._postgres_user = str(state.get("postgres_user") or "")
        self._postgres_dir = Path(state["postgres_dir"]) if state.get("postgres_dir") else None
        return True

    def running(self) -> bool:
        """True when a stack started in ``root`` still has a live part."""
        return self.load() and (
            any(_alive(pid) for pid in self.pids.values())
            or server_pid(self.postgres_dir / "data") is not None
        )

    def status(self) -> list[dict[str, Any]]:
        """One row per part: name, pid, port, running or not."""
        self.load()
        rows = [
            {"part": name, "pid": pid, "port": self.ports.get(name), "running": _alive(pid)}
            for name, pid in self.pids.items()
        ]
        pg = server_pid(self.postgres_dir / "data")
        rows.insert(
            0, {"part": "postgres", "pid": pg, "port": self.ports.get("postgres"), "running": pg is not None}
        )
        return rows

    def down(self) -> list[str]:
        """Stop the Airflow components, the simulator and Redis by pid, then PostgreSQL; the parts stopped."""
        stopped = [name for name in reversed(list(self.pids)) if not self.exited(name)]

        def reap() -> None:
            for process in self._processes.values():
                process.poll()

        stop_all([self.pids[name] for name in stopped], reap)
        self._processes.clear()
        if server_pid(self.postgres_dir / "data") is not None:
            stop_server(self.postgres_dir / "data")
            stopped.append("postgres")
        if self.postgres_dir != self.root / "postgres":
            shutil.rmtree(self.postgres_dir, ignore_errors=True)
        self.pids.clear()
        (self.root / STATE_FILE).unlink(missing_ok=True)
        return stopped
