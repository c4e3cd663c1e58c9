"""Value types of the SSM hook: its errors, per-item bulk outcomes, call counters and resolved settings.

Also the connection helpers that turn an Airflow connection's fields into settings. Nothing here talks to the
network; :mod:`sage_sync.hooks.ssm` re-exports every public name.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from sage_sync.errors import ConfigurationError, FatalSyncError, RetriableSyncError

__all__ = [
    "API_CODE_BAD_WHERE",
    "API_CODE_NOT_FOUND",
    "ApiCallCounts",
    "BulkOutcome",
    "SsmApiError",
    "SsmSettings",
    "WriteOutcomeUnknown",
    "api_base_url",
    "validated_number",
]

#: API code of a bad ``where`` (or other SQL the API could not generate).
API_CODE_BAD_WHERE = 901
#: API code of a resource that does not exist (unknown id; the API answers 400, not 404).
API_CODE_NOT_FOUND = 910

_API_PATH = "/api/v4"


class SsmApiError(FatalSyncError):
    """The API refused a call with a 4xx status; retrying the same call will not help.

    Attributes:
        status: the HTTP status (400, 401, 403, ...).
        code: the API code when the body has one (901 bad ``where``, 910 resource does not exist), else None.
        api_message: the API's message, scrubbed of keys and tokens.
        method: the HTTP method of the call.
        path: the path of the call under the base URL (no query string).
    """

    def __init__(self, status: int, code: int | None, api_message: str, method: str, path: str) -> None:
        self.status = status
        self.code = code
        self.api_message = api_message
        self.method = method
        self.path = path
        code_text = f", API code {code}" if code is not None else ""
        super().__init__(f"SSM API {method} {path} answered {status}{code_text}: {api_message}")


class WriteOutcomeUnknown(RetriableSyncError):
    """A non-idempotent write failed after it may have reached the server (dropped connection, timeout, 5xx).

    The hook does not blindly re-send such a write; see docs/adr/0003-ssm-retries-and-idempotency.md.
    """


@dataclass(frozen=True)
class BulkOutcome:
    """The outcome of one item of a bulk create or update, in input order.

    Attributes:
        guid: the client's key of the item (given by the caller, else the item's position).
        id: the SSM record id (None when the item failed).
        status: the per-item status from the API (200, 400, 403), or 0 when the outcome is unknown.
        message: the API's per-item message (scrubbed), or the hook's explanation.
        recovered: True when the item had been applied by a request whose response was lost, and the hook
            found it again by its ``extId`` instead of creating it twice.
    """

    guid: str
    id: int | None
    status: int
    message: str
    recovered: bool = False

    @property
    def ok(self) -> bool:
        """Whether the item was applied."""
        return self.status == 200 and self.id is not None


@dataclass
class ApiCallCounts:
    """API calls made by one hook instance, for the run ledger (every HTTP attempt counts, retries included)."""

    reads: int = 0
    writes: int = 0
    logins: int = 0
    retries: int = 0
    throttled: int = 0
    relogins: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, name: str, n: int = 1) -> None:
        """Increment one counter (thread-safe)."""
        with self._lock:
            setattr(self, name, getattr(self, name) + n)

    @property
    def total(self) -> int:
        """All calls sent, logins included."""
        return self.reads + self.writes + self.logins

    def as_dict(self) -> dict[str, int]:
        """A plain dict for XCom or the ledger."""
        return {
            "reads": self.reads,
            "writes": self.writes,
            "logins": self.logins,
            "retries": self.retries,
            "throttled": self.throttled,
            "relogins": self.relogins,
            "total": self.total,
        }


@dataclass(frozen=True)
class SsmSettings:
    """The hook's resolved settings (constructor argument > connection extra > default)."""

    base_url: str
    requests_per_second: float
    page_size: int
    timeout: float
    max_retries: int
    parallel_calls: int = 4
    #: The folder of the token bucket the key's callers share (None: the machine's temporary folder).
    rate_limit_folder: str | None = None


def validated_number(
    conn_id: str, name: str, value: Any, *, integer: bool, minimum: float, maximum: float | None
) -> Any:
    """Validate one numeric setting; bad input is a ConfigurationError naming the connection and the setting."""
    try:
        if isinstance(value, bool):
            raise ValueError
        number = int(value) if integer else float(value)
        if integer and float(value) != number:
            raise ValueError
    except (TypeError, ValueError):
        kind = "an integer" if integer else "a number"
        raise ConfigurationError(f"connection {conn_id!r}: {name} must be {kind}, got {value!r}") from None
    if number < minimum or (maximum is not None and number > maximum):
        upper = f" and at most {maximum:g}" if maximum is not None else ""
        raise ConfigurationError(
            f"connection {conn_id!r}: {name} must be at least {minimum:g}{upper}, got {number!r}"
        )
    return number


def api_base_url(host: str, schema: str | None = None, port: int | None = None) -> str:
    """Turn a connection's host (a full base URL, or a bare host name) into the API base URL ending in /api/v4."""
    host = (host or "").strip()
    if not host:
        raise ValueError(
            "the connection has no host; set it to the API base URL, e.g. https://api.forcemanager.com/api/v4"
        )
    if "://" not in host:
        scheme = (schema or "https").strip().lower()
        if scheme not in ("http", "https"):
            # A URI-style connection puts its path into `schema`; the base URL must then be given in full.
            raise ValueError(
                f"schema {schema!r} is not http or https; put the full base URL in host, "
                "e.g. https://api.forcemanager.com/api/v4"
            )
        host = f"{scheme}://{host}"
    parts = urlsplit(host)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"the connection's host {host!r} is not an http(s) URL")
    netloc = parts.netloc
    if port and parts.port is None:
        netloc = f"{netloc}:{port}"
    path = parts.path.rstrip("/")
    if not path.endswith(_API_PATH):
        path = f"{path}{_API_PATH}"
    return urlunsplit((parts.scheme, netloc, path, "", ""))
