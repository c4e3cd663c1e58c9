"""Runtime controls of the simulator: sessions, rate limit buckets, injected faults and call statistics."""

from __future__ import annotations

import random
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from sage_sync.simulators.ssm.seed import ApiKey


@dataclass
class Session:
    """A login token and the key it was issued to (expiry uses the real monotonic clock)."""

    key: ApiKey
    issued: float


class Sessions:
    """Session tokens; their lifetime can change at run time and applies to existing tokens too."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._tokens: dict[str, Session] = {}

    def issue(self, key: ApiKey) -> str:
        """A fresh random token for ``key``."""
        token = secrets.token_urlsafe(24)
        self._tokens[token] = Session(key, time.monotonic())
        return token

    def resolve(self, token: str | None) -> ApiKey | None:
        """The key behind a live token, or None (missing, unknown or expired)."""
        if not token:
            return None
        session = self._tokens.get(token)
        if session is None:
            return None
        if time.monotonic() - session.issued > self.ttl:
            del self._tokens[token]
            return None
        return session.key


class RateLimiter:
    """One token bucket per API key: ``rate`` requests per second, bursts up to ``max(rate, 1)``."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, last refill)

    def acquire(self, key: str) -> float:
        """Take one token; returns 0 when allowed, else the seconds to wait before retrying."""
        if self.rate <= 0:
            return 0.0
        capacity = max(self.rate, 1.0)
        now = time.monotonic()
        tokens, last = self._buckets.get(key, (capacity, now))
        tokens = min(capacity, tokens + (now - last) * self.rate)
        if tokens >= 1.0:
            self._buckets[key] = (tokens - 1.0, now)
            return 0.0
        self._buckets[key] = (tokens, now)
        return (1.0 - tokens) / self.rate


@dataclass
class Faults:
    """Injected faults (``POST /__sim/faults``); all probabilities are per /api/v4 call."""

    p429: float = 0.0
    p500: float = 0.0
    p503: float = 0.0
    pdrop: float = 0.0
    p500_after: float = 0.0  # apply the request, then answer 500 (a lost response)
    pdrop_after: float = 0.0  # apply the request, then drop the connection without any response
    latency_ms: int = 0
    fail_after: int | None = None
    seed: int | None = None
    rng: random.Random = field(default_factory=random.Random, repr=False)

    FIELDS = (
        "p429",
        "p500",
        "p503",
        "pdrop",
        "p500_after",
        "pdrop_after",
        "latency_ms",
        "fail_after",
        "seed",
    )

    def merge(self, body: dict[str, Any]) -> None:
        """Merge a partial configuration into the current one (raises ValueError on bad input)."""
        unknown = set(body) - set(self.FIELDS)
        if unknown:
            raise ValueError(f"unknown fault setting(s): {', '.join(sorted(unknown))}")
        for name in ("p429", "p500", "p503", "pdrop", "p500_after", "pdrop_after"):
            if name in body:
                value = body[name]
                if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
                    raise ValueError(f"{name} must be a probability between 0 and 1, got {value!r}")
                setattr(self, name, float(value))
        if "latency_ms" in body:
            value = body["latency_ms"]
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"latency_ms must be a non-negative integer, got {value!r}")
            self.latency_ms = value
        if "fail_after" in body:
            value = body["fail_after"]
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                raise ValueError(f"fail_after must be a non-negative integer or null, got {value!r}")
            self.fail_after = value
        if "seed" in body:
            value = body["seed"]
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise ValueError(f"seed must be an integer or null, got {value!r}")
            self.seed = value
            self.rng = random.Random(value)

    def to_json(self) -> dict[str, Any]:
        """The current configuration."""
        return {name: getattr(self, name) for name in self.FIELDS}

    def decide(self) -> str | None:
        """What this call suffers, decided before it is applied.

        'drop', '503', '500' and '429' happen instead of the request; '500_after' and 'drop_after' after it was
        applied (the client cannot tell whether its write happened); None lets the call through.
        """
        if self.fail_after is not None:
            if self.fail_after <= 0:
                return "503"
            self.fail_after -= 1
        roll = self.rng.random()
        for outcome, p in (("drop", self.pdrop), ("503", self.p503), ("500", self.p500), ("429", self.p429)):
            if roll < p:
                return outcome
            roll -= p
        if self.p500_after and self.rng.random() < self.p500_after:
            return "500_after"
        if self.pdrop_after and self.rng.random() < self.pdrop_after:
            return "drop_after"
        return None


class Stats:
    """Call counters for ``GET /__sim/stats``."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Zero every counter."""
        self.total = 0
        self.by_route: dict[str, int] = {}
        self.by_status: dict[str, int] = {}
        self.reads = 0
        self.writes = 0
        self.logins = 0
        self.served_429 = 0
        self.records_written_base = 0

    def record(self, method: str, route: str, status: str, *, login: bool) -> None:
        """Count one /api/v4 call (``status`` is the HTTP status, 'dropped' or 'dropped_after')."""
        self.total += 1
        self.by_route[route] = self.by_route.get(route, 0) + 1
        self.by_status[status] = self.by_status.get(status, 0) + 1
        if login:
            self.logins += 1
        elif method == "GET" or route.endswith("/procedure/zapier_schema"):  # a read in POST clothing
            self.reads += 1
        elif method in ("POST", "PUT", "DELETE"):
            self.writes += 1
        if status == "429":
            self.served_429 += 1
