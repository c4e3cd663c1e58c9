"""The files users run the product with: docker-compose.yml, the CLI help."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from sage_sync.cli import app

ROOT = Path(__file__).resolve().parents[2]


def test_every_command_group_has_help() -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for group in ("standin", "simulator", "bench", "stack"):
        assert group in result.output
        sub = runner.invoke(app, [group, "--help"])
        assert sub.exit_code == 0, sub.output
