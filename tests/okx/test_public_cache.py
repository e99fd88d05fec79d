"""The public-data cache: one answer serves every account for a while; private never."""

from __future__ import annotations

import httpx
import pytest

from posguard.errors import RateLimitedError
from posguard.okx import OkxClient
from posguard.okx.cache import MAX_RECORDS, PublicCache
from posguard.okx.ratelimit import NoRateLimit
from tests.helpers import FakeClock, FakeOkx, account, answer, envelope

CANDLES = "/api/v5/market/candles"
TIERS = "/api/v5/public/position-tiers"
POSITIONS = "/api/v5/account/positions"
BAR = ["1700000000000", "1.9", "1.95", "1.85", "1.93", "10", "1000", "1930", "1"]


def client(fake: FakeOkx, cache: PublicCache, name: str = "main") -> OkxClient:
    return OkxClient(
        base_url="https://okx.test",
        account_name=name,
        account=account(),
        transport=httpx.MockTransport(fake.handle),
        limiter=NoRateLimit(),
        wall_clock_ms=lambda: fake.server_ms,
        cache=cache,
    )


def fake_exchange() -> FakeOkx:
    fake = FakeOkx()
    fake.routes[CANDLES] = lambda _r: answer(envelope([list(BAR)]))
    fake.routes[TIERS] = lambda _r: answer(envelope([{"tier": "1", "maxLever": "50"}]))
    fake.routes[POSITIONS] = lambda _r: answer(envelope([]))
    return fake


def test_accounts_share_public_answers_but_never_private_ones() -> None:
    fake, clock = fake_exchange(), FakeClock()
    cache = PublicCache(max_age=60, clock=clock)
    for name in ("main", "desk", "other"):
        with client(fake, cache, name) as okx:
            rows = okx.candles("XRP-USDT-SWAP", bar="1m", limit=1).records
            okx.position_tiers("SWAP", "cross", inst_family="XRP-USDT")
            okx.positions(inst_type="SWAP")
            rows[0][4] = "changed by a caller"  # must not leak into the next answer
    assert len(fake.requests_to(CANDLES)) == 1
    assert len(fake.requests_to(TIERS)) == 1
    assert len(fake.requests_to(POSITIONS)) == 3
    assert (cache.hits, cache.misses) == (4, 2)
    with client(fake, cache) as okx:
        assert okx.candles("XRP-USDT-SWAP", bar="1m", limit=1).records[0][4] == "1.93"
        okx.candles("BTC-USDT-SWAP", bar="1m", limit=1)  # another request, another answer
    assert len(fake.requests_to(CANDLES)) == 2


def test_answers_expire_and_candles_never_outlive_their_bar() -> None:
    fake, clock = fake_exchange(), FakeClock()
    cache = PublicCache(max_age=300, clock=clock)
    with client(fake, cache) as okx:
        okx.candles("XRP-USDT-SWAP", bar="1m", limit=1)
        okx.position_tiers("SWAP", "cross", inst_family="XRP-USDT")
        clock.sleep(61)  # past the 1m bar, within max_age
        okx.candles("XRP-USDT-SWAP", bar="1m", limit=1)
        okx.position_tiers("SWAP", "cross", inst_family="XRP-USDT")
        clock.sleep(240)  # 301 s after the first tiers answer
        okx.position_tiers("SWAP", "cross", inst_family="XRP-USDT")
    assert len(fake.requests_to(CANDLES)) == 2
    assert len(fake.requests_to(TIERS)) == 2


def test_errors_are_not_cached() -> None:
    fake, clock = fake_exchange(), FakeClock()
    answers = [answer({"code": "50011", "msg": "Too Many Requests", "data": []}, status=429)]
    fake.routes[CANDLES] = lambda _r: answers.pop() if answers else answer(envelope([list(BAR)]))
    cache = PublicCache(clock=clock)
    with client(fake, cache) as okx:
        with pytest.raises(RateLimitedError, match="50011"):
            okx.candles("XRP-USDT-SWAP", bar="1m", limit=1)
        assert okx.candles("XRP-USDT-SWAP", bar="1m", limit=1).records[0][4] == "1.93"
    assert len(fake.requests_to(CANDLES)) == 2


def test_large_answers_are_not_kept() -> None:
    fake, clock = fake_exchange(), FakeClock()
    fake.routes[CANDLES] = lambda _r: answer(envelope([list(BAR)] * (MAX_RECORDS + 1)))
    cache = PublicCache(clock=clock)
    with client(fake, cache) as okx:
        okx.candles("XRP-USDT-SWAP", bar="1m", limit=1)
        okx.candles("XRP-USDT-SWAP", bar="1m", limit=1)
    assert len(fake.requests_to(CANDLES)) == 2


def test_callers_asking_for_the_same_answer_at_once_send_one_request() -> None:
    """A round's threads asked for the same candles at the same moment: each missed the cache
    and spent a slot of the IP's limit (800 requests for 50 instruments over 16 threads)."""
    import threading

    fake, everyone_asked = fake_exchange(), threading.Event()
    answered = fake.routes[CANDLES]
    arrived: list[int] = []

    def slow(request: httpx.Request) -> httpx.Response:
        # Without single flight all eight arrive here and the last lets them go; with it the
        # first holds its answer a second while the other seven wait for it.
        arrived.append(1)
        if len(arrived) == 8:
            everyone_asked.set()
        everyone_asked.wait(timeout=1)
        return answered(request)

    fake.routes[CANDLES] = slow
    cache = PublicCache(max_age=60)
    results: list[str] = []

    def ask(name: str) -> None:
        with client(fake, cache, name) as okx:
            results.append(okx.candles("XRP-USDT-SWAP", bar="1m", limit=1).records[0][4])

    askers = [threading.Thread(target=ask, args=(f"acct{n}",)) for n in range(8)]
    for asker in askers:
        asker.start()
    for asker in askers:
        asker.join(timeout=30)
    assert results == ["1.93"] * 8
    assert len(fake.requests_to(CANDLES)) == 1
