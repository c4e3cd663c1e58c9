"""Production topology: docker-compose.yml and the native stack (``sage-sync stack up``) read the same settings.

issue: production topology — compose and the native stack read the same settings. Both take what is the same on
every host from ``stack.env`` and add only the addresses and folders of their own hosts (``LOCATION_KEYS``), so a
setting changed for one cannot silently differ in the other. Nothing here starts a process: the compose file is
read with PyYAML and the native stack's environments are computed with made-up ports.
"""

from __future__ import annotations

import inspect
import json
import re
import shlex
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from sage_sync.settings import SSM_POOL
from sage_sync.simulators.ssm.seed import derive_keys
from sage_sync_tools import stack_cli
from sage_sync_tools.celery_stack import (
    ENV_FILE,
    LOCATION_KEYS,
    SERVICES,
    WORKER_COMMAND,
    CeleryStack,
    components,
    read_env_file,
)
from sage_sync_tools.stack import POOL_SLOTS

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_TEXT = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
COMPOSE: dict[str, Any] = yaml.safe_load(COMPOSE_TEXT)
SERVICES_OF_COMPOSE: dict[str, dict[str, Any]] = COMPOSE["services"]
STACK_ENV = read_env_file(ROOT / ENV_FILE)

#: The services run from the project's Airflow image with the common settings (x-airflow-common).
AIRFLOW_SERVICES = sorted(name for name in SERVICES_OF_COMPOSE if name.startswith("airflow-"))
#: Services that do their job and exit; every other service runs until stopped.
ONE_SHOT = {"airflow-init", "standin"}
#: Set on a service for the container itself, not for Airflow or the sync (the image's init: signal only the
#: Celery worker's main process, for a warm shutdown). Nothing else may be added to LOCATION_KEYS.
CONTAINER_KEYS = {"DUMB_INIT_SETSID"}
#: What Airflow's healthcheck must ask for each component.
JOB_TYPES = {"scheduler": "SchedulerJob", "dag-processor": "DagProcessorJob", "triggerer": "TriggererJob"}


def _words(command: str | list[str]) -> list[str]:
    return shlex.split(command) if isinstance(command, str) else [str(word) for word in command]


def _airflow_args(command: str | list[str]) -> list[str]:
    """The ``airflow`` sub-command a service runs (the image's entrypoint puts ``airflow`` before it), no options."""
    words = _words(command)
    return words[: next((i for i, word in enumerate(words) if word.startswith("-")), len(words))]


def _env_files(service: dict[str, Any]) -> list[str]:
    return [entry if isinstance(entry, str) else entry["path"] for entry in service.get("env_file", [])]


def _mounts(service: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(source, target, mode) of each volume in the short syntax ``source:target[:mode]``."""
    mounts = []
    for volume in service.get("volumes", []):
        source, target, *mode = str(volume).split(":")
        mounts.append((source, target, mode[0] if mode else "rw"))
    return mounts


def _inside(path: str, folder: str) -> bool:
    return (
        PurePosixPath(path) == PurePosixPath(folder) or PurePosixPath(folder) in PurePosixPath(path).parents
    )


def _option(words: list[str], name: str) -> str:
    assert name in words, f"{name} is missing from {' '.join(words)}"
    return words[words.index(name) + 1]


def _header_connection(name: str, host_part: str) -> dict[str, Any]:
    """The connection ``name`` of the compose header's example .env whose host contains ``host_part``."""
    found = [
        json.loads(match)
        for match in re.findall(rf"^#\s+{name}='(.+)'$", COMPOSE_TEXT, flags=re.MULTILINE)
        if host_part in match
    ]
    assert len(found) == 1, (
        f"the compose header should give one {name} pointing at {host_part}, found {found}"
    )
    return found[0]


@pytest.fixture
def native(tmp_path: Path) -> CeleryStack:
    """The native stack with made-up ports and demo keys: enough to compute each component's environment."""
    stack = CeleryStack(tmp_path / "stack", echo=lambda _: None, project=ROOT)
    stack.ports = {"postgres": 1, "redis": 2, "api-server": 3, "simulator": 4}
    stack.sync.keys = {"integration": {"public_key": "p", "private_key": "k"}}
    stack.sync.port = 4
    return stack


@pytest.fixture
def native_envs(native: CeleryStack) -> dict[str, dict[str, str]]:
    return {name: native.env(name) for name in components(native.workers)}


def test_every_airflow_service_reads_stack_env_and_sets_none_of_it_again() -> None:
    """(a) Every Airflow service reads stack.env (then an optional .env); none sets one of its keys itself."""
    common = COMPOSE["x-airflow-common"]
    assert _env_files(common) == [ENV_FILE, ".env"], (
        f"x-airflow-common env_file drifted: {common['env_file']}"
    )
    optional = [entry for entry in common["env_file"] if isinstance(entry, dict)]
    assert optional == [{"path": ".env", "required": False}], f".env must stay optional: {optional}"
    assert len(AIRFLOW_SERVICES) >= 6, f"Airflow services missing from docker-compose.yml: {AIRFLOW_SERVICES}"
    for name in AIRFLOW_SERVICES:
        service = SERVICES_OF_COMPOSE[name]
        assert ENV_FILE in _env_files(service), f"{name} does not read {ENV_FILE}: {_env_files(service)}"
    for name, service in SERVICES_OF_COMPOSE.items():
        again = sorted(set(service.get("environment") or {}) & set(STACK_ENV))
        assert not again, (
            f"{name} sets {again} again: they belong to {ENV_FILE} only, or the two stacks drift"
        )


def test_each_side_adds_only_the_location_keys(native_envs: dict[str, dict[str, str]]) -> None:
    """(b) Compose sets exactly LOCATION_KEYS; the native stack sets every one of them; both run CeleryExecutor."""
    assert not set(LOCATION_KEYS) & set(STACK_ENV), (
        f"{ENV_FILE} holds a per-host key: {set(LOCATION_KEYS) & set(STACK_ENV)}"
    )
    common = COMPOSE["x-airflow-common"]["environment"]
    assert set(common) == set(LOCATION_KEYS), (
        f"x-airflow-common environment drifted from LOCATION_KEYS: extra {sorted(set(common) - set(LOCATION_KEYS))}, "
        f"missing {sorted(set(LOCATION_KEYS) - set(common))}"
    )
    for name in AIRFLOW_SERVICES:
        environment = SERVICES_OF_COMPOSE[name]["environment"]
        extra = set(environment) - set(LOCATION_KEYS) - CONTAINER_KEYS
        assert not extra, (
            f"{name} adds {sorted(extra)}: a shared setting goes in {ENV_FILE}, a secret in .env"
        )
        assert set(LOCATION_KEYS) <= set(environment), (
            f"{name} lacks {sorted(set(LOCATION_KEYS) - set(environment))}"
        )
        assert environment == {**common, **{k: v for k, v in environment.items() if k in CONTAINER_KEYS}}, (
            f"{name} gives a location another value than x-airflow-common"
        )
    secret = common["AIRFLOW__API_AUTH__JWT_SECRET"]
    assert secret.startswith("${AIRFLOW_JWT_SECRET:?"), (
        f"the JWT secret must come from .env and be required: {secret}"
    )
    assert STACK_ENV["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", f"{ENV_FILE} executor drifted"
    for component, env in native_envs.items():
        missing = [key for key in LOCATION_KEYS if not env.get(key)]
        assert not missing, f"the native {component} does not set {missing}"
        changed = {key: env.get(key) for key, value in STACK_ENV.items() if env.get(key) != value}
        assert not changed, f"the native {component} does not take these from {ENV_FILE}: {changed}"
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", f"the native {component} is not on Celery"


def test_broker_is_redis_and_databases_are_postgresql_on_both_sides(native: CeleryStack) -> None:
    """(c) Redis broker; PostgreSQL (psycopg2) metadata database, result backend and state store, on both sides."""
    sides = {"compose": COMPOSE["x-airflow-common"]["environment"], "native": native.env("worker-1")}
    for side, env in sides.items():
        expected = {
            "AIRFLOW__CELERY__BROKER_URL": ("redis", "/0"),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": ("postgresql+psycopg2", "/airflow"),
            "AIRFLOW__CELERY__RESULT_BACKEND": ("db+postgresql+psycopg2", "/airflow"),
            "SAGE_SYNC_STATE_URL": ("postgresql+psycopg2", "/sage_sync_state"),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": ("http", "/execution/"),
        }
        for key, (scheme, path) in expected.items():
            url = urlsplit(env[key])
            assert (url.scheme, url.path) == (scheme, path), f"{side} {key} drifted: {env[key]}"
    compose = sides["compose"]
    for key, service in (
        ("AIRFLOW__CELERY__BROKER_URL", "redis"),
        ("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "postgres"),
        ("AIRFLOW__CELERY__RESULT_BACKEND", "postgres"),
        ("SAGE_SYNC_STATE_URL", "postgres"),
        ("AIRFLOW__CORE__EXECUTION_API_SERVER_URL", "airflow-apiserver"),
    ):
        host = urlsplit(compose[key]).hostname
        assert host == service and service in SERVICES_OF_COMPOSE, (
            f"compose {key} points at {host}, not {service}"
        )


def test_compose_runs_the_components_of_the_native_stack(native: CeleryStack) -> None:
    """(d) The same Airflow commands on both sides, and as many workers: 2 replicas, 2 native workers by default."""
    commands = {
        tuple(_airflow_args(SERVICES_OF_COMPOSE[name]["command"])): name
        for name in AIRFLOW_SERVICES
        if name not in ONE_SHOT
    }
    native_commands = {tuple(args) for args in SERVICES.values()} | {tuple(WORKER_COMMAND)}
    assert set(commands) == native_commands, (
        f"Airflow components drifted: compose only {sorted(set(commands) - native_commands)}, "
        f"native only {sorted(native_commands - set(commands))}"
    )
    worker = SERVICES_OF_COMPOSE[commands[tuple(WORKER_COMMAND)]]
    replicas = worker.get("deploy", {}).get("replicas", 1)
    default_workers = inspect.signature(stack_cli.up).parameters["workers"].default
    assert replicas == native.workers == default_workers == 2, (
        f"worker count drifted: compose {replicas} replicas, CeleryStack {native.workers}, stack up {default_workers}"
    )
    assert "container_name" not in worker, "a replicated worker cannot have a fixed container name"


def test_every_long_running_service_has_a_healthcheck() -> None:
    """(e) Every service but the one-shots restarts and has a healthcheck asking the right thing."""
    for name, service in SERVICES_OF_COMPOSE.items():
        if name in ONE_SHOT:
            assert service.get("restart") == "no", f"the one-shot {name} must not restart"
            continue
        assert service.get("restart") == "always", f"{name} does not restart"
        assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
    for name in AIRFLOW_SERVICES:
        service = SERVICES_OF_COMPOSE[name]
        args = _airflow_args(service["command"])
        test = " ".join(_words(service.get("healthcheck", {}).get("test", [])))
        if args == ["api-server"]:
            assert "/api/v2/monitor/health" in test, f"{name} healthcheck: {test}"
        elif args == WORKER_COMMAND:
            assert "inspect ping" in test and "celery_executor.app" in test, f"{name} healthcheck: {test}"
        elif args and args[0] in JOB_TYPES:
            assert f"jobs check --job-type {JOB_TYPES[args[0]]} --local" in test, (
                f"{name} healthcheck: {test}"
            )
        for needed, condition in service.get("depends_on", {}).items():
            if condition["condition"] == "service_healthy":
                assert "healthcheck" in SERVICES_OF_COMPOSE[needed], (
                    f"{name} waits for {needed}, which has none"
                )


def test_one_shared_location_and_private_homes(native_envs: dict[str, dict[str, str]]) -> None:
    """(f) The shared volume is at SAGE_SYNC_SHARED_URL in every Airflow service; each SAGE_SYNC_HOME is private."""
    common = COMPOSE["x-airflow-common"]["environment"]
    url = urlsplit(common["SAGE_SYNC_SHARED_URL"])
    assert url.scheme == "file", f"the compose shared location is not a mounted folder: {url.geturl()}"
    home = common["SAGE_SYNC_HOME"]
    assert not _inside(home, url.path) and not _inside(url.path, home), (
        "SAGE_SYNC_HOME and the shared folder overlap"
    )
    shared_volumes = set()
    for name in AIRFLOW_SERVICES:
        mounts = _mounts(SERVICES_OF_COMPOSE[name])
        at_shared = [(source, mode) for source, target, mode in mounts if target == url.path]
        assert len(at_shared) == 1, f"{name} does not mount the shared volume at {url.path}: {mounts}"
        assert at_shared[0][1] == "rw", f"{name} mounts the shared location read-only"
        shared_volumes.add(at_shared[0][0])
        on_home = [target for _, target, _ in mounts if _inside(home, target) or _inside(target, home)]
        assert not on_home, f"{name} puts SAGE_SYNC_HOME {home} on a volume: {on_home}"
    assert len(shared_volumes) == 1, f"the Airflow services mount different shared volumes: {shared_volumes}"
    assert shared_volumes <= set(COMPOSE["volumes"]), f"{shared_volumes} is not a named volume"

    shared_urls = {env["SAGE_SYNC_SHARED_URL"] for env in native_envs.values()}
    assert len(shared_urls) == 1, f"native components see different shared locations: {shared_urls}"
    shared = urlsplit(shared_urls.pop()).path
    homes = {component: env["SAGE_SYNC_HOME"] for component, env in native_envs.items()}
    assert len(set(homes.values())) == len(homes), f"native components share a SAGE_SYNC_HOME: {homes}"
    for component, folder in homes.items():
        assert not _inside(folder, shared) and not _inside(shared, folder), (
            f"the native {component}'s private folder {folder} overlaps the shared folder {shared}"
        )


def test_demo_profile_holds_the_simulator_and_the_standin() -> None:
    """(g) `--profile demo` adds the SSM simulator and the stand-in dossier; the header's connections reach them."""
    demo = {name for name, service in SERVICES_OF_COMPOSE.items() if "profiles" in service}
    assert demo == {"ssm-simulator", "standin"}, f"profiled services drifted: {demo}"
    for name in demo:
        assert SERVICES_OF_COMPOSE[name]["profiles"] == ["demo"], f"{name} is not in the demo profile"

    simulator = SERVICES_OF_COMPOSE["ssm-simulator"]
    words = [*_words(simulator["entrypoint"]), *_words(simulator["command"])]
    assert words[:3] == ["sage-sync", "simulator", "serve"] and "--admin" in words, f"simulator: {words}"
    assert _option(words, "--host") == "0.0.0.0", "the simulator must listen beyond its container"
    port, db = _option(words, "--port"), _option(words, "--db")
    assert any(_inside(db, target) for _, target, _ in _mounts(simulator)), (
        f"the tenant {db} is not on a volume"
    )
    ssm = _header_connection("AIRFLOW_CONN_SSM_DEFAULT", "ssm-simulator")
    assert ssm["host"] == f"http://ssm-simulator:{port}/api/v4", (
        f"the demo SSM connection drifted: {ssm['host']}"
    )
    integration, _ = derive_keys(int(_option(words, "--seed")))
    assert (ssm["login"], ssm["password"]) == (integration.public_key, integration.private_key), (
        "the demo SSM connection's keys are not the simulator's for its --seed"
    )

    standin = " ".join(
        [*_words(SERVICES_OF_COMPOSE["standin"]["entrypoint"]), *SERVICES_OF_COMPOSE["standin"]["command"]]
    )
    dossier = _option(shlex.split(standin.split("||", 1)[1]), "--path")
    assert "standin create --engine sqlite" in standin, f"standin: {standin}"
    sage = _header_connection("AIRFLOW_CONN_SAGE50_DEFAULT", dossier)
    assert sage["schema"] == dossier and sage["extra"]["driver"] == "SQLite3", (
        f"the demo Sage connection: {sage}"
    )
    standin_volume = [
        source for source, target, _ in _mounts(SERVICES_OF_COMPOSE["standin"]) if _inside(dossier, target)
    ]
    worker = [
        (s, mode) for s, t, mode in _mounts(SERVICES_OF_COMPOSE["airflow-worker"]) if _inside(dossier, t)
    ]
    assert len(standin_volume) == 1 and worker == [(standin_volume[0], "rw")], (
        f"the workers do not mount the stand-in's volume {standin_volume} read-write: {worker}"
    )
    assert 'password":"<private key>' in COMPOSE_TEXT, (
        "the production example must keep placeholders, not keys"
    )


def test_airflow_init_creates_the_pool_and_the_state_database() -> None:
    """(h) airflow-init migrates, creates the ssm_api pool (as natively) and the state database when missing."""
    script = " ".join(_words(SERVICES_OF_COMPOSE["airflow-init"]["command"]))
    assert "airflow db migrate" in script, "airflow-init does not migrate the metadata database"
    assert f"airflow pools set {SSM_POOL} {POOL_SLOTS} " in script, (
        f"airflow-init does not create the {SSM_POOL} pool with the native stack's {POOL_SLOTS} slots"
    )
    assert 'os.environ["SAGE_SYNC_STATE_URL"]' in script and "CREATE DATABASE" in script, (
        "airflow-init does not create the database of SAGE_SYNC_STATE_URL"
    )
    assert "pg_database WHERE datname" in script, (
        "airflow-init must create the state database only when missing"
    )


def test_the_image_creates_every_folder_the_stack_mounts_or_writes() -> None:
    """A new named volume takes the owner of the folder it covers: the image makes each one for its user."""
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    made = re.search(r"mkdir -p ([^\\&\n]+)", dockerfile)
    assert made, "the Dockerfile makes no folder for the volumes"
    folders = set(made.group(1).split())
    wanted = {COMPOSE["x-airflow-common"]["environment"]["SAGE_SYNC_HOME"]}
    for service in SERVICES_OF_COMPOSE.values():
        if service.get("image") == COMPOSE["x-sage-sync-image"]["image"]:
            wanted |= {target for _, target, _ in _mounts(service) if target.startswith("/opt/sage-sync/")}
    assert wanted <= folders, f"the Dockerfile does not make {sorted(wanted - folders)}"
    assert "chown -R airflow:root /opt/sage-sync" in dockerfile, "the image's folders must belong to airflow"
    for package in ("unixodbc", "libsqliteodbc", "odbc-postgresql"):
        assert package in dockerfile, f"the image lacks the ODBC package {package}"
