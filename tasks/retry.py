"""The one retry rule for every posguard task: posguard.errors.is_retryable decides.

Exponential backoff with jitter; no other retry layer exists (the client never retries).
"""

from __future__ import annotations

from typing import Any

from prefect.cache_policies import NO_CACHE
from prefect.tasks import exponential_backoff

from posguard.errors import is_retryable


def retry_condition(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect's retry_condition_fn: retry only what a retry can fix."""
    try:
        state.result()
    except Exception as exc:
        return is_retryable(exc)
    return False


# Inputs are frames and settings-sized data: caching them buys nothing and hashing costs.
RETRYING: dict[str, Any] = {
    "retries": 3,
    "retry_delay_seconds": exponential_backoff(backoff_factor=0.5),
    "retry_jitter_factor": 0.5,
    "retry_condition_fn": retry_condition,
    "timeout_seconds": 120,
    "cache_policy": NO_CACHE,
}
# Tasks that only compute or write the local registry: no retries, still no caching.
LOCAL: dict[str, Any] = {"cache_policy": NO_CACHE, "timeout_seconds": 300}
