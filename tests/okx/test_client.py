"""The OKX client over httpx.MockTransport: every way an answer can go wrong."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

import httpx
import pandas as pd
import pytest

from posguard.errors import (
    AuthError,
    ClockSkewError,
    ExchangeTimeoutError,
    MalformedResponseError,
    RateLimitedError,
    RejectedError,
    TransientExchangeError,
    is_retryable,
)
from posguard.frames import parse_instruments, parse_positions
from posguard.okx.envelope import CallContext, decode
from posguard.okx.signing import okx_timestamp, verify
from posguard.stages.fetch import INSTRUMENT_FIELDS, POSITION_FIELDS
from tests.conftest import SAMPLES
from tests.helpers import (
    FAKE_KEY,
    FAKE_PASSPHRASE,
    FAKE_SECRET,
    FakeClock,
    FakeOkx,
    answer,
    envelope,
)

POSITIONS = "/api/v5/account/positions"
XRP = {
    "instId": "XRP-USDT-SWAP",
    "instType": "SWAP",
    "mgnMode": "cross",
    "posSide": "net",
    "pos": "108",
    "lever": "5",
}


def positions_route(fake: FakeOkx, *responses: httpx.Response) -> None:
    queue = list(responses)
    fake.routes[POSITIONS] = lambda _r: queue.pop(0) if len(queue) > 1 else queue[0]


def test_private_request_is_signed_as_sent() -> None:
    fake = FakeOkx()
    positions_route(fake, answer(envelope([XRP])))
    with fake.client() as client:
        rows = client.positions(inst_ids=["XRP-USDT-SWAP", "BTC-USDT-SWAP"])
    assert rows == [XRP]
    request = fake.requests_to(POSITIONS)[0]
    sent_path = request.url.raw_path.decode()
    headers = request.headers
    assert headers["OK-ACCESS-KEY"] == FAKE_KEY
    assert headers["OK-ACCESS-PASSPHRASE"] == FAKE_PASSPHRASE
    assert headers["OK-ACCESS-TIMESTAMP"] == okx_timestamp(fake.server_ms)
    assert verify(
        FAKE_SECRET, headers["OK-ACCESS-SIGN"], headers["OK-ACCESS-TIMESTAMP"], "GET", sent_path, ""
    )
    assert parse_qs(request.url.query.decode())["instId"] == ["XRP-USDT-SWAP,BTC-USDT-SWAP"]
    assert "x-simulated-trading" not in headers


def test_post_body_is_signed_byte_for_byte_and_lever_is_a_string() -> None:
    fake = FakeOkx()
    fake.routes["/api/v5/account/set-leverage"] = lambda r: answer(
        envelope([{**json.loads(r.content), "posSide": ""}])
    )
    with fake.client() as client:
        client.set_leverage(lever="5", mgn_mode="cross", inst_id="XRP-USDT-SWAP")
    request = fake.requests_to("/api/v5/account/set-leverage")[0]
    body = request.content.decode()
    assert json.loads(body) == {"lever": "5", "mgnMode": "cross", "instId": "XRP-USDT-SWAP"}
    assert request.headers["Content-Type"] == "application/json"
    assert verify(
        FAKE_SECRET,
        request.headers["OK-ACCESS-SIGN"],
        request.headers["OK-ACCESS-TIMESTAMP"],
        "POST",
        "/api/v5/account/set-leverage",
        body,
    )


def test_demo_accounts_send_the_simulated_trading_header() -> None:
    fake = FakeOkx()
    positions_route(fake, answer(envelope([])))
    with fake.client(demo=True) as client:
        client.positions()
    assert fake.requests_to(POSITIONS)[0].headers["x-simulated-trading"] == "1"


def test_public_endpoints_carry_no_credentials() -> None:
    fake = FakeOkx()
    fake.routes["/api/v5/public/instruments"] = lambda _r: answer(envelope([]))
    with fake.client() as client:
        client.instruments("SWAP")
    request = fake.requests_to("/api/v5/public/instruments")[0]
    assert "OK-ACCESS-KEY" not in request.headers
    assert not fake.requests_to("/api/v5/public/time")  # no clock sync for public calls


def test_clock_offset_is_measured_from_public_time() -> None:
    fake = FakeOkx()
    positions_route(fake, answer(envelope([])))
    local = fake.server_ms - 45_000  # this machine is 45 s behind OKX
    with fake.client(wall_ms=lambda: local) as client:
        client.positions()
        assert client.clock_offset_ms == 45_000
    signed = fake.requests_to(POSITIONS)[0].headers["OK-ACCESS-TIMESTAMP"]
    assert signed == okx_timestamp(fake.server_ms)


def test_a_rate_limit_wait_never_puts_the_clock_ahead_of_okx() -> None:
    """Seen in the latency benchmark: public/time's limit (10 per 2 s per IP) made a sync
    wait, the wait counted as half network, and snapshots were stamped 0.7-1.5 s later
    than OKX's clock: the drift engine concluded before the grace window had passed."""
    clock = FakeClock()  # the limiter's clock; its sleeps move this machine's clock too
    behind_ms = 45_000  # this machine's clock is 45 s behind OKX

    def wall_ms() -> int:
        return int(clock.now * 1000)

    fake = FakeOkx()
    fake.routes["/api/v5/public/time"] = lambda _r: answer(
        envelope([{"ts": str(wall_ms() + behind_ms)}])
    )
    with fake.client(clock=clock, wall_ms=wall_ms) as client:
        for _ in range(10):  # the window's budget, spent by other runs of the process
            client.sync_clock()
        client.sync_clock()  # waits for the window: 2 s on this machine's clock
        assert clock.slept
        assert client.now_ms() <= wall_ms() + behind_ms


def test_the_clock_offset_is_at_least_okx_time_minus_the_answer_arrival() -> None:
    """OKX stamps its answer before it arrives: the kept offset is that lower bound."""
    stamps = iter([1_000, 3_000])  # asked at 1.000 s, answered at 3.000 s (local)
    fake = FakeOkx()
    with fake.client(wall_ms=lambda: next(stamps)) as client:
        client.sync_clock()
    assert client.clock_offset_ms == fake.server_ms - 3_000


def test_50102_resyncs_the_clock_then_succeeds() -> None:
    fake = FakeOkx()
    positions_route(
        fake,
        answer({"code": "50102", "msg": "Timestamp request expired", "data": []}, 401),
        answer(envelope([XRP])),
    )
    with fake.client() as client:
        assert client.positions() == [XRP]
    assert len(fake.requests_to("/api/v5/public/time")) == 2  # first sync, then the re-sync
    assert len(fake.requests_to(POSITIONS)) == 2


def test_50102_twice_is_a_clock_skew_error() -> None:
    fake = FakeOkx()
    positions_route(fake, answer({"code": "50102", "msg": "Timestamp request expired"}, 401))
    with fake.client() as client, pytest.raises(ClockSkewError, match="50102"):
        client.positions()


@pytest.mark.parametrize(
    ("status", "payload"),
    [
        (429, {"msg": "Too Many Requests", "code": "50011"}),
        (200, {"msg": "Too Many Requests", "code": "50011"}),
        (429, "not json at all"),
    ],
)
def test_rate_limited_answers_back_off_the_next_request(status: int, payload: object) -> None:
    fake = FakeOkx()
    limited = (
        httpx.Response(status, content=payload.encode())
        if isinstance(payload, str)
        else answer(payload, status)
    )
    positions_route(fake, limited, answer(envelope([])))
    clock = FakeClock()
    with fake.client(clock=clock) as client:
        with pytest.raises(RateLimitedError) as caught:
            client.positions()
        assert is_retryable(caught.value)
        assert clock.slept == []
        client.positions()  # the retry Prefect would make
    # The limiter held the retry back for one rate window (2 s) instead of hammering.
    assert sum(clock.slept) == pytest.approx(2.0)


def test_client_side_limit_keeps_under_the_documented_rate() -> None:
    fake = FakeOkx()
    positions_route(fake, answer(envelope([])))
    clock = FakeClock()
    with fake.client(clock=clock) as client:
        for _ in range(25):  # positions: 10 requests per 2 s per account
            client.positions()
    assert len(fake.requests_to(POSITIONS)) == 25
    assert sum(clock.slept) == pytest.approx(4.0)


@pytest.mark.parametrize(
    ("status", "code", "error"),
    [
        (503, "50001", TransientExchangeError),
        (429, "50013", RateLimitedError),
        (200, "50013", TransientExchangeError),
        (500, "50026", TransientExchangeError),
        (502, None, TransientExchangeError),
    ],
)
def test_server_side_trouble_is_retryable(status: int, code: str | None, error: type) -> None:
    fake = FakeOkx()
    payload = {"code": code, "msg": "Service temporarily unavailable"} if code else "<html>502"
    response = answer(payload, status) if code else httpx.Response(status, content=b"<html>502")
    positions_route(fake, response)
    with fake.client() as client, pytest.raises(error) as caught:
        client.positions()
    assert is_retryable(caught.value)
    assert caught.value.http_status == status


@pytest.mark.parametrize(
    ("code", "msg", "hint"),
    [
        ("50113", "Invalid Sign", "secret"),
        ("50111", "Invalid OK-ACCESS-KEY", "API key"),
        ("50105", 'Request header "OK-ACCESS-PASSPHRASE" incorrect.', "passphrase"),
        ("50101", "APIKey does not match current environment.", "demo"),
    ],
)
def test_auth_errors_are_actionable_and_hold_no_secret(code: str, msg: str, hint: str) -> None:
    fake = FakeOkx()
    positions_route(fake, answer({"code": code, "msg": msg}, 401))
    with fake.client() as client, pytest.raises(AuthError) as caught:
        client.positions()
    text = str(caught.value)
    assert code in text
    assert "'main'" in text
    assert hint in text
    assert not is_retryable(caught.value)
    for secret in (FAKE_SECRET, FAKE_PASSPHRASE, FAKE_KEY):
        assert secret not in text
        assert secret not in repr(caught.value.to_dict())


def test_malformed_body_is_a_clear_non_retryable_error() -> None:
    fake = FakeOkx()
    positions_route(fake, httpx.Response(200, content=b'{"code":"0","data":[{"instId"'))
    with fake.client() as client, pytest.raises(MalformedResponseError) as caught:
        client.positions()
    assert "not JSON" in str(caught.value)
    assert POSITIONS in str(caught.value)
    assert not is_retryable(caught.value)


def test_json_that_is_not_an_envelope_is_malformed() -> None:
    fake = FakeOkx()
    positions_route(fake, answer([1, 2, 3]))
    with (
        fake.client() as client,
        pytest.raises(MalformedResponseError, match="not an OKX envelope"),
    ):
        client.positions()


def test_http_200_with_an_error_code_is_an_error() -> None:
    fake = FakeOkx()
    positions_route(
        fake, answer({"code": "51001", "msg": "Instrument ID doesn't exist", "data": []})
    )
    with fake.client() as client, pytest.raises(RejectedError) as caught:
        client.positions(inst_ids=["NOPE-USDT-SWAP"])
    assert caught.value.code == "51001"
    assert caught.value.http_status == 200
    assert "delisted" in str(caught.value)
    assert not is_retryable(caught.value)


def test_gateway_404_with_a_numeric_code(samples) -> None:  # type: ignore[no-untyped-def]
    body = (samples / "error_404_unknown_path_nautilus.json").read_bytes()
    fake = FakeOkx()
    positions_route(fake, httpx.Response(404, content=body))
    with fake.client() as client, pytest.raises(RejectedError) as caught:
        client.positions()
    assert caught.value.code == "404"
    assert "base_url" in str(caught.value)
    assert not is_retryable(caught.value)


def test_timeout_is_retryable_for_reads_only() -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    fake = FakeOkx()
    fake.routes[POSITIONS] = slow
    fake.routes["/api/v5/account/set-leverage"] = slow
    with fake.client() as client:
        with pytest.raises(ExchangeTimeoutError) as read:
            client.positions()
        with pytest.raises(ExchangeTimeoutError) as write:
            client.set_leverage(lever="3", mgn_mode="cross", inst_id="XRP-USDT-SWAP")
    assert is_retryable(read.value)
    assert not is_retryable(write.value)  # the outcome of a timed-out write is unknown


def test_connection_refused_is_transient() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    fake = FakeOkx()
    fake.routes[POSITIONS] = refuse
    with fake.client() as client, pytest.raises(TransientExchangeError, match="could not reach"):
        client.positions()


def test_write_endpoint_item_errors_are_read_from_scode(samples) -> None:  # type: ignore[no-untyped-def]
    fake = FakeOkx()
    fake.routes["/api/v5/account/set-leverage"] = lambda _r: answer(
        {
            "code": "1",
            "msg": "",
            "data": [
                {"instId": "XRP-USDT-SWAP", "sCode": "59107", "sMsg": "cancel pending cross orders"}
            ],
        }
    )
    with fake.client() as client, pytest.raises(RejectedError) as caught:
        client.set_leverage(lever="3", mgn_mode="cross", inst_id="XRP-USDT-SWAP")
    assert caught.value.code == "59107"
    assert caught.value.inst_id == "XRP-USDT-SWAP"
    assert "XRP-USDT-SWAP" in str(caught.value)


def test_positions_history_pages_with_after_until_a_short_page() -> None:
    records = [
        {
            "instType": "SWAP",
            "instId": "XRP-USDT-SWAP",
            "uTime": str(1000 - i),
            "cTime": "1",
            "type": "2",
        }
        for i in range(250)
    ]

    def route(request: httpx.Request) -> httpx.Response:
        query = parse_qs(request.url.query.decode())
        limit = int(query["limit"][0])
        after = int(query.get("after", ["99999"])[0])
        older = [r for r in records if int(r["uTime"]) < after]
        return answer(envelope(older[:limit]))

    fake = FakeOkx()
    fake.routes["/api/v5/account/positions-history"] = route
    with fake.client() as client:
        rows = client.positions_history(limit=100)
    assert [r["uTime"] for r in rows] == [r["uTime"] for r in records]
    assert rows.complete  # the third page was short: nothing older exists
    afters = [
        parse_qs(r.url.query.decode()).get("after")
        for r in fake.requests_to("/api/v5/account/positions-history")
    ]
    assert afters == [None, ["901"], ["801"]]


def test_candle_paging_walks_back_in_time() -> None:
    rows = [[str(60_000 * (500 - i)), "1", "1", "1", "1", "1", "1", "1", "1"] for i in range(500)]

    def route(request: httpx.Request) -> httpx.Response:
        query = parse_qs(request.url.query.decode())
        after = int(query.get("after", [str(10**15)])[0])
        return answer(envelope([r for r in rows if int(r[0]) < after][: int(query["limit"][0])]))

    fake = FakeOkx()
    fake.routes["/api/v5/market/candles"] = route
    with fake.client() as client:
        got = client.candles("XRP-USDT-SWAP", limit=300, max_pages=3)
    assert len(got) == 500
    assert len({r[0] for r in got}) == 500


def test_long_instid_lists_are_chunked_to_okx_limits() -> None:
    fake = FakeOkx()
    positions_route(fake, answer(envelope([])))
    fake.routes["/api/v5/account/leverage-info"] = lambda _r: answer(envelope([]))
    ids = [f"C{i}-USDT-SWAP" for i in range(25)]
    with fake.client() as client:
        client.positions(inst_ids=ids)
        client.leverage_info("cross", ids)
    assert len(fake.requests_to(POSITIONS)) == 3  # 10 per request
    assert len(fake.requests_to("/api/v5/account/leverage-info")) == 2  # 20 per request


@pytest.mark.parametrize(
    ("name", "fields", "parse"),
    [
        ("positions_ccxt_1.json", POSITION_FIELDS, parse_positions),
        ("positions_ccxt_3_inverse_cross.json", POSITION_FIELDS, parse_positions),
        ("positions_okxdocs.json", POSITION_FIELDS, parse_positions),
        # Instruments rename OKX's `lever` to maxLever: the wire name is what must be kept.
        ("instruments_swap_ccxt_markets_info.json", INSTRUMENT_FIELDS, parse_instruments),
    ],
)
def test_records_trimmed_while_decoding_parse_the_same(
    name: str, fields: frozenset[str], parse: Callable[[list[Any]], pd.DataFrame]
) -> None:
    raw = (SAMPLES / name).read_bytes()
    if not raw.lstrip().startswith(b"{"):  # a bare data array: wrap it in an envelope
        raw = b'{"code":"0","msg":"","data":' + raw + b"}"
    ctx = CallContext("GET", "/api/v5/test")
    whole = decode(raw, ctx, http_status=200)
    trimmed = decode(raw, ctx, http_status=200, keep=fields)
    assert all(set(r) <= fields for r in trimmed)
    assert len(set(whole[0])) > len(set(trimmed[0]))  # something was dropped
    pd.testing.assert_frame_equal(parse(whole), parse(trimmed))


def test_an_error_envelope_is_not_trimmed_away() -> None:
    raw = json.dumps({"code": "50113", "msg": "Invalid Sign", "data": []}).encode()
    ctx = CallContext("GET", "/api/v5/account/positions")
    with pytest.raises(AuthError, match="50113"):
        decode(raw, ctx, http_status=401, keep=POSITION_FIELDS)
