"""The files users run the product with: docker-compose.yml, the CLI help."""

from __future__ import annotations

from pathlib import Path

import yaml
from typer.testing import CliRunner

from sage_sync.cli import app

ROOT = Path(__file__).resolve().parents[2]


def test_docker_compose_declares_the_celery_stack() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    services = compose["services"]
    for name in (
        "postgres",
        "redis",
        "airflow-apiserver",
        "airflow-scheduler",
        "airflow-worker",
        "airflow-init",
    ):
        assert name in services, name
    env = services["airflow-worker"]["environment"]
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["AIRFLOW__CORE__DAGS_FOLDER"].endswith("/dags")
    assert env["AIRFLOW__PROVIDERS_ODBC__ALLOW_DRIVER_IN_EXTRA"] == "True"
    text = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    assert 'password":"<private key>' in text  # placeholders only, never a real secret


def test_every_command_group_has_help() -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for group in ("standin", "simulator", "bench"):
        assert group in result.output
        sub = runner.invoke(app, [group, "--help"])
        assert sub.exit_code == 0, sub.output
