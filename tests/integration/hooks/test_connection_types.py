"""The two connection types in Airflow's Connections form (provider entry point) and its *Test* button.

Airflow finds the project's provider info through the installed package, shows the ``sage50`` and ``sage_ssm``
forms with their labels, placeholders and extra fields, and its *Test* button (``Connection.test_connection``, what
the api-server runs) resolves the connection type to our hook and runs its ``test_connection`` against a real
ODBC dossier and the real SSM simulator.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from airflow.models.connection import Connection
from airflow.providers_manager import ProvidersManager

from tests.support.simulator import SimulatorHandle, ssm_simulator  # noqa: F401


def test_both_connection_types_are_registered_with_their_form() -> None:
    pm = ProvidersManager()
    hooks = pm.hooks
    assert hooks["sage50"].hook_class_name == "sage_sync.hooks.sage50.Sage50Hook"
    assert hooks["sage_ssm"].hook_class_name == "sage_sync.hooks.ssm.SalesManagementHook"
    assert hooks["sage50"].connection_testable and hooks["sage_ssm"].connection_testable
    ssm_form = pm.field_behaviours["sage_ssm"]
    assert ssm_form["hidden_fields"] == ["schema", "port"]
    assert ssm_form["relabeling"] == {
        "host": "API base URL",
        "login": "Public API key",
        "password": "Private API key",
    }
    assert pm.field_behaviours["sage50"]["relabeling"]["schema"].startswith("Dossier")
    widgets = pm.connection_form_widgets
    rate = widgets["extra__sage_ssm__requests_per_second"]
    assert (rate.field_name, rate.field["schema"]["title"]) == ("requests_per_second", "Requests per second")
    assert widgets["extra__sage50__driver"].field["value"] == "SQLite3"
    assert not rate.is_sensitive  # the keys are the password field, never an extra


def _tested(monkeypatch: pytest.MonkeyPatch, conn: dict[str, object]) -> tuple[bool, str]:
    """What the Test button does: the form's values as a temporary connection, then its hook's test."""
    monkeypatch.setenv("AIRFLOW_CONN_FORM_TEST", json.dumps(conn))
    connection = Connection(conn_id="form_test", **{k: v for k, v in conn.items() if k != "extra"})
    connection.set_extra(json.dumps(conn.get("extra") or {}))
    status, message = connection.test_connection()
    return bool(status), str(message)


def test_the_test_button_runs_our_hooks(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    ssm_simulator: SimulatorHandle,  # noqa: F811  # the shared fixture, imported above
) -> None:
    # As every deployment sets it (README, Configuration).
    monkeypatch.setenv("AIRFLOW__PROVIDERS_ODBC__ALLOW_DRIVER_IN_EXTRA", "True")
    dossier = tmp_path / "dossier.db"
    engine = sa.create_engine(f"sqlite:///{dossier}")
    with engine.begin() as db:
        db.execute(sa.text("CREATE TABLE F_COMPTET (CT_Num VARCHAR(17))"))
    engine.dispose()
    ok, message = _tested(
        monkeypatch, {"conn_type": "sage50", "schema": str(dossier), "extra": {"driver": "SQLite3"}}
    )
    assert ok, message
    ok, message = _tested(
        monkeypatch, {"conn_type": "sage50", "schema": str(dossier), "extra": {"driver": "No Such Driver"}}
    )
    assert not ok and "No Such Driver" in message

    key = ssm_simulator.keys["integration"]
    good = {
        "conn_type": "sage_ssm",
        "host": ssm_simulator.base_url,
        "login": key["public_key"],
        "password": key["private_key"],
        "extra": {"requests_per_second": 0},
    }
    ok, message = _tested(monkeypatch, good)
    assert ok, message
    ok, message = _tested(monkeypatch, {**good, "password": "not-the-key"})
    assert not ok
    assert (
        key["private_key"] not in message and "not-the-key" not in message
    )  # no secret in the form's answer
