"""The one retry rule for every posguard task: posguard.errors.is_retryable decides.

Exponential backoff with jitter; no other retry layer exists (the client never retries).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any, TypeVar

from prefect.cache_policies import NO_CACHE
from prefect.tasks import exponential_backoff

from posguard.errors import is_retryable

T = TypeVar("T")


def retry_condition(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect's retry_condition_fn: retry only what a retry can fix."""
    try:
        state.result()
    except Exception as exc:
        return is_retryable(exc)
    return False


RETRIES = 3
BACKOFF_FACTOR = 0.5
JITTER_FACTOR = 0.5

# Inputs are frames and settings-sized data: caching them buys nothing and hashing costs.
RETRYING: dict[str, Any] = {
    "retries": RETRIES,
    "retry_delay_seconds": exponential_backoff(backoff_factor=BACKOFF_FACTOR),
    "retry_jitter_factor": JITTER_FACTOR,
    "retry_condition_fn": retry_condition,
    "timeout_seconds": 120,
    "cache_policy": NO_CACHE,
}
# Tasks that only compute or write the local registry: no retries, still no caching.
LOCAL: dict[str, Any] = {"cache_policy": NO_CACHE, "timeout_seconds": 300}


def with_retries(call: Callable[[], T], sleep: Callable[[float], None] = time.sleep) -> T:
    """`call` under the same rule as a RETRYING task, for work that runs inside one task for
    many accounts (a round's reads): retried only when `is_retryable` says a retry can fix
    it, after the same backoff (0.5, 1, 2 s, each plus up to half again of jitter)."""
    for attempt in range(RETRIES + 1):
        try:
            return call()
        except Exception as exc:
            if attempt == RETRIES or not is_retryable(exc):
                raise
            delay = BACKOFF_FACTOR * 2**attempt
            sleep(delay + random.uniform(0, JITTER_FACTOR * delay))
    raise AssertionError("unreachable: the last attempt returns or raises")
