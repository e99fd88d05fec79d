"""IP-scoped OKX limits shared by every flow-run process through Prefect's rate limits."""

from __future__ import annotations

import httpx
import pytest
from prefect.client.orchestration import get_client

from tasks.ratelimit import HostRateLimiter, limit_name

TIERS_KEY = "ip:127.0.0.1:9:/api/v5/public/position-tiers"
SLOW_KEY = "ip:127.0.0.1:9:/api/v5/public/slow-endpoint"


def test_ip_keys_take_a_prefect_rate_limit_slot_and_account_keys_do_not(
    prefect_server: None,
) -> None:
    limiter = HostRateLimiter()
    limiter.acquire("uid:main:/api/v5/account/positions", 10, 2.0)
    limiter.acquire(TIERS_KEY, 10, 2.0)
    with get_client(sync_client=True) as client:
        created = client.read_global_concurrency_limit_by_name(limit_name(TIERS_KEY))
        names = {limit.name for limit in client.read_global_concurrency_limits(limit=200)}
    # 10 per 2 s: a burst of half the limit, slots coming back at 2.5 per second.
    assert (created.limit, created.slot_decay_per_second) == (5, 2.5)
    assert not any(name.startswith("okx-uid") for name in names)
    assert limit_name(TIERS_KEY).startswith("okx-ip-position-tiers-")


def test_a_burst_takes_every_slot_so_the_next_request_waits(prefect_server: None) -> None:
    """Without timing anything: on a limit whose slots come back once per 400 s, the burst's
    requests hold every slot, and the server refuses one more (423) until one decays."""
    limiter = HostRateLimiter()
    for _ in range(5):
        limiter.acquire(SLOW_KEY, 10, 2000.0)
    with get_client(sync_client=True) as client:
        limit = client.read_global_concurrency_limit_by_name(limit_name(SLOW_KEY))
        assert (limit.limit, limit.active_slots) == (5, 5)
        with pytest.raises(httpx.HTTPStatusError) as refused:
            client.increment_concurrency_slots([limit_name(SLOW_KEY)], 1, "rate_limit")
    assert refused.value.response.status_code == 423
