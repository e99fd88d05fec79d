"""Rate limits shared by every process on this host, through Prefect's own rate limits.

posguard's client keeps each endpoint under OKX's limit within one process. Under Prefect,
flow runs are processes of their own (a work pool's workers, `serve`), and OKX counts
IP-scoped limits (public endpoints: instruments, position tiers, candles, time) for all of
them together: with 20 accounts checked at once, position-tiers answered 429 until retries
ran out. So IP-scoped requests also take a slot of a Prefect global concurrency limit with
slot decay (`rate_limit`), one per endpoint and host. Account-scoped limits stay in-process:
one account's runs are serialized (flows/limits.py).
"""

from __future__ import annotations

import hashlib
import math
import threading
from contextlib import suppress

from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
from prefect.concurrency.sync import rate_limit
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

from posguard.okx.ratelimit import RateLimiter


def limit_name(key: str) -> str:
    """A valid, stable limit name for a limiter key like `ip:host:port:/api/v5/path`."""
    readable = key.rsplit("/", 1)[-1].split(":")[0]
    digest = hashlib.sha1(key.encode(), usedforsecurity=False).hexdigest()[:10]
    return f"okx-ip-{readable}-{digest}"


class HostRateLimiter(RateLimiter):
    """The process's limiter (the flows' clients all use this one instance), plus a Prefect
    rate limit for IP-scoped keys."""

    def __init__(self) -> None:
        super().__init__()
        self._ensured: set[str] = set()
        self._ensure_lock = threading.Lock()

    def acquire(self, key: str, limit: int, window_seconds: float) -> float:
        waited = super().acquire(key, limit, window_seconds)
        if key.startswith("ip:"):
            name = self._ensure(key, limit, window_seconds)
            rate_limit(name, occupy=1, timeout_seconds=120, strict=True)
        return waited

    def _ensure(self, key: str, limit: int, window_seconds: float) -> str:
        name = limit_name(key)
        with self._ensure_lock:
            if name in self._ensured:
                return name
            # Half the limit as burst and half the rate as decay: a full burst followed by a
            # window of decay still stays within `limit` per window.
            burst = max(1, math.floor(limit / 2))
            decay = limit / (2 * window_seconds)
            with get_client(sync_client=True) as client:
                try:
                    client.read_global_concurrency_limit_by_name(name)
                except ObjectNotFound:
                    with suppress(ObjectAlreadyExists):
                        client.create_global_concurrency_limit(
                            GlobalConcurrencyLimitCreate(
                                name=name, limit=burst, slot_decay_per_second=decay
                            )
                        )
            self._ensured.add(name)
        return name


HOST_LIMITER = HostRateLimiter()
