"""A real ``airflow api-server`` with the simple auth manager and named users, for the UI and its tests.

:class:`ApiServer` starts the API server (REST API, UI, the project's plugin pages) of a :class:`SyncStack`'s
Airflow home on a free 127.0.0.1 port, with users and roles given as data (``{"alice": "viewer"}``; an empty role
is a user the auth manager allows nothing), their passwords in a file only this process and the server read,
and a JWT secret of its own. It logs users in (``token``) and stops the server's whole process group.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

from sage_sync_tools.stack import SyncStack, _bin, _stop_group, free_port


@dataclass
class ApiServer:
    """One API server on ``stack``'s Airflow home; ``users`` maps a user name to its simple-auth-manager role."""

    stack: SyncStack
    users: dict[str, str]
    port: int = field(default_factory=free_port)
    #: Extra Airflow settings as environment variables (``AIRFLOW__SECTION__KEY``).
    extra_env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = field(init=False, default=None)
    passwords: dict[str, str] = field(init=False, repr=False, default_factory=dict)
    _jwt_secret: str = field(init=False, repr=False, default_factory=lambda: secrets.token_urlsafe(32))

    @property
    def url(self) -> str:
        """The server's address (UI at ``/``, REST API at ``/api/v2``, the plugin at ``/sage-sync``)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def jwt_secret(self) -> str:
        """The secret that signs and checks the tokens of this server (task processes sign theirs with it too)."""
        return self._jwt_secret

    @property
    def log_path(self) -> Path:
        """The server's output."""
        return self.stack.root / f"api-server-{self.port}.log"

    def env(self) -> dict[str, str]:
        """The stack's environment plus the auth manager's users, the passwords file and the JWT secret."""
        passwords_file = self.stack.root / "simple_auth_manager_passwords.json"
        env = self.stack.env()
        env.update(
            {
                "AIRFLOW__CORE__AUTH_MANAGER": (
                    "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
                ),
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": ",".join(
                    f"{u}:{r}" for u, r in self.users.items()
                ),
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords_file),
                "AIRFLOW__API_AUTH__JWT_SECRET": self._jwt_secret,
                "AIRFLOW__API__BASE_URL": self.url,
                "AIRFLOW__API__WORKERS": "1",
                **self.extra_env,
            }
        )
        return env

    def start(self, timeout: float = 120.0) -> ApiServer:
        """Write the passwords file, start the server, wait until it answers."""
        self.passwords = {user: secrets.token_urlsafe(12) for user in self.users}
        passwords_file = self.stack.root / "simple_auth_manager_passwords.json"
        passwords_file.write_text(json.dumps(self.passwords), encoding="utf-8")
        passwords_file.chmod(0o600)
        with self.log_path.open("wb") as out:
            self.process = subprocess.Popen(
                [_bin("airflow"), "api-server", "--host", "127.0.0.1", "--port", str(self.port)],
                env=self.env(),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        started = time.monotonic()
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"airflow api-server exited:\n{self.log_tail()}")
            try:
                if requests.get(f"{self.url}/api/v2/monitor/health", timeout=5).ok:
                    return self
            except requests.RequestException:
                pass
            if time.monotonic() - started > timeout:
                raise RuntimeError(f"airflow api-server not ready within {timeout:.0f} s:\n{self.log_tail()}")
            time.sleep(0.5)

    def token(self, user: str) -> str:
        """Log ``user`` in (``POST /auth/token``); the JWT the UI keeps in its session cookie."""
        reply = requests.post(
            f"{self.url}/auth/token",
            json={"username": user, "password": self.passwords[user]},
            timeout=30,
        )
        reply.raise_for_status()
        return str(reply.json()["access_token"])

    def get(
        self, path: str, user: str | None = None, headers: dict[str, str] | None = None
    ) -> requests.Response:
        """A GET as ``user`` (a bearer token), or with the given headers only (anonymous by default)."""
        sent = dict(headers or {})
        if user:
            sent["Authorization"] = f"Bearer {self.token(user)}"
        return requests.get(f"{self.url}{path}", headers=sent, timeout=30)

    def log_tail(self, chars: int = 4000) -> str:
        """The end of the server's output."""
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""

    def stop(self) -> None:
        """Stop the server and every process of its group."""
        if self.process is not None:
            _stop_group(self.process)
        self.process = None

    def __enter__(self) -> ApiServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
