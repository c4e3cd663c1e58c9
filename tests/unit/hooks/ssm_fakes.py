"""The transport boundary of the SSM hook's unit tests: a ``requests`` adapter answering from a function.

Only the transport is faked; every part of the hook (settings, login, retries, paging, bulk reconciliation,
scrubbing) runs for real. The ``connection`` fixture that points ``ssm_default`` at the fake lives in conftest.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict
from urllib3.connection import HTTPConnection
from urllib3.exceptions import MaxRetryError, NewConnectionError, ProtocolError

from sage_sync.hooks.ssm import SalesManagementHook

PUBLIC, PRIVATE = "pub-4f1c9a7e2b", "priv-9d3e7f1a6c"
BASE = "https://ssm.example.test/api/v4"

Reply = tuple[int, Any] | tuple[int, Any, dict[str, str]] | BaseException
Handler = Callable[[requests.PreparedRequest], Reply]


def make_response(
    reply: tuple[int, Any] | tuple[int, Any, dict[str, str]], request: requests.PreparedRequest | None = None
) -> requests.Response:
    """A ``requests`` response from ``(status, body[, headers])``; a body that is not bytes is sent as JSON."""
    status, body = reply[0], reply[1]
    headers = reply[2] if len(reply) == 3 else {}  # type: ignore[misc]
    response = requests.Response()
    response.status_code = status
    response._content = body if isinstance(body, bytes) else json.dumps(body).encode()
    response.headers = CaseInsensitiveDict({"Content-Type": "application/json", **headers})
    response.request = request
    response.url = (request.url if request is not None else None) or ""
    response.reason = "fake"
    return response


class FakeTransport(BaseAdapter):
    """Answers requests from a handler function and records what was sent."""

    def __init__(self, handler: Handler) -> None:
        super().__init__()
        self.handler = handler
        self.sent: list[requests.PreparedRequest] = []
        self.tokens = iter(f"session-token-{n:04d}-abcdef" for n in range(1000))

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        self.sent.append(request)
        if urlsplit(request.url or "").path.endswith("/login"):
            reply: Reply = (200, {"token": next(self.tokens)})
        else:
            reply = self.handler(request)
        if isinstance(reply, BaseException):
            raise reply
        return make_response(reply, request)

    def close(self) -> None:
        pass

    def calls(self, method: str | None = None, path: str | None = None) -> list[requests.PreparedRequest]:
        return [
            r
            for r in self.sent
            if (method is None or r.method == method)
            and (path is None or urlsplit(r.url or "").path.endswith(path))
        ]


def query(request: requests.PreparedRequest) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(request.url or "").query).items()}


def body(request: requests.PreparedRequest) -> Any:
    raw = request.body
    return json.loads(raw if isinstance(raw, str | bytes) else b"null")


def dropped() -> requests.ConnectionError:
    return requests.ConnectionError(ProtocolError("Connection aborted.", ConnectionResetError()))


def refused() -> requests.ConnectionError:
    reason = NewConnectionError(
        HTTPConnection("ssm.example.test"), "Failed to establish a new connection: [Errno 111]"
    )
    return requests.ConnectionError(MaxRetryError(None, "/api/v4/productFamilies", reason))  # type: ignore[arg-type]


def make_hook(handler: Handler, **kwargs: Any) -> tuple[SalesManagementHook, FakeTransport]:
    transport = FakeTransport(handler)
    kwargs.setdefault("requests_per_second", 0)
    hook = SalesManagementHook(adapter=transport, backoff_base=0.001, backoff_max=0.002, **kwargs)
    return hook, transport
