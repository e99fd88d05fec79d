"""IP-scoped OKX limits shared by every flow-run process through Prefect's rate limits."""

from __future__ import annotations

import time

from prefect.client.orchestration import get_client

from tasks.ratelimit import HostRateLimiter, limit_name

TIERS_KEY = "ip:127.0.0.1:9:/api/v5/public/position-tiers"


def test_ip_keys_take_a_prefect_rate_limit_slot_and_account_keys_do_not(
    prefect_server: None,
) -> None:
    limiter = HostRateLimiter()
    limiter.acquire("uid:main:/api/v5/account/positions", 10, 2.0)
    started = time.monotonic()
    for _ in range(7):  # a burst of 5, then slots come back at 2.5 per second
        limiter.acquire(TIERS_KEY, 10, 2.0)
    elapsed = time.monotonic() - started
    with get_client(sync_client=True) as client:
        created = client.read_global_concurrency_limit_by_name(limit_name(TIERS_KEY))
        names = {limit.name for limit in client.read_global_concurrency_limits(limit=200)}
    assert (created.limit, created.slot_decay_per_second) == (5, 2.5)
    assert not any(name.startswith("okx-uid") for name in names)
    assert limit_name(TIERS_KEY).startswith("okx-ip-position-tiers-")
    # Seven requests within a 10-per-2s limit at half its burst: the last ones waited.
    assert elapsed >= 0.5
