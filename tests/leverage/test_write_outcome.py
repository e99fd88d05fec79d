"""A set-leverage whose answer is lost: read back, record what is true, never resend."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pandas as pd
import pytest

from posguard.errors import OutcomeUnknownError, TransientExchangeError, is_retryable
from posguard.okx import OkxClient
from posguard.registry import Registry, sqlite_url
from posguard.settings import AccountSettings, LeverageConfig
from posguard.sim import SimExchange, SimServer
from posguard.stages.leverage_apply import apply_plan
from posguard.stages.leverage_plan import recalculate
from tests.helpers import FakeOkx, answer, envelope
from tests.sim.conftest import MAIN, shipped

SET_LEVERAGE = "/api/v5/account/set-leverage"
LEVERAGE_INFO = "/api/v5/account/leverage-info"
CONFIG = LeverageConfig(target_vol=0.25, window=60)
RESET = "[Errno 104] Connection reset by peer"


class LostAnswers:
    """A MockTransport handler in front of the simulator that loses set-leverage answers.

    `applied` says whether the simulator receives the write (its state changes) before the
    connection fails; `read_back_fails` makes every leverage-info after a lost answer fail.
    """

    def __init__(
        self,
        failure: type[httpx.TransportError],
        *,
        applied: bool,
        read_back_fails: bool = False,
    ) -> None:
        self.failure = failure
        self.applied = applied
        self.read_back_fails = read_back_fails
        self.writes: list[bytes] = []
        self.lost = False
        self.upstream = httpx.HTTPTransport()

    def __enter__(self) -> LostAnswers:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.upstream.close()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == SET_LEVERAGE:
            self.writes.append(request.content)
            if self.applied:
                self.forward(request)
            self.lost = True
            message = RESET if self.failure is httpx.ReadError else "timed out"
            raise self.failure(message, request=request)
        if request.url.path == LEVERAGE_INFO and self.lost and self.read_back_fails:
            raise httpx.ConnectError("connection refused", request=request)
        return self.forward(request)

    def forward(self, request: httpx.Request) -> httpx.Response:
        response = self.upstream.handle_request(request)
        content = response.read()
        response.close()
        return httpx.Response(
            response.status_code,
            content=content,
            headers={"content-type": response.headers.get("content-type", "application/json")},
        )


def client_through(server: SimServer, handler: LostAnswers) -> OkxClient:
    account = AccountSettings(
        api_key=MAIN["api_key"],
        secret_key=MAIN["secret_key"],
        passphrase=MAIN["passphrase"],
        demo=True,
        base_url=server.base_url,
    )
    return OkxClient(
        base_url=server.base_url,
        account_name="main",
        account=account,
        transport=httpx.MockTransport(handler),
    )


def sim_levers(exchange: SimExchange) -> dict[tuple[str, str, str], str]:
    positions = exchange.state()["accounts"]["main"]["positions"]
    return {(p["instId"], p["mgnMode"], p["posSide"]): p["lever"] for p in positions}


# The hedged account's plan at the default settings changes two scopes: XRP's shared cross
# scope (both legs) 5x -> 7x, and BTC's isolated short leg 3x -> 5x.
CHANGES = {
    ("XRP-USDT-SWAP", "cross", "long+short"): 7.0,
    ("BTC-USDT-SWAP", "isolated", "short"): 5.0,
}


@pytest.mark.parametrize("failure", [httpx.ReadTimeout, httpx.ReadError], ids=["timeout", "reset"])
@pytest.mark.parametrize("applied", [True, False], ids=["after-the-write", "before-the-write"])
def test_a_lost_answer_is_read_back_and_recorded_as_what_happened(
    tmp_path: Path, failure: type[httpx.TransportError], applied: bool
) -> None:
    exchange = SimExchange(shipped("hedged-account"))
    with (
        LostAnswers(failure, applied=applied) as handler,
        SimServer(exchange) as server,
        client_through(server, handler) as client,
        Registry(sqlite_url(tmp_path / "r.db")) as registry,
    ):
        report = recalculate(client, CONFIG, apply=True, registry=registry)
        recorded = registry.leverage_changes("main")
    expected = "applied" if applied else "not_applied"
    outcomes = {(o.instId, o.mgnMode, o.posSide): o for o in report.outcomes}
    assert {k: o.to_lever for k, o in outcomes.items()} == CHANGES
    assert {o.outcome for o in report.outcomes} == {expected}
    for outcome in report.outcomes:
        assert f"no usable answer ({failure.__name__}" in outcome.reason
    assert len(handler.writes) == len(CHANGES)  # one call per scope, never resent
    levers = sim_levers(exchange)
    xrp = "7" if applied else "5"
    btc_short = "5" if applied else "3"
    assert levers[("XRP-USDT-SWAP", "cross", "long")] == xrp
    assert levers[("XRP-USDT-SWAP", "cross", "short")] == xrp
    assert levers[("BTC-USDT-SWAP", "isolated", "short")] == btc_short
    # One row per position the scope covers, each with the truthful outcome.
    assert sorted((r["inst_id"], r["pos_side"], r["outcome"]) for r in recorded) == [
        ("BTC-USDT-SWAP", "short", expected),
        ("XRP-USDT-SWAP", "long", expected),
        ("XRP-USDT-SWAP", "short", expected),
    ]


def test_when_the_read_back_fails_too_the_outcome_is_unknown(tmp_path: Path) -> None:
    exchange = SimExchange(shipped("hedged-account"))
    with (
        LostAnswers(httpx.ReadError, applied=True, read_back_fails=True) as handler,
        SimServer(exchange) as server,
        client_through(server, handler) as client,
        Registry(sqlite_url(tmp_path / "r.db")) as registry,
    ):
        report = recalculate(client, CONFIG, apply=True, registry=registry)
        recorded = registry.leverage_changes("main")
    assert {o.outcome for o in report.outcomes} == {"unknown"}
    assert all("read-back failed" in o.reason for o in report.outcomes)
    assert len(handler.writes) == len(CHANGES)
    assert {r["outcome"] for r in recorded} == {"unknown"}
    assert "sim-main-secret" not in " ".join(o.reason for o in report.outcomes)


def test_a_reset_and_a_timeout_on_a_post_are_alike_and_not_retried() -> None:
    def reset(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadError(RESET, request=request)

    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    fake = FakeOkx()
    caught: list[Exception] = []
    for handler in (reset, slow):
        fake.routes[SET_LEVERAGE] = handler
        with fake.client() as client, pytest.raises(OutcomeUnknownError) as error:
            client.set_leverage(lever="3", mgn_mode="cross", inst_id="XRP-USDT-SWAP")
        caught.append(error.value)
    assert [is_retryable(e) for e in caught] == [False, False]
    assert all("unknown" in str(e) for e in caught)
    # A read that hits a reset is still a plain transient error: repeating a read is safe.
    fake.routes["/api/v5/account/positions"] = reset
    with fake.client() as client, pytest.raises(TransientExchangeError) as read:
        client.positions()
    assert not isinstance(read.value, OutcomeUnknownError)
    assert is_retryable(read.value)


def test_a_plan_with_two_rows_for_one_scope_sends_one_call() -> None:
    lever = {"value": "5"}

    def set_leverage(request: httpx.Request) -> httpx.Response:
        lever["value"] = json.loads(request.content)["lever"]
        return answer(envelope([{"instId": "XRP-USDT-SWAP", "lever": lever["value"]}]))

    def leverage_info(_request: httpx.Request) -> httpx.Response:
        rows = [
            {
                "instId": "XRP-USDT-SWAP",
                "mgnMode": "cross",
                "posSide": side,
                "lever": lever["value"],
            }
            for side in ("long", "short")
        ]
        return answer(envelope(rows))

    fake = FakeOkx(routes={SET_LEVERAGE: set_leverage, LEVERAGE_INFO: leverage_info})
    row = {
        "instId": "XRP-USDT-SWAP",
        "mgnMode": "cross",
        "posSide": "long+short",
        "legs": [{"posSide": "long"}, {"posSide": "short"}],
        "lever": 5.0,
        "target": 25.0,
        "action": "raise",
    }
    plan = pd.DataFrame([row, {**row, "target": 40.0}])
    with fake.client() as client:
        outcomes = apply_plan(client, plan, registry=None, account="main", dry_run=False)
    assert [(o.outcome, o.to_lever) for o in outcomes] == [("applied", 25.0), ("duplicate", 40.0)]
    assert len(fake.requests_to(SET_LEVERAGE)) == 1
    assert lever["value"] == "25"
