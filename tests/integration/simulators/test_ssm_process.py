"""The SSM simulator as a process: rate limit, persistence across restarts, admin switch, CLI output."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import requests

from tests.support.simulator import start_simulator


def _login(base_url: str, key: dict[str, str]) -> requests.Response:
    return requests.post(
        f"{base_url}/login", json={"username": key["public_key"], "password": key["private_key"]}, timeout=30
    )


def test_rate_limit_answers_429_with_retry_after(tmp_path: Path) -> None:
    """Contract "Transport": a token bucket per API key; over the limit → 429 with Retry-After seconds."""
    with start_simulator(tmp_path, rate_limit=2) as sim:
        token = _login(sim.base_url, sim.keys["integration"]).json()["token"]
        headers = {"X-Session-Key": token}
        statuses = []
        limited = None
        for _ in range(8):
            response = requests.get(f"{sim.base_url}/users", headers=headers, timeout=30)
            statuses.append(response.status_code)
            if response.status_code == 429:
                limited = response
        assert 200 in statuses and 429 in statuses
        assert limited is not None
        assert int(limited.headers["Retry-After"]) >= 1
        body = limited.json()
        assert body["statusCode"] == 429 and "rate limit" in body["message"]
        # The other key has its own bucket.
        other = _login(sim.base_url, sim.keys["user"])
        assert other.status_code == 200
        assert sim.stats()["served_429"] == statuses.count(429)


def test_tenant_persists_across_restart_with_the_same_db(tmp_path: Path) -> None:
    db = tmp_path / "tenant.sqlite"
    with start_simulator(tmp_path / "one", db_path=db) as sim:
        token = _login(sim.base_url, sim.keys["integration"]).json()["token"]
        headers = {"X-Session-Key": token}
        created = requests.post(
            f"{sim.base_url}/accounts",
            json={"name": "Persistante SA", "branchId": 1, "salesRepId1": 1, "extId": "C100", "Z_Siret": "1"},
            headers=headers,
            timeout=30,
        ).json()
        requests.delete(f"{sim.base_url}/accounts/{created['id']}", headers=headers, timeout=30)
        fam = requests.post(
            f"{sim.base_url}/productFamilies",
            json={"descriptionFR": "Outils", "descriptionEN": "Tools"},
            headers=headers,
            timeout=30,
        ).json()
        pid = requests.post(
            f"{sim.base_url}/products", json={"model": "Marteau"}, headers=headers, timeout=30
        ).json()["id"]
        doc = requests.post(
            f"{sim.base_url}/products/{pid}/documents",
            json={"name": "m.png", "isCarrousel": True, "folderId": "-1"},
            headers=headers,
            timeout=30,
        ).json()
        requests.put(doc["locator"], data=b"png bytes", timeout=30)
        before = requests.get(f"{sim.base_url}/accounts/{created['id']}", headers=headers, timeout=30).json()
        keys = sim.keys
    with start_simulator(tmp_path / "two", db_path=db) as again:
        assert again.keys == keys  # same seed, same keys
        headers = {"X-Session-Key": _login(again.base_url, again.keys["integration"]).json()["token"]}
        after = requests.get(f"{again.base_url}/accounts/{created['id']}", headers=headers, timeout=30).json()
        assert after == before and after["deleted"] is True
        assert (
            requests.get(f"{again.base_url}/productFamilies/{fam['id']}", headers=headers, timeout=30).json()[
                "descriptionFR"
            ]
            == "Outils"
        )
        docs = requests.get(f"{again.base_url}/products/{pid}/documents", headers=headers, timeout=30).json()
        assert [d["size"] for d in docs] == [len(b"png bytes")]
        nxt = requests.post(
            f"{again.base_url}/accounts",
            json={"name": "B", "branchId": 1, "salesRepId1": 1},
            headers=headers,
            timeout=30,
        )
        assert nxt.json()["id"] == created["id"] + 1
    # Another seed on the same tenant file is refused with a clear message, and the file is left as it was.
    refused = subprocess.run(
        [
            sys.executable,
            "-m",
            "sage_sync.simulators.ssm",
            "serve",
            "--port",
            "1",
            "--db",
            str(db),
            "--seed",
            "9",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 2, refused.stderr
    assert f"{db} was created with --seed 0, not --seed 9" in refused.stderr
    assert "Traceback" not in refused.stderr and refused.stdout == ""
    with start_simulator(tmp_path / "three", db_path=db) as third:
        assert third.keys == keys


def test_admin_endpoints_are_404_unless_enabled(tmp_path: Path) -> None:
    with start_simulator(tmp_path, admin=False, seed=5) as sim:
        for method, path in (("GET", "keys"), ("POST", "reset"), ("GET", "stats"), ("POST", "faults")):
            response = requests.request(method, f"{sim.root_url}/__sim/{path}", json={}, timeout=30)
            assert response.status_code == 404
            assert response.json()["statusCode"] == 404
        # Keys are still derived from the seed, so a client that knows the seed can log in.
        cli = subprocess.run(
            [sys.executable, "-m", "sage_sync.simulators.ssm", "keys", "--seed", "5"],
            capture_output=True,
            text=True,
            check=True,
        )
        public, private = (part.split("=")[1] for part in cli.stdout.splitlines()[0].split()[1:3])
        assert _login(sim.base_url, {"public_key": public, "private_key": private}).status_code == 200


def test_serve_help_describes_every_option() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "sage_sync.simulators.ssm", "serve", "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for option in ("--host", "--port", "--db", "--admin", "--rate-limit", "--token-ttl", "--seed"):
        assert option in out


def test_startup_banner_prints_base_url_keys_and_users(tmp_path: Path) -> None:
    with start_simulator(tmp_path, seed=1) as sim:
        out = (tmp_path / f"ssm-simulator-{sim.root_url.rsplit(':', 1)[1]}.out").read_text()
        assert sim.base_url in out
        assert sim.keys["integration"]["public_key"] in out
        for user in sim.keys["users"]:
            assert user["email"] in out
        # Exactly one admin: the user admin_user_id names (the integration key's user), flagged once in the banner.
        admins = [user["id"] for user in sim.keys["users"] if user["isAdmin"]]
        assert admins == [sim.keys["admin_user_id"]] == [sim.keys["integration"]["user_id"]]
        assert out.count("(admin)") == 1
