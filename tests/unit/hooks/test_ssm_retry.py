"""Retry policy (backoff with full jitter, Retry-After) and the client-side token bucket."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
from urllib3.connection import HTTPConnection
from urllib3.exceptions import MaxRetryError, NewConnectionError, ProtocolError

from sage_sync.hooks.ratelimit import TokenBucket, shared_bucket_file
from sage_sync.hooks.retry import (
    RetryPolicy,
    is_transient_transport_error,
    parse_retry_after,
    request_was_not_sent,
)


def test_full_jitter_stays_under_the_exponential_ceiling() -> None:
    policy = RetryPolicy(max_retries=8, backoff_base=0.5, backoff_max=4.0, rng=random.Random(1))
    for attempt in range(8):
        ceiling = min(4.0, 0.5 * 2**attempt)
        delays = [policy.delay(attempt) for _ in range(200)]
        assert all(0 <= d <= ceiling for d in delays)
        assert max(delays) > ceiling * 0.8  # full jitter spreads over the whole range
    assert policy.attempts == 9


def test_retry_after_wins_and_is_capped() -> None:
    policy = RetryPolicy(retry_after_max=10)
    assert policy.delay(0, retry_after=3) == 3
    assert policy.delay(5, retry_after=3600) == 10
    with pytest.raises(ValueError):
        RetryPolicy(max_retries=-1)


def test_parse_retry_after() -> None:
    now = datetime(2026, 11, 29, 8, 0, 0, tzinfo=UTC)
    assert parse_retry_after("2") == 2.0
    assert parse_retry_after(" 0.5 ") == 0.5
    assert parse_retry_after("Sun, 29 Nov 2026 08:00:30 GMT", now=now) == 30.0
    assert parse_retry_after("Sun, 29 Nov 2026 07:00:00 GMT", now=now) == 0.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None


def test_transport_error_classification() -> None:
    refused = requests.ConnectionError(
        MaxRetryError(None, "/", NewConnectionError(HTTPConnection("127.0.0.1"), "refused"))  # type: ignore[arg-type]
    )
    dropped = requests.ConnectionError(ProtocolError("Connection aborted.", ConnectionResetError()))
    assert request_was_not_sent(requests.ConnectTimeout())
    assert request_was_not_sent(refused)
    assert not request_was_not_sent(dropped)
    assert not request_was_not_sent(requests.ReadTimeout())
    assert is_transient_transport_error(dropped) and is_transient_transport_error(requests.ReadTimeout())
    assert not is_transient_transport_error(requests.exceptions.InvalidURL("x"))
    assert not is_transient_transport_error(ValueError())


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.lock = threading.Lock()

    def time(self) -> float:
        with self.lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        with self.lock:
            self.now += seconds


def test_token_bucket_spaces_calls_at_the_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(4.0, clock=clock.time, sleep=clock.sleep)
    waits = [bucket.acquire() for _ in range(9)]
    assert waits[0] == 0.0
    assert clock.now == pytest.approx(8 * 0.25)  # 9 calls at 4/s take 2 s after the first
    assert bucket.waited_seconds == pytest.approx(2.0)


def test_token_bucket_refills_while_idle_but_not_beyond_capacity() -> None:
    clock = FakeClock()
    bucket = TokenBucket(2.0, capacity=3, clock=clock.time, sleep=clock.sleep)
    for _ in range(3):
        assert bucket.acquire() == 0.0
    clock.now += 100  # a long pause refills only up to the capacity
    assert [bucket.acquire() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.acquire() == pytest.approx(0.5)


def test_unlimited_bucket_never_waits() -> None:
    bucket = TokenBucket(0)
    assert bucket.unlimited and all(bucket.acquire() == 0.0 for _ in range(1000))
    with pytest.raises(ValueError):
        TokenBucket(1, capacity=0.5)


def test_token_bucket_is_thread_safe() -> None:
    """Concurrent callers each reserve their own slot: 40 calls at 10/s need 3.9 s of (fake) waiting in all."""
    clock = FakeClock()
    waits: list[float] = []
    lock = threading.Lock()
    bucket = TokenBucket(
        10.0, clock=clock.time, sleep=lambda s: None
    )  # time stands still: waits must queue up

    def worker() -> None:
        for _ in range(10):
            w = bucket.acquire()
            with lock:
                waits.append(w)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(round(w, 6) for w in waits) == [round(n * 0.1, 6) for n in range(40)]


_SHARED_CALLER = """
import sys, time
from pathlib import Path
from sage_sync.hooks.ratelimit import TokenBucket, shared_bucket_file
bucket = TokenBucket(10.0, shared=Path(sys.argv[1]), clock=lambda: 1000.0, sleep=lambda s: None)
print(" ".join(repr(bucket.acquire()) for _ in range(15)))
"""


def test_m1_processes_naming_one_shared_file_draw_from_one_bucket(tmp_path: Path) -> None:
    """Three processes (each its own bucket object) at 10/s, time standing still: their 45 calls queue in one line.

    Each process alone would wait 0, 0.1 … 1.4 s: three buckets would let three calls through at every slot.
    """
    shared = tmp_path / "rate" / "key.bucket"
    callers = [
        subprocess.Popen(
            [sys.executable, "-c", _SHARED_CALLER, str(shared)],
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        )
        for _ in range(3)
    ]
    waits = [float(w) for caller in callers for w in caller.communicate(timeout=60)[0].split()]
    assert all(caller.returncode == 0 for caller in callers)
    assert sorted(round(w, 6) for w in waits) == [round(n * 0.1, 6) for n in range(45)]
    assert shared.stat().st_mode & 0o777 == 0o600  # the file (named after the key's hash) is the user's only


def test_m1_a_shared_bucket_refills_from_the_clock_it_last_read(tmp_path: Path) -> None:
    """The shared state survives the object: a new bucket on the same file finds the debt and the refill."""
    clock = FakeClock()
    shared = tmp_path / "key.bucket"
    first = TokenBucket(4.0, shared=shared, clock=clock.time, sleep=lambda s: None)
    assert [first.acquire() for _ in range(3)] == [0.0, 0.25, 0.5]
    second = TokenBucket(4.0, shared=shared, clock=clock.time, sleep=lambda s: None)
    assert second.acquire() == pytest.approx(0.75)  # the queue the first one left
    clock.now += 10
    assert second.acquire() == 0.0  # refilled, but only up to the capacity of one
    assert second.acquire() == pytest.approx(0.25)


def test_m1_the_shared_file_is_named_after_the_url_and_key_without_showing_them(tmp_path: Path) -> None:
    one = shared_bucket_file("http://127.0.0.1:1/api/v4", "PUBLICKEY", tmp_path)
    assert one == shared_bucket_file("http://127.0.0.1:1/api/v4", "PUBLICKEY", tmp_path)
    assert one != shared_bucket_file("http://127.0.0.1:1/api/v4", "OTHERKEY", tmp_path)
    assert one != shared_bucket_file("http://127.0.0.1:2/api/v4", "PUBLICKEY", tmp_path)
    assert one.parent == tmp_path and "PUBLICKEY" not in one.name and "127.0.0.1" not in one.name


def test_m1_a_yielding_caller_waits_while_a_leading_one_calls_and_the_rate_stays_the_keys(
    tmp_path: Path,
) -> None:
    """The load of an entity others wait for leads: while it calls, the load nothing waits for takes no permit;
    reads share as before; once the lead's last permit is past its hold, the yielding caller goes on at once."""
    from sage_sync.hooks.ratelimit import LEAD_HOLD_SECONDS

    clock = FakeClock()
    shared = tmp_path / "key.bucket"
    lead = TokenBucket(4.0, shared=shared, clock=clock.time, sleep=lambda s: None, precedence="lead")
    follower = TokenBucket(4.0, shared=shared, clock=clock.time, sleep=clock.sleep, precedence="yield")
    reader = TokenBucket(4.0, shared=shared, clock=clock.time, sleep=lambda s: None)
    assert [lead.acquire() for _ in range(3)] == [0.0, 0.25, 0.5]  # slots at 0, 0.25 and 0.5 s
    assert reader.acquire() == pytest.approx(0.75)  # a read queues behind them, as before
    # The follower waits out the lead (the last permit's slot, 0.5 s, plus the hold), then takes the next slot.
    assert follower.acquire() == pytest.approx(0.5 + LEAD_HOLD_SECONDS)
    assert clock.now == pytest.approx(0.5 + LEAD_HOLD_SECONDS)
    assert follower.acquire() == pytest.approx(0.25)  # then at the key's rate, unchanged
    # A lead that stopped calling holds nobody back past its hold; without a lead a follower simply queues.
    clock.now += 10
    assert lead.acquire() == 0.0
    clock.now += LEAD_HOLD_SECONDS
    assert follower.acquire() == 0.0


def test_m1_a_bucket_file_of_the_earlier_layout_is_read_as_a_bucket_without_lead(tmp_path: Path) -> None:
    import struct

    clock = FakeClock()
    clock.now = 100.0
    shared = tmp_path / "key.bucket"
    shared.write_bytes(struct.pack("<dd", -1.0, 100.0))  # one call queued, as an earlier version wrote it
    follower = TokenBucket(4.0, shared=shared, clock=clock.time, sleep=clock.sleep, precedence="yield")
    assert follower.acquire() == pytest.approx(0.5)  # behind the queued call, no lead to wait for
    assert len(shared.read_bytes()) == 24
