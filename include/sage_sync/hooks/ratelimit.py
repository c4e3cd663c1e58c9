"""Client-side token buckets that keep API calls under the plan's requests-per-second limit.

The SSM API limits each key to 4 or 13 requests/s depending on the plan and answers ``429`` beyond that. Every
task that calls the API (extract, load, preflight, match…) runs in its own process under a real executor, and
several run at once (the ``ssm_api`` pool): the limit is the key's, so the bucket is too. ``TokenBucket`` keeps
its state in memory (one process); with ``shared`` it keeps it in a small file locked around each permit, so every
process of the machine that calls with the same key draws from one bucket (see :func:`shared_bucket_file`).

The callers of a shared bucket may also take turns by precedence: while a ``lead`` caller draws permits (the load of
an entity other entities wait for), a ``yield`` caller (the load of an entity nothing waits for) takes none. The
key's rate is the same either way; the entities the others wait for are written first (ADR 0019, decision 5).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import struct
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Literal

#: The shared state: tokens left, the clock reading they were counted at, and the end of the lead (the clock
#: reading until which ``yield`` callers wait): three little-endian doubles. A file of the first two is read too.
_STATE = struct.Struct("<ddd")
_STATE_BEFORE = struct.Struct("<dd")

#: How a caller takes its turn in a shared bucket: ``lead`` (others yield while it calls), ``share`` (first come,
#: first served: every read, every entity's extract), ``yield`` (waits while a ``lead`` caller is calling).
Precedence = Literal["lead", "share", "yield"]

#: How long after a ``lead`` caller's permit (its wait included) ``yield`` callers still wait: longer than the
#: pause a load makes between two calls, short enough that the key never idles long once the lead is over.
LEAD_HOLD_SECONDS = 2.0

#: Where the shared buckets live unless the connection names a folder (one file per API base URL and key).
DEFAULT_SHARED_FOLDER = Path(tempfile.gettempdir()) / "sage-sync-rate-limits"


def shared_bucket_file(base_url: str, public_key: str, folder: Path | None = None) -> Path:
    """The file of the bucket every caller with this API key shares (its name hides the key)."""
    name = hashlib.sha256(f"{base_url}\n{public_key}".encode()).hexdigest()[:32]
    return (folder or DEFAULT_SHARED_FOLDER) / f"{name}.bucket"


class TokenBucket:
    """Hand out at most ``rate`` permits per second, with bursts of at most ``capacity`` permits.

    Pacing the client with the key's rate avoids spending calls (and ``Retry-After`` waits) on refusals. The
    default capacity of one permit spaces calls evenly, which never exceeds the server's own bucket whatever its
    burst size. A ``rate`` of 0 or less disables the limit (the simulator with its limit lifted).

    Args:
        rate: permits per second; ``<= 0`` means unlimited.
        capacity: the largest burst; defaults to 1.
        shared: a file holding the bucket's state for every process that names it (created if missing); None
            keeps the state in this object. Its clock is then the wall clock, which every process (and every host
            mounting the folder) reads alike.
        clock: the clock, injectable so tests can drive time (default: monotonic, or the wall clock if shared).
        sleep: the sleep function paired with ``clock``.
        precedence: this caller's turn in a shared bucket (:data:`Precedence`); without ``shared`` every caller
            is this process's, and it changes nothing.
    """

    def __init__(
        self,
        rate: float,
        capacity: float = 1.0,
        *,
        shared: Path | None = None,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        precedence: Precedence = "share",
    ) -> None:
        if capacity < 1:
            raise ValueError(f"token bucket capacity must be at least 1, got {capacity}")
        self.rate = float(rate)
        self.capacity = float(capacity)
        self.shared = shared
        self.precedence = precedence
        self._clock = clock or (time.time if shared is not None else time.monotonic)
        self._sleep = sleep
        self._tokens = self.capacity
        self._last = self._clock()
        self._lock = threading.Lock()
        self._file: tuple[int, int] | None = None  # (pid, descriptor): a forked child opens its own
        self.waited_seconds = 0.0  # total time spent waiting for permits, for diagnostics

    @property
    def unlimited(self) -> bool:
        """Whether the bucket lets every call through at once."""
        return self.rate <= 0

    def _take(self, tokens: float, last: float) -> tuple[float, float, float]:
        """One permit from a bucket holding ``tokens`` at ``last``: the new state and the wait before the call."""
        now = self._clock()
        tokens = min(self.capacity, tokens + max(0.0, now - last) * self.rate)
        tokens -= 1.0
        # A negative balance is a queue: each waiter owns one slot, so concurrent callers never share one.
        return tokens, max(now, last), (0.0 if tokens >= 0 else -tokens / self.rate)

    def _descriptor(self) -> int:
        assert self.shared is not None
        pid = os.getpid()
        if self._file is None or self._file[0] != pid:
            self.shared.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            self._file = (pid, os.open(self.shared, os.O_RDWR | os.O_CREAT, 0o600))
        return self._file[1]

    def _read(self, fd: int) -> tuple[float, float, float]:
        """The shared state: tokens, their clock reading, the end of the lead (a new file: a full bucket, no lead)."""
        raw = os.pread(fd, _STATE.size, 0)
        if len(raw) == _STATE.size:
            tokens, last, lead_until = _STATE.unpack(raw)
            return tokens, last, lead_until
        if len(raw) == _STATE_BEFORE.size:
            tokens, last = _STATE_BEFORE.unpack(raw)
            return tokens, last, 0.0
        return self.capacity, self._clock(), 0.0

    def _reserve(self) -> tuple[float, float]:
        """Take one permit now, possibly going into debt: ``(wait before the call, 0)``.

        A ``yield`` caller takes none while a lead lasts: ``(0, the rest of the lead)``, to try again after it.
        """
        with self._lock:
            if self.shared is None:
                self._tokens, self._last, wait = self._take(self._tokens, self._last)
                return wait, 0.0
            fd = self._descriptor()
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                tokens, last, lead_until = self._read(fd)
                now = self._clock()
                if self.precedence == "yield" and now < lead_until:
                    return 0.0, lead_until - now
                tokens, last, wait = self._take(tokens, last)
                if self.precedence == "lead":
                    lead_until = max(lead_until, now + wait + LEAD_HOLD_SECONDS)
                os.pwrite(fd, _STATE.pack(tokens, last, lead_until), 0)
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
            return wait, 0.0

    def acquire(self) -> float:
        """Block until a permit is available (a ``yield`` caller: and no lead lasts); return the seconds waited."""
        if self.unlimited:
            return 0.0
        waited = 0.0
        while True:
            wait, deferred = self._reserve()
            if not deferred:
                break
            self._sleep(deferred)
            waited += deferred
        if wait > 0:
            self._sleep(wait)
            waited += wait
        if waited:
            with self._lock:
                self.waited_seconds += waited
        return waited

    def open_shared(self) -> None:
        """Open (and create) the shared file now, so a folder the process cannot use fails here, not mid-run."""
        if self.shared is not None and not self.unlimited:
            with self._lock:
                self._descriptor()

    def __del__(self) -> None:
        opened = getattr(self, "_file", None)
        if opened is not None and opened[0] == os.getpid():
            os.close(opened[1])
