"""Test fakes at the seams: an OKX answer builder for httpx.MockTransport."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from posguard.okx.client import OkxClient
from posguard.okx.ratelimit import RateLimiter
from posguard.settings import AccountSettings

# Obviously fake credentials: tests must never hold anything that looks real.
FAKE_KEY = "test-key-not-real"
FAKE_SECRET = "test-secret-not-real"
FAKE_PASSPHRASE = "test-passphrase-not-real"


def account(**overrides: Any) -> AccountSettings:
    values: dict[str, Any] = {
        "api_key": FAKE_KEY,
        "secret_key": FAKE_SECRET,
        "passphrase": FAKE_PASSPHRASE,
        "base_url": "https://okx.test",
    }
    values.update(overrides)
    return AccountSettings(**values)


def envelope(data: Any, code: str = "0", msg: str = "") -> dict[str, Any]:
    return {"code": code, "msg": msg, "data": data}


def answer(payload: Any, status: int = 200) -> httpx.Response:
    return httpx.Response(status, content=json.dumps(payload).encode())


class FakeClock:
    """Monotonic time and sleep for the rate limiter, without real waiting."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@dataclass
class FakeOkx:
    """Routes requests by path to handlers; records every request it saw."""

    routes: dict[str, Callable[[httpx.Request], httpx.Response]] = field(default_factory=dict)
    seen: list[httpx.Request] = field(default_factory=list)
    server_ms: int = 1_700_000_000_000

    def __post_init__(self) -> None:
        self.routes.setdefault(
            "/api/v5/public/time",
            lambda _r: answer(envelope([{"ts": str(self.server_ms)}])),
        )

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        route = self.routes.get(request.url.path)
        if route is None:
            return answer(
                {"code": 404, "data": {}, "msg": "Not Found", "error_code": "404"}, status=404
            )
        return route(request)

    def requests_to(self, path: str) -> list[httpx.Request]:
        return [r for r in self.seen if r.url.path == path]

    def client(
        self,
        *,
        demo: bool = False,
        clock: FakeClock | None = None,
        wall_ms: Callable[[], int] | None = None,
    ) -> OkxClient:
        fake_clock = clock or FakeClock()
        return OkxClient(
            base_url="https://okx.test",
            account_name="main",
            account=account(demo=demo),
            transport=httpx.MockTransport(self.handle),
            limiter=RateLimiter(clock=fake_clock, sleep=fake_clock.sleep),
            wall_clock_ms=wall_ms or (lambda: self.server_ms),
        )


def xrp_position(**fields: str) -> dict[str, Any]:
    """The incident's XRP position as OKX sends it (108 contracts of 100 XRP at 1.93): it
    passes every position rule; `fields` change it."""
    record: dict[str, Any] = {
        "instType": "SWAP",
        "instId": "XRP-USDT-SWAP",
        "mgnMode": "cross",
        "posSide": "net",
        "pos": "108",
        "avgPx": "1.93",
        "markPx": "1.93",
        "lever": "5",
        "notionalUsd": "20844",
        "liqPx": "",
        "posId": "1",
        "cTime": "1",
        "uTime": "1",
    }
    record.update(fields)
    return record


def free_port() -> int:
    """A port nothing listens on now, for a server a test starts."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
