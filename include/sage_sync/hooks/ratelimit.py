"""A thread-safe client-side token bucket that keeps API calls under the plan's requests-per-second limit."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class TokenBucket:
    """Hand out at most ``rate`` permits per second, with bursts of at most ``capacity`` permits.

    The SSM API limits each key to 4 or 13 requests/s depending on the plan and answers ``429`` beyond that.
    Pacing the client with the same rate avoids spending calls (and ``Retry-After`` waits) on refusals.
    The default capacity of one permit spaces calls evenly, which never exceeds the server's own bucket
    whatever its burst size. A ``rate`` of 0 or less disables the limit (the simulator with its limit lifted).

    Args:
        rate: permits per second; ``<= 0`` means unlimited.
        capacity: the largest burst; defaults to 1.
        clock: a monotonic clock, injectable so tests can drive time.
        sleep: the sleep function paired with ``clock``.
    """

    def __init__(
        self,
        rate: float,
        capacity: float = 1.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if capacity < 1:
            raise ValueError(f"token bucket capacity must be at least 1, got {capacity}")
        self.rate = float(rate)
        self.capacity = float(capacity)
        self._clock = clock
        self._sleep = sleep
        self._tokens = self.capacity
        self._last = clock()
        self._lock = threading.Lock()
        self.waited_seconds = 0.0  # total time spent waiting for permits, for diagnostics

    @property
    def unlimited(self) -> bool:
        """Whether the bucket lets every call through at once."""
        return self.rate <= 0

    def _reserve(self) -> float:
        """Take one permit now, possibly going into debt; return how long the caller must wait first."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.rate)
            self._last = now
            self._tokens -= 1.0
            # A negative balance is a queue: each waiter owns one slot, so concurrent callers never share one.
            return 0.0 if self._tokens >= 0 else -self._tokens / self.rate

    def acquire(self) -> float:
        """Block until a permit is available; return the seconds waited."""
        if self.unlimited:
            return 0.0
        wait = self._reserve()
        if wait > 0:
            self._sleep(wait)
            with self._lock:
                self.waited_seconds += wait
        return wait
