"""Request limits as OKX counts them: so many in a sliding window, per key."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable


class SlidingWindow:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.sent: dict[str, deque[float]] = {}
        self.clock = clock

    def allow(self, key: str, limit: int, window: float) -> bool:
        now = self.clock()
        sent = self.sent.setdefault(key, deque())
        while sent and sent[0] <= now - window:
            sent.popleft()
        if len(sent) >= limit:
            return False
        sent.append(now)
        return True
