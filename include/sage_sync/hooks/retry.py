"""Retry policy of the SSM hook: which failures are transient, how long to wait, and whether a request left.

See docs/adr/0003-ssm-retries-and-idempotency.md for the decision this module implements.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import requests
from urllib3.exceptions import NewConnectionError

#: The rate limit status; every server-side failure (any 5xx) is retried as well, see is_retriable_status.
RATE_LIMITED = 429


def is_retriable_status(status: int) -> bool:
    """Whether an HTTP status is worth retrying: the rate limit (429) and every server-side failure (5xx).

    All of 5xx, not a list of known codes: a proxy or load balancer in front of the API may answer 501, 507,
    520... for a failure that is just as transient as a 503.
    """
    return status == RATE_LIMITED or 500 <= status <= 599


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded exponential backoff with full jitter, honouring ``Retry-After``.

    Attempt ``n`` (0-based) waits a random time in ``[0, min(backoff_max, backoff_base * 2**n)]`` ("full
    jitter", which spreads concurrent clients apart), or the server's ``Retry-After`` when it sent one, capped
    at ``retry_after_max`` so a confused server cannot park a task for hours.

    Args:
        max_retries: retries after the first attempt; the call is tried ``max_retries + 1`` times in all.
        backoff_base: the first backoff ceiling, in seconds.
        backoff_max: the largest backoff ceiling, in seconds.
        retry_after_max: the longest ``Retry-After`` honoured, in seconds.
        rng: the random source of the jitter (seedable in tests).
    """

    max_retries: int = 6
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    retry_after_max: float = 60.0
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be 0 or more, got {self.max_retries}")
        if self.backoff_base < 0 or self.backoff_max < 0 or self.retry_after_max < 0:
            raise ValueError("backoff_base, backoff_max and retry_after_max must not be negative")

    @property
    def attempts(self) -> int:
        """How many times a call is tried in all."""
        return self.max_retries + 1

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number ``attempt + 1``."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.retry_after_max)
        ceiling = min(self.backoff_max, self.backoff_base * (2**attempt))
        return self.rng.uniform(0.0, ceiling)


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Parse a ``Retry-After`` header (delta seconds or an HTTP date) into seconds; None if absent or bad."""
    if not value:
        return None
    text = value.strip()
    try:
        return max(float(text), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - (now or datetime.now(UTC))).total_seconds(), 0.0)


def is_transient_transport_error(exc: BaseException) -> bool:
    """Whether a ``requests`` exception is a network failure worth retrying (connection errors, timeouts)."""
    return isinstance(exc, requests.ConnectionError | requests.Timeout) and not isinstance(
        exc, requests.exceptions.InvalidURL | requests.exceptions.SSLError
    )


def request_was_not_sent(exc: BaseException) -> bool:
    """Whether a transport failure certainly happened before the request reached the server.

    Only a failure to open the connection (refused, unreachable, connect timeout) proves nothing was sent.
    A connection dropped later, or a read timeout, leaves the outcome unknown: the server may have applied the
    request before the response was lost.
    """
    if isinstance(exc, requests.ConnectTimeout):
        return True
    if isinstance(exc, requests.ConnectionError):
        reason = getattr(exc.args[0], "reason", None) if exc.args else None
        return isinstance(reason, NewConnectionError) or isinstance(
            exc.args[0] if exc.args else None, NewConnectionError
        )
    return False
