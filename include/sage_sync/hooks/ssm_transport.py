"""How the SSM hook sends one API call: authorise, send, classify the answer, and retry what is transient.

Three parts, each small enough to read on its own (docs/adr/0003-ssm-retries-and-idempotency.md):

* **authorise**: :meth:`SsmTransport.session_key` logs in once and caches the session key; a ``401`` earns
  exactly one re-login per call.
* **classify**: :func:`classify` turns one attempt's answer (a response or a ``requests`` exception) into a
  :class:`Success`, a :class:`Retry` (with the server's ``Retry-After`` when it sent one), :data:`RELOGIN`,
  or a :class:`Fail` carrying the error to raise: :class:`SsmApiError` for a 4xx, :class:`WriteOutcomeUnknown`
  for a non-idempotent call that may have been applied, :class:`FatalSyncError` for a broken request.
* **retry loop**: :meth:`SsmTransport.send` takes a rate-limit permit per attempt of an API call (not of an
  upload to a document's locator, which is outside the API and its limit), counts every attempt,
  and waits with full-jitter backoff (or ``Retry-After``) between attempts, up to ``max_retries``.
"""

from __future__ import annotations

import logging
import re
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import requests
from requests.adapters import BaseAdapter, HTTPAdapter
from urllib3.connection import HTTPConnection

from sage_sync.errors import FatalSyncError, RetriableSyncError
from sage_sync.hooks.ratelimit import TokenBucket
from sage_sync.hooks.retry import (
    RATE_LIMITED,
    RetryPolicy,
    is_retriable_status,
    is_transient_transport_error,
    parse_retry_after,
    request_was_not_sent,
)
from sage_sync.hooks.ssm_types import ApiCallCounts, SsmApiError, WriteOutcomeUnknown

try:  # msgspec comes with Airflow (task SDK); it decodes a 1000-record page about 30 % faster than json
    from msgspec.json import decode as _decode_json
except ImportError:  # pragma: no cover - Airflow always installs it
    from json import loads as _decode_json  # type: ignore[no-redef]

__all__ = [
    "RELOGIN",
    "ApiCall",
    "Fail",
    "Relogin",
    "Retry",
    "KeepAliveAdapter",
    "SsmTransport",
    "Success",
    "Verdict",
    "build_session",
    "classify",
    "decode_json",
]

log = logging.getLogger(__name__)

_QUERY_STRING = re.compile(r"\?[^\s'\")]*")

Scrub = Callable[[str], str]


@dataclass(frozen=True)
class ApiCall:
    """One API call as the retry loop sees it.

    Attributes:
        method: the HTTP method.
        path: the path under the base URL; messages name it (never a query string or an upload locator).
        url: the URL actually called (base URL + path, or an upload locator).
        params: query parameters.
        json_body: JSON body.
        data: raw body bytes.
        headers: extra headers.
        idempotent: whether re-sending after an unknown outcome is harmless (ADR 0003).
        authenticated: whether to send ``X-Session-Key``.
        counter: the :class:`ApiCallCounts` field each attempt increments.
        paced: whether each attempt takes a permit of the API key's rate limit (an upload locator is outside the
            API and its limit, like a pre-signed storage URL).
    """

    method: str
    path: str
    url: str
    params: Mapping[str, Any] | None = None
    json_body: Any = None
    data: bytes | None = None
    headers: Mapping[str, str] | None = None
    idempotent: bool = True
    authenticated: bool = True
    counter: str = "reads"
    paced: bool = True


@dataclass(frozen=True)
class Success:
    """The call succeeded (any status below 400)."""

    response: requests.Response


@dataclass(frozen=True)
class Relogin:
    """The session key was refused (401): log in again and send the call once more."""


#: The one :class:`Relogin` verdict.
RELOGIN = Relogin()


@dataclass(frozen=True)
class Retry:
    """A transient failure: wait and send again.

    Attributes:
        problem: what went wrong, scrubbed, for the log and the final error.
        retry_after: the server's ``Retry-After`` in seconds, if it sent one.
        throttled: whether the server refused for the rate limit (429).
    """

    problem: str
    retry_after: float | None = None
    throttled: bool = False


@dataclass(frozen=True)
class Fail:
    """Stop: raise ``error`` (already scrubbed)."""

    error: Exception


Verdict = Success | Relogin | Retry | Fail


def classify(
    call: ApiCall,
    answer: requests.Response | requests.RequestException,
    *,
    may_relogin: bool,
    scrub: Scrub,
) -> Verdict:
    """Decide what one attempt's answer means (ADR 0003).

    Args:
        call: the call that was attempted.
        answer: the response, or the ``requests`` exception the attempt raised.
        may_relogin: whether a 401 may still be answered by a re-login (an authenticated call, not re-logged yet).
        scrub: removes keys, session keys and upload locators from text.
    """
    where = f"SSM API {call.method} {call.path}"
    if isinstance(answer, requests.RequestException):
        problem = describe(answer, scrub)
        if not is_transient_transport_error(answer):
            return Fail(FatalSyncError(f"{where}: {problem}"))
        # Only a connection that never opened proves a create was not applied; anything later may have been.
        if not call.idempotent and not request_was_not_sent(answer):
            return Fail(
                WriteOutcomeUnknown(f"{where}: the outcome is unknown ({problem}); not re-sent blindly")
            )
        return Retry(problem)
    status = answer.status_code
    if status < 400:
        return Success(answer)
    if status == 401 and may_relogin:
        return RELOGIN  # session keys expire (3600 s by default)
    if not is_retriable_status(status):
        return Fail(api_error(answer, call.method, call.path, scrub))
    # The rate limiter refuses before doing anything; a 5xx may come after the server applied the write.
    if status != RATE_LIMITED and not call.idempotent:
        return Fail(WriteOutcomeUnknown(f"{where}: answered {status}; the write may have been applied"))
    return Retry(
        f"HTTP {status}: {error_fields(answer, scrub)[1]}",
        retry_after=parse_retry_after(answer.headers.get("Retry-After")),
        throttled=status == RATE_LIMITED,
    )


def describe(exc: BaseException, scrub: Scrub) -> str:
    """A transport error as text, without secrets and without query strings (filters may name customers)."""
    return _QUERY_STRING.sub("?...", scrub(f"{type(exc).__name__}: {exc}"))


def error_fields(response: requests.Response, scrub: Scrub) -> tuple[int | None, str]:
    """The API code and message of an error response (tolerating ``Message``/``message`` and plain text)."""
    code: int | None = None
    message = ""
    try:
        payload = response.json()
    except ValueError:
        payload = None
    if isinstance(payload, dict):
        raw_code = payload.get("code")
        if isinstance(raw_code, int) and not isinstance(raw_code, bool):
            code = raw_code
        elif isinstance(raw_code, str) and raw_code.isdigit():
            code = int(raw_code)
        message = str(payload.get("message") or payload.get("Message") or payload.get("error") or "")
    if not message:
        message = (response.text or response.reason or "").strip()[:500]
    return code, scrub(message)


def api_error(response: requests.Response, method: str, path: str, scrub: Scrub) -> SsmApiError:
    """The :class:`SsmApiError` of a refused call, with the API's code and scrubbed message."""
    code, message = error_fields(response, scrub)
    return SsmApiError(response.status_code, code, message, method, path)


def decode_json(response: requests.Response, method: str, path: str) -> Any:
    """The response body as JSON; a body that is not JSON is an :class:`SsmApiError`."""
    try:
        return _decode_json(response.content)
    except ValueError:  # msgspec.DecodeError is a ValueError too
        raise SsmApiError(response.status_code, None, "the response is not JSON", method, path) from None


class KeepAliveAdapter(HTTPAdapter):
    """The default transport: connections that send TCP keep-alive probes.

    A call may wait up to ``timeout`` (60 s) for its answer, and pooled connections sit idle between calls;
    firewalls and NAT gateways silently drop idle TCP connections, which then fail mid-call. Probes after 120 s
    of silence, every 30 s, 20 times, keep them open (the values ``HttpHook`` used before docs/adr/0012).
    """

    #: (option level, option, value) set on every new socket; options the platform lacks are left out.
    SOCKET_OPTIONS: list[tuple[int, int, int]] = [
        *HTTPConnection.default_socket_options,
        (socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1),
        *(
            (socket.IPPROTO_TCP, getattr(socket, name), value)
            for name, value in (("TCP_KEEPIDLE", 120), ("TCP_KEEPINTVL", 30), ("TCP_KEEPCNT", 20))
            if hasattr(socket, name)
        ),
    ]

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        """Create the pool manager with the keep-alive socket options."""
        kwargs["socket_options"] = self.SOCKET_OPTIONS
        super().init_poolmanager(*args, **kwargs)


def build_session(adapter: BaseAdapter | None = None) -> requests.Session:
    """A ``requests`` session for the API: JSON accepted, ``adapter`` (or keep-alive) mounted for http and https.

    Only the public ``Session.mount`` is used; a given adapter serves every URL, so a test's fake transport
    also receives the upload to a locator on another host.
    """
    session = requests.Session()
    session.headers.update({"Accept": "application/json"})
    transport = adapter if adapter is not None else KeepAliveAdapter()
    for prefix in ("http://", "https://"):
        session.mount(prefix, transport)
    return session


class SsmTransport:
    """Send API calls over one ``requests`` session: session key, rate limit, retries, call counts.

    Args:
        session: the HTTP session (its adapters are the transport boundary).
        base_url: the API base URL, ending in ``/api/v4``.
        timeout: seconds to wait for a response.
        credentials: the (public, private) API key pair, sent only in the login body.
        policy: which attempts to make and how long to wait between them.
        limiter: the client-side token bucket, one permit per attempt.
        calls: the counters every attempt increments.
        scrub: removes keys, session keys and upload locators from text.
        register_secret: called with every new session key, so logs can mask it.
        sleep: the sleep function between attempts.
    """

    def __init__(
        self,
        *,
        session: requests.Session,
        base_url: str,
        timeout: float,
        credentials: tuple[str, str],
        policy: RetryPolicy,
        limiter: TokenBucket,
        calls: ApiCallCounts,
        scrub: Scrub,
        register_secret: Callable[[str], None],
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.session = session
        self.base_url = base_url
        self.timeout = timeout
        self.policy = policy
        self.limiter = limiter
        self.calls = calls
        self._credentials = credentials
        self._scrub = scrub
        self._register_secret = register_secret
        self._sleep = sleep
        self._lock = threading.RLock()
        self._token: str | None = None

    # ------------------------------------------------------------------------------------ authorise

    def session_key(self) -> str:
        """The cached session key, logging in first when there is none."""
        with self._lock:
            if self._token is None:
                self._token = self._login()
            return self._token

    def forget_session_key(self, token: str | None = None) -> None:
        """Drop the cached session key; with ``token``, only if it is still that one.

        Another thread may have logged in again already, and its fresh key must survive.
        """
        with self._lock:
            if token is None or self._token == token:
                self._token = None

    def _login(self) -> str:
        """``POST /login`` with the key pair; returns the session key (registered as a secret first)."""
        public_key, private_key = self._credentials
        response = self.send(
            "POST",
            "/login",
            json_body={"username": public_key, "password": private_key},
            authenticated=False,
            counter="logins",
        )
        token = None
        try:
            payload = response.json()
            token = payload.get("token") if isinstance(payload, dict) else None
        except ValueError:
            pass
        if not isinstance(token, str) or not token:
            raise SsmApiError(response.status_code, None, "login answered without a token", "POST", "/login")
        self._register_secret(token)
        log.info("Logged in to the SSM API at %s", self.base_url)
        return token

    # ------------------------------------------------------------------------------------ retry loop

    def send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool = True,
        authenticated: bool = True,
        counter: str | None = None,
        url: str | None = None,
        data: bytes | None = None,
        paced: bool = True,
    ) -> requests.Response:
        """Send one API call with rate limiting, one re-login on 401 and retries of transient failures.

        Args:
            method: HTTP method.
            path: path under the base URL (used in messages; also the URL unless ``url`` is given).
            params: query parameters.
            json_body: JSON body.
            headers: extra headers.
            idempotent: whether re-sending after an unknown outcome is harmless. When False, a failure that
                may have reached the server raises :class:`WriteOutcomeUnknown` instead of re-sending.
            authenticated: whether to send ``X-Session-Key``.
            counter: which call counter to increment (default: reads for GET, writes otherwise).
            url: an absolute URL to call instead of base URL + path (upload locators).
            data: raw body bytes.
            paced: whether the call takes a rate-limit permit (False: an upload locator, outside the API).

        Returns:
            The response, always 2xx or 3xx.

        Raises:
            SsmApiError: the API answered 4xx (after one re-login on 401).
            WriteOutcomeUnknown: a non-idempotent call failed after it may have been applied.
            RetriableSyncError: a transient failure persisted through every retry.
        """
        call = ApiCall(
            method=method,
            path=path,
            url=url or self.base_url + path,
            params=params,
            json_body=json_body,
            data=data,
            headers=headers,
            idempotent=idempotent,
            authenticated=authenticated,
            counter=counter or ("reads" if method == "GET" else "writes"),
            paced=paced,
        )
        relogged = False
        attempt = 0
        while True:
            token, answer = self._attempt(call)
            verdict = classify(
                call, answer, may_relogin=call.authenticated and not relogged, scrub=self._scrub
            )
            if isinstance(verdict, Success):
                return verdict.response
            if isinstance(verdict, Fail):
                raise verdict.error
            if isinstance(verdict, Relogin):
                relogged = True  # a re-login is not a retry: it does not use up an attempt
                self.calls.add("relogins")
                self.forget_session_key(token)
                log.info("SSM API %s %s answered 401; logging in again once", method, path)
                continue
            if verdict.throttled:
                self.calls.add("throttled")
            if attempt >= self.policy.max_retries:
                raise RetriableSyncError(
                    f"SSM API {method} {path} still failing after {attempt + 1} attempt(s); "
                    f"last error: {verdict.problem}"
                )
            delay = self.policy.delay(attempt, verdict.retry_after)
            attempt += 1
            self.calls.add("retries")
            log.warning(
                "SSM API %s %s: %s; retry %d/%d in %.2f s",
                method,
                path,
                verdict.problem,
                attempt,
                self.policy.max_retries,
                delay,
            )
            self._sleep(delay)

    def _attempt(self, call: ApiCall) -> tuple[str | None, requests.Response | requests.RequestException]:
        """Send ``call`` once: session key, a rate-limit permit, one count; return the key used and the answer."""
        headers = dict(call.headers or {})
        token = self.session_key() if call.authenticated else None
        if token is not None:
            headers["X-Session-Key"] = token
        if call.paced:
            self.limiter.acquire()
        self.calls.add(call.counter)
        try:
            response = self.session.request(
                call.method,
                call.url,
                params=call.params,
                json=call.json_body,
                data=call.data,
                headers=headers,
                timeout=self.timeout,
            )
        except requests.RequestException as exc:
            return token, exc
        return token, response
