"""The dossiers file (M1, M2): each entry checked on its own, a clear error naming the entry, one DAG per dossier."""

from __future__ import annotations

from pathlib import Path

import pytest

from sage_sync.dossiers import load_dossiers, parse_dossiers
from sage_sync.errors import ConfigurationError

REPO = Path(__file__).resolve().parents[2]

GOOD = """
default_dossier: lyon
defaults:
  admin_user_id: 1
dossiers:
  lyon:
    connection: sage50_lyon
    prefix: "LY-"
    branches: [2]
    code_template: "L{ssm_id:06d}"
  paris:
    connection: sage50_paris
    prefix: "PA-"
    branches: [1]
    media_folder: /srv/paris/media
"""


def _file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "dossiers.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_m1_each_dossier_gets_its_own_settings_data_folder_and_place(tmp_path: Path) -> None:
    found = parse_dossiers(_file(tmp_path, GOOD))
    assert found.names == ("lyon", "paris") and found.problems == {}
    lyon = found.settings("lyon", home=tmp_path)
    paris = found.settings("paris", home=tmp_path)
    assert lyon.home == tmp_path / "dossiers" / "lyon" and paris.home == tmp_path / "dossiers" / "paris"
    assert lyon.state_database_url != paris.state_database_url  # own state namespace
    assert lyon.staging("r1").root != paris.staging("r1").root  # own staging
    assert lyon.code_template == "L{ssm_id:06d}" and paris.media_folder == Path("/srv/paris/media")
    assert lyon.branch_id == 2 and lyon.admin_user_id == 1  # the defaults apply to every entry
    assert [d.dag_id for d in found] == ["sage50_ssm_sync__lyon", "sage50_ssm_sync__paris"]
    # M2: one codec per dossier; the same account code gives two extIds, each read back by its own dossier only.
    lyon_codec, paris_codec = lyon.ownership().codec, paris.ownership().codec
    assert lyon_codec.encode("C0001") == "LY-C0001" and paris_codec.encode("C0001") == "PA-C0001"
    assert lyon_codec.decode("PA-C0001") is None and paris_codec.decode("PA-C0001") == "C0001"
    # C4/M2: a new SSM company goes to the dossier of its branch, or the default one; never to two.
    assert lyon.ownership().owns_branch(2) and not paris.ownership().owns_branch(2)
    assert lyon.ownership().owns_branch(7) and not paris.ownership().owns_branch(7)  # lyon is the default


@pytest.mark.parametrize(
    ("text", "bad", "message"),
    [
        (GOOD.replace('"PA-"', '"LY-"'), {"lyon", "paris"}, "prefix 'LY-' is also used by dossier"),
        (GOOD.replace('"PA-"', '"LY-X"'), {"lyon", "paris"}, "could not be told apart"),
        (GOOD.replace("connection: sage50_paris", "prefix_typo: 1"), {"paris"}, "`connection` must name"),
        (GOOD.replace("branches: [1]", "branches: [2]"), {"lyon", "paris"}, "branch 2 is also listed"),
        (GOOD.replace("media_folder", "media_fodler"), {"paris"}, "media_fodler"),
        (GOOD.replace('"L{ssm_id:06d}"', '"{oops}"'), {"lyon"}, "code_template"),
        (
            GOOD.replace("connection: sage50_paris", "connection: sage50_lyon"),
            {"lyon", "paris"},
            "connection",
        ),
    ],
)
def test_m2_a_bad_entry_is_an_error_naming_it_and_the_others_are_unaffected(
    tmp_path: Path, text: str, bad: set[str], message: str
) -> None:
    text += '  nice:\n    connection: sage50_nice\n    prefix: "NI-"\n    branches: [3]\n'
    found = parse_dossiers(_file(tmp_path, text))
    assert set(found.problems) == bad
    for name in bad:
        assert any(message in p for p in found.problems[name]), found.problems[name]
        with pytest.raises(ConfigurationError) as err:
            found.settings(name, home=tmp_path)  # nothing may be synced for it
        assert f"dossier {name!r} is not valid" in str(err.value) and message in str(err.value)
    assert found.settings("nice", home=tmp_path).dossier is not None  # the others sync as usual


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("dossiers: [lyon, paris]\n", "`dossiers:` must map each dossier's name"),
        ("dossiers:\n  lyon: {connection: a}\n   paris: x\n", "not valid YAML"),
        ("dossiers:\n  lyon: {connection: a}\n  lyon: {connection: b}\n", "'lyon' is written twice"),
        ("dossier:\n  lyon: {connection: a}\n", "unknown key(s) dossier"),
        ("default_dossier: rome\ndossiers:\n  lyon: {connection: a}\n", "default_dossier 'rome'"),
    ],
)
def test_m1_a_malformed_file_is_one_clear_error_naming_the_file(
    tmp_path: Path, text: str, message: str
) -> None:
    path = _file(tmp_path, text)
    with pytest.raises(ConfigurationError) as err:
        parse_dossiers(path)
    assert str(path) in str(err.value) and message in str(err.value)


def test_m1_no_dossiers_file_means_one_dossier(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAGE_SYNC_HOME", str(tmp_path))
    monkeypatch.delenv("SAGE_SYNC_DOSSIERS", raising=False)
    assert load_dossiers() is None
    with pytest.raises(ConfigurationError, match="does not exist"):
        load_dossiers(tmp_path / "missing.yaml")


def _dag_ids(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dossiers: Path | None) -> dict[str, object]:
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "airflow"))
    monkeypatch.setenv("SAGE_SYNC_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("SAGE_SYNC_DEADLINE_MINUTES", raising=False)
    if dossiers is None:
        monkeypatch.delenv("SAGE_SYNC_DOSSIERS", raising=False)
    else:
        monkeypatch.setenv("SAGE_SYNC_DOSSIERS", str(dossiers))
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPO / "dags"))
    assert bag.import_errors == {}, bag.import_errors
    return dict(bag.dags)


def test_m1_one_dag_per_enabled_dossier_sharing_the_pool(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = (
        GOOD.replace('"PA-"', '"LY-"')
        + "  rome:\n    connection: sage50_rome\n    prefix: R-\n    enabled: false\n"
    )
    dags = _dag_ids(tmp_path, monkeypatch, _file(tmp_path, text))
    # paris's entry is bad, yet it gets its DAG (whose preflight fails); rome is switched off: no DAG (M3).
    assert set(dags) == {"sage50_ssm_sync__lyon", "sage50_ssm_sync__paris"}
    lyon = dags["sage50_ssm_sync__lyon"]
    extract = lyon.task_dict["accounts.extract"]  # type: ignore[attr-defined]
    assert extract.dossier == "lyon" and extract.sage50_conn_id == "sage50_lyon" and extract.pool == "ssm_api"
    assert dags["sage50_ssm_sync__paris"].task_dict["preflight"].sage50_conn_id == "sage50_paris"  # type: ignore[attr-defined]
    # M1: the dossiers share the key's rate; in it the loads others wait for lead, the others yield to them.
    loads = {
        e: lyon.task_dict[f"{e}.load"].api_precedence
        for e in ("accounts", "products", "contacts", "invoices")
    }  # type: ignore[attr-defined]
    assert loads == {"accounts": "lead", "products": "lead", "contacts": "yield", "invoices": "yield"}


def test_m1_a_load_yielding_in_the_rate_limit_draws_from_the_keys_shared_bucket(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    from sage_sync.operators.sides import ssm_side

    connection = {
        "conn_type": "http",
        "host": "http://127.0.0.1:9/api/v4",
        "login": "PUBLIC",
        "password": "PRIVATE",
        "extra": {"requests_per_second": 13, "rate_limit_folder": str(tmp_path / "rates")},
    }
    monkeypatch.setenv("AIRFLOW_CONN_SSM_YIELDING", json.dumps(connection))
    side = ssm_side("ssm_yielding", None, "yield")
    bucket = side.hook.rate_limiter  # type: ignore[attr-defined]
    assert (
        bucket.precedence == "yield"
        and bucket.shared is not None
        and bucket.shared.parent == tmp_path / "rates"
    )


def test_m1_without_dossiers_file_the_single_dag_is_as_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dags = _dag_ids(tmp_path, monkeypatch, None)
    assert set(dags) == {"sage50_ssm_sync"}
    task = dags["sage50_ssm_sync"].task_dict["accounts.extract"]  # type: ignore[attr-defined]
    assert task.dossier is None and task.sage50_conn_id == "sage50_default"
