"""What each answer of the API means to the retry loop (ADR 0003), one attempt at a time.

``classify`` is the hook's decision table; these tests state that table. The answers are real ``requests``
responses and exceptions as the transport raises them.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import requests

from sage_sync.errors import FatalSyncError
from sage_sync.hooks.ssm import SsmApiError, WriteOutcomeUnknown
from sage_sync.hooks.ssm_transport import RELOGIN, ApiCall, Fail, Retry, Success, Verdict, classify
from tests.unit.hooks.ssm_fakes import Reply, dropped, make_hook, make_response, refused

GET = ApiCall("GET", "/accounts", "https://ssm.example.test/api/v4/accounts")
PUT = ApiCall("PUT", "/accounts/1", "https://ssm.example.test/api/v4/accounts/1", json_body={"city": "Lyon"})
CREATE = ApiCall("POST", "/accounts/bulk", "https://ssm.example.test/api/v4/accounts/bulk", idempotent=False)


def verdict(call: ApiCall, reply: Reply, *, may_relogin: bool = True) -> Verdict:
    """Classify a reply as the transport would deliver it; the scrubber hides the word ``s3cr3t``."""
    got = reply if isinstance(reply, requests.RequestException) else make_response(reply)  # type: ignore[arg-type]
    return classify(call, got, may_relogin=may_relogin, scrub=lambda text: text.replace("s3cr3t", "***"))


def kind(v: Verdict) -> str:
    if isinstance(v, Fail):
        return type(v.error).__name__
    return type(v).__name__


TRANSIENT: list[tuple[str, Reply]] = [
    ("503", (503, {"message": "busy"})),
    ("500", (500, {"message": "oops"})),
    ("dropped", dropped()),
    ("read timeout", requests.ReadTimeout("read timed out")),
]


@pytest.mark.parametrize(("name", "reply"), TRANSIENT)
@pytest.mark.parametrize("call", [GET, PUT], ids=["GET", "PUT"])
def test_idempotent_calls_retry_every_transient_failure(call: ApiCall, name: str, reply: Reply) -> None:
    assert kind(verdict(call, reply)) == "Retry", name


@pytest.mark.parametrize(("name", "reply"), TRANSIENT)
def test_a_create_that_may_have_been_applied_is_an_unknown_outcome(name: str, reply: Reply) -> None:
    v = verdict(CREATE, reply)
    assert kind(v) == "WriteOutcomeUnknown", name
    assert isinstance(v, Fail) and "/accounts/bulk" in str(v.error)


@pytest.mark.parametrize(
    ("name", "reply"),
    [
        ("429", (429, {}, {"Retry-After": "2"})),
        ("refused", refused()),
        ("connect timeout", requests.ConnectTimeout("connect timed out")),
    ],
)
def test_a_create_is_resent_only_when_nothing_can_have_been_applied(name: str, reply: Reply) -> None:
    assert kind(verdict(CREATE, reply)) == "Retry", name


def test_429_carries_retry_after_and_counts_as_throttled() -> None:
    v = verdict(GET, (429, {"message": "slow down"}, {"Retry-After": "2.5"}))
    assert v == Retry("HTTP 429: slow down", retry_after=2.5, throttled=True)
    assert verdict(GET, (503, {"message": "busy"})) == Retry(
        "HTTP 503: busy", retry_after=None, throttled=False
    )


def test_success_and_4xx() -> None:
    ok = verdict(GET, (200, []))
    assert isinstance(ok, Success) and ok.response.status_code == 200
    assert kind(verdict(CREATE, (200, []))) == "Success"
    refused_item = verdict(CREATE, (400, {"code": 901, "message": "bad where"}))
    assert isinstance(refused_item, Fail) and isinstance(refused_item.error, SsmApiError)
    assert (refused_item.error.status, refused_item.error.code) == (400, 901)
    for status in (403, 404, 409, 422):
        assert kind(verdict(GET, (status, {}))) == "SsmApiError"


def test_401_earns_one_relogin_then_fails() -> None:
    assert verdict(GET, (401, {"message": "expired"})) is RELOGIN
    second = verdict(GET, (401, {"message": "expired"}), may_relogin=False)
    assert isinstance(second, Fail) and isinstance(second.error, SsmApiError) and second.error.status == 401


def test_a_broken_request_is_fatal_not_retried() -> None:
    v = verdict(GET, requests.exceptions.InvalidURL("no host"))
    assert isinstance(v, Fail) and isinstance(v.error, FatalSyncError)
    assert not isinstance(v.error, SsmApiError | WriteOutcomeUnknown)


def test_messages_are_scrubbed_and_lose_query_strings() -> None:
    refused_call = verdict(GET, (400, {"message": "bad key s3cr3t"}))
    assert isinstance(refused_call, Fail) and "s3cr3t" not in str(refused_call.error)
    retry = verdict(
        GET, requests.ConnectionError("Max retries exceeded with url: /accounts?where=name+%3D+s3cr3t")
    )
    assert (
        isinstance(retry, Retry)
        and retry.problem == "ConnectionError: Max retries exceeded with url: /accounts?..."
    )
    throttled = verdict(GET, (503, {"message": "token s3cr3t"}))
    assert isinstance(throttled, Retry) and "s3cr3t" not in throttled.problem


def test_a_relogin_does_not_use_up_a_retry(connection: Callable[..., None]) -> None:
    """With no retries at all, an expired session key still gets its one re-login."""

    def handler(r: requests.PreparedRequest) -> Reply:
        expired = r.headers["X-Session-Key"] == "session-token-0000-abcdef"
        return (401, {"message": "expired"}) if expired else (200, {"id": 7})

    hook, transport = make_hook(handler, max_retries=0)
    assert hook.get("accounts", 7) == {"id": 7}
    assert (hook.calls.relogins, hook.calls.retries, len(transport.calls("POST", "/login"))) == (1, 0, 2)
