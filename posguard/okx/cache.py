"""A short-lived cache of public market data, shared by the clients of one process.

A desk's accounts trade the same instruments: checking 200 of them asked OKX for the same
candles 200 times, and OKX's IP-scoped limits (candles 40 per 2 s, position tiers 10 per 2 s)
made that the slowest part of a cycle. Public answers depend on the host and the request
only, so one answer can serve every account for a little while: at most `max_age` seconds
(a minute by default; candles within the current bar). Opt-in: clients get it only when built
with it (the flows' tasks do), so tests and the CLI always see the exchange's latest answer.
Private endpoints are never cached.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from posguard.bars import BAR_MS
from posguard.okx import endpoints as ep

CACHEABLE = {ep.INSTRUMENTS.path, ep.POSITION_TIERS.path, ep.CANDLES.path}
# Larger answers are asked for again rather than kept: a cache is for small shared answers
# (OKX lists a few hundred swaps; a candle page is 300 rows), not for a load test's 100k.
MAX_RECORDS = 5_000


class PublicCache:
    def __init__(self, max_age: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_age = max_age
        self._clock = clock
        self._lock = threading.Lock()
        self._answers: dict[str, tuple[float, list[Any]]] = {}
        self._filling: dict[str, threading.Lock] = {}
        self.hits = 0
        self.misses = 0

    def age_limit(self, endpoint: ep.Endpoint, params: dict[str, str]) -> float:
        if endpoint.path == ep.CANDLES.path:
            # A candle window is only as fresh as its bar: never keep it past one bar.
            bar_ms = BAR_MS.get(params.get("bar", "1m"), 60_000)
            return min(self.max_age, bar_ms / 1000)
        return self.max_age

    @contextmanager
    def single_flight(self, key: str) -> Iterator[None]:
        """Held while one caller asks the exchange for `key`: the others wait, then find
        its answer cached (a round's threads asked for the same candles at once, each
        spending a slot of the IP's limit)."""
        with self._lock:
            lock = self._filling.setdefault(key, threading.Lock())
        with lock:
            yield

    def get(self, key: str, max_age: float) -> list[Any] | None:
        with self._lock:
            found = self._answers.get(key)
            if found is None or self._clock() - found[0] > max_age:
                self.misses += 1
                return None
            self.hits += 1
            return _copy(found[1])

    def put(self, key: str, data: list[Any]) -> None:
        if len(data) > MAX_RECORDS:
            return
        with self._lock:
            now = self._clock()
            stale = [k for k, (at, _) in self._answers.items() if now - at > self.max_age]
            for old in stale:
                del self._answers[old]
            self._answers[key] = (now, _copy(data))


def _copy(data: list[Any]) -> list[Any]:
    """Each caller gets records of its own to change. OKX records are flat (strings, and
    candles are lists of strings), so a copy per record shares the immutable values: a
    deep copy of a large instruments answer cost as much memory as the answer itself."""
    return [
        dict(item) if isinstance(item, dict) else list(item) if isinstance(item, list) else item
        for item in data
    ]
