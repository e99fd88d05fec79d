"""Client-side rate limiting: keep each endpoint under its documented limit per account.

A sliding window per key (endpoint + account, or endpoint + IP). When OKX still answers
50011/429 (another process shares the key), the key is blocked for one window so that the
next attempt (a Prefect retry) waits instead of hammering: backoff lives here, retries do not.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence


def slot_wait(sent: Sequence[float], now: float, limit: int, window_seconds: float) -> float:
    """Seconds until one more request fits `limit` per window (0.0: it fits now), given the
    stamps still inside the window, oldest first: the one that must leave first is the
    `limit`-th from the newest."""
    if len(sent) < limit:
        return 0.0
    # Never 0.0 when full (0.0 means "go"), whatever the float rounding.
    return max(sent[len(sent) - limit] + window_seconds - now, 1e-6)


class RateLimiter:
    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._sent: dict[str, deque[float]] = {}
        self._blocked_until: dict[str, float] = {}

    def acquire(self, key: str, limit: int, window_seconds: float) -> float:
        """Wait until one more request under `key` stays within `limit` per window.

        Returns the seconds waited (0.0 when no wait was needed).
        """
        waited = 0.0
        while True:
            with self._lock:
                now = self._clock()
                sent = self._sent.setdefault(key, deque())
                while sent and sent[0] <= now - window_seconds:
                    sent.popleft()
                wait = max(0.0, self._blocked_until.get(key, 0.0) - now)
                if wait == 0.0:
                    wait = slot_wait(sent, now, limit, window_seconds)
                if wait == 0.0:
                    sent.append(now)
                    return waited
            self._sleep(wait)
            waited += wait

    def penalize(self, key: str, seconds: float) -> None:
        """Block `key` for `seconds`, after the exchange said we were too fast."""
        with self._lock:
            until = self._clock() + seconds
            self._blocked_until[key] = max(self._blocked_until.get(key, 0.0), until)


# One limiter per process: every client for the same account shares the account's budget.
SHARED_LIMITER = RateLimiter()


class NoRateLimit(RateLimiter):
    """A limiter that never waits: for throughput benchmarks against the simulator only."""

    def acquire(self, key: str, limit: int, window_seconds: float) -> float:
        return 0.0
