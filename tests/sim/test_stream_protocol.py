"""The simulator's private WebSocket speaks OKX's protocol: login codes, subscribe acks and
errors, ping/pong, the idle close, the public endpoint, the limits and the control routes."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from posguard.sim import SimExchange, SimServer
from tests.sim.conftest import control, shipped
from tests.sim.stream_helpers import (
    POSITIONS,
    PRIVATE,
    login_request,
    private,
    quiet_for,
    receive,
    send,
    subscribe,
    until_closed,
)


@pytest.fixture(scope="module")
def server() -> Iterator[SimServer]:
    exchange = SimExchange(shipped("incident-2025-12-20"), enforce_rate_limits=False)
    with SimServer(exchange) as running:
        yield running


def test_login_with_a_string_or_a_number_timestamp(server: SimServer) -> None:
    async def scenario() -> list[Any]:
        answers = []
        for stamp in (str(int(time.time())), int(time.time())):
            async with private(server, login=False) as ws:
                await send(ws, login_request(timestamp=stamp))
                answers.append(await receive(ws))
        return answers

    for answer in asyncio.run(scenario()):
        assert answer["event"] == "login"
        assert answer["code"] == "0"
        assert answer["msg"] == ""
        assert re.fullmatch(r"[0-9a-f]{8}", answer["connId"])


LOGIN_FAILURES = [
    ({"api_key": "sim-nobody-key"}, "60005", "Invalid apiKey"),
    ({"passphrase": "sim-wrong-passphrase"}, "60024", "Wrong passphrase"),
    ({"secret": "sim-wrong-secret"}, "60007", "Invalid sign"),
    ({"timestamp": str(int(time.time()) - 120)}, "60006", "Timestamp request expired"),
    ({"timestamp": "2025-12-20T00:00:00.000Z"}, "60004", "Invalid timestamp"),
    ({"timestamp": 1766188800.5}, "60004", "Invalid timestamp"),
]


@pytest.mark.parametrize(("change", "code", "msg"), LOGIN_FAILURES)
def test_login_failures_answer_okx_codes_and_close_4001(
    server: SimServer, change: dict[str, Any], code: str, msg: str
) -> None:
    async def scenario() -> tuple[Any, int | None]:
        async with private(server, login=False) as ws:
            await send(ws, login_request(**change))
            answer = await receive(ws)
            with pytest.raises(ConnectionClosed) as closed:
                await receive(ws)
            assert closed.value.rcvd is not None
            return answer, closed.value.rcvd.code

    answer, close_code = asyncio.run(scenario())
    assert answer["event"] == "error"
    assert (answer["code"], answer["msg"]) == (code, msg)
    assert re.fullmatch(r"[0-9a-f]{8}", answer["connId"])
    assert close_code == 4001


def test_login_within_30_s_of_the_simulated_clock_passes(server: SimServer) -> None:
    simulated_s = server.exchange.now_ms() // 1000  # 2025-12-20, far from this machine's

    async def scenario() -> Any:
        async with private(server, login=False) as ws:
            await send(ws, login_request(timestamp=str(simulated_s - 10)))
            return await receive(ws)

    assert asyncio.run(scenario())["code"] == "0"


def test_empty_login_args_and_repeated_login(server: SimServer) -> None:
    async def scenario() -> tuple[Any, Any, Any]:
        async with private(server, login=False) as ws:
            await send(ws, {"op": "login", "args": []})
            empty = await receive(ws)
        async with private(server) as ws:
            await send(ws, login_request())
            again = await receive(ws)
            await send(ws, "ping")
            still_up = await receive(ws)
        return empty, again, still_up

    empty, again, still_up = asyncio.run(scenario())
    assert (empty["code"], empty["msg"]) == ("60027", "Param empty")
    assert again["event"] == "error"
    assert again["code"] == "60031"
    assert still_up == "pong"


def test_subscribe_before_login_is_refused(server: SimServer) -> None:
    async def scenario() -> Any:
        async with private(server, login=False) as ws:
            await send(ws, {"id": "7", "op": "subscribe", "args": [{"channel": "positions"}]})
            return await receive(ws)

    answer = asyncio.run(scenario())
    assert answer["event"] == "error"
    assert (answer["id"], answer["code"], answer["msg"]) == ("7", "60011", "Please log in")


def test_bad_requests_get_okx_errors_and_keep_the_connection(server: SimServer) -> None:
    requests: list[Any] = [
        "hello",
        "[1, 2]",
        {"op": "teleport", "args": []},
        {"op": "subscribe", "argss": [{"channel": "positions", "instType": "ANY"}]},
        {"op": "subscribe", "args": [{"channel": "positions"}]},
        {"op": "subscribe", "args": [{"channel": "positions", "instType": "SPOTS"}]},
        {"op": "subscribe", "args": [{"channel": "tickerz", "instId": "XRP-USDT-SWAP"}]},
        {"op": "subscribe", "args": [{"channel": "positions", "instType": "SWAP", "instId": "NO"}]},
        {
            "op": "subscribe",
            "args": [{"channel": "positions", "instType": "ANY", "extraParams": "{not json"}],
        },
    ]

    async def scenario() -> list[Any]:
        answers = []
        async with private(server) as ws:
            for request in requests:
                await send(ws, request)
                answers.append(await receive(ws))
            await send(ws, "ping")
            answers.append(await receive(ws))
        return answers

    answers = asyncio.run(scenario())
    codes = [a["code"] for a in answers[:-1]]
    assert codes == [
        "60012",
        "60012",
        "60019",
        "60012",
        "60013",
        "60013",
        "60018",
        "60018",
        "60013",
    ]
    assert answers[0]["msg"] == "Invalid request: hello"
    assert answers[3]["msg"].startswith('Invalid request: {"op": "subscribe", "argss"')
    assert answers[6]["msg"] == "Wrong URL or channel:tickerz,instId:XRP-USDT-SWAP doesn't exist"
    assert answers[-1] == "pong"


def positions_args(size: int) -> list[dict[str, Any]]:
    """`positions` args whose compact JSON is `size` bytes: the padding rides in
    extraParams, which the simulator reads only for its updateInterval."""

    def padded(pad: int) -> list[dict[str, Any]]:
        extra = json.dumps({"updateInterval": "0", "pad": "x" * pad})
        return [{**POSITIONS, "extraParams": extra}]

    def length(args: list[dict[str, Any]]) -> int:
        return len(json.dumps(args, separators=(",", ":")))

    args = padded(size - length(padded(0)))
    assert length(args) == size
    return args


def test_a_subscribe_over_64_kb_is_refused_and_the_connection_stays(server: SimServer) -> None:
    async def scenario() -> tuple[Any, list[Any], Any, Any]:
        async with private(server) as ws:
            await send(ws, {"id": "big1", "op": "subscribe", "args": positions_args(65_537)})
            refused = await receive(ws)
            listed = await asyncio.to_thread(control, server, "ws")
            await send(ws, "ping")
            pong = await receive(ws)
            await send(ws, {"id": "big2", "op": "subscribe", "args": positions_args(65_536)})
            return refused, listed, pong, await receive(ws)

    refused, listed, pong, taken = asyncio.run(scenario())
    assert refused == {
        "id": "big1",
        "event": "error",
        "code": "60013",
        "msg": "Invalid args",
        "connId": refused["connId"],
    }
    assert [c["channels"] for c in listed if c["connId"] == refused["connId"]] == [[]]
    assert pong == "pong"
    assert (taken["id"], taken["event"]) == ("big2", "subscribe")


def test_silent_channels_are_acknowledged_and_unsubscribe_works(server: SimServer) -> None:
    async def scenario() -> tuple[list[Any], list[Any]]:
        async with private(server) as ws:
            arg = {"channel": "orders", "instType": "ANY"}
            await send(ws, {"id": "a1", "op": "subscribe", "args": [arg]})
            subscribed = [await receive(ws), await receive(ws)]
            await send(ws, {"id": "a2", "op": "unsubscribe", "args": [arg]})
            unsubscribed = [await receive(ws), *await quiet_for(ws, 0.2)]
        return subscribed, unsubscribed

    subscribed, unsubscribed = asyncio.run(scenario())
    ack, count = subscribed
    assert ack["id"] == "a1"
    assert ack["arg"] == {"channel": "orders", "instType": "ANY"}
    assert count["connCount"] == "1"
    assert unsubscribed == [
        {
            "id": "a2",
            "event": "unsubscribe",
            "arg": {"channel": "orders", "instType": "ANY"},
            "connId": ack["connId"],
        }
    ]


def test_text_ping_is_answered_pong(server: SimServer) -> None:
    async def scenario() -> Any:
        async with private(server, login=False) as ws:
            await send(ws, "ping")
            return await ws.recv()

    assert asyncio.run(scenario()) == "pong"


def test_a_silent_connection_is_closed_4004() -> None:
    exchange = SimExchange(shipped("incident-2025-12-20"), ws_idle_seconds=0.3)

    async def scenario(server: SimServer) -> tuple[float, int, str]:
        async with private(server) as ws:
            started = time.monotonic()
            with pytest.raises(ConnectionClosed) as closed:
                await receive(ws, timeout=3)
            assert closed.value.rcvd is not None
            return time.monotonic() - started, closed.value.rcvd.code, closed.value.rcvd.reason

    with SimServer(exchange) as server:
        waited, code, reason = asyncio.run(scenario(server))
    assert (code, reason) == (4004, "No data received in 30s.")
    assert 0.2 < waited < 1.0


def test_public_endpoint_pongs_and_refuses_private_channels(server: SimServer) -> None:
    async def scenario() -> tuple[Any, Any]:
        async with connect(server.ws_url + "/ws/v5/public") as ws:
            await send(ws, "ping")
            pong = await receive(ws)
            await send(ws, {"op": "subscribe", "args": [{"channel": "positions"}]})
            return pong, await receive(ws)

    pong, refused = asyncio.run(scenario())
    assert pong == "pong"
    assert refused["code"] == "60008"


def no_connections_left(server: SimServer) -> list[Any]:
    """The server's list once clients of earlier tests are gone (it drops them on their
    close, a moment after the client returns)."""
    deadline = time.monotonic() + 2
    while (listed := control(server, "ws")) and time.monotonic() < deadline:
        time.sleep(0.02)
    return list(listed)


def test_control_routes_list_and_drop_connections(server: SimServer) -> None:
    assert no_connections_left(server) == []

    async def scenario() -> tuple[list[Any], Any, BaseException]:
        async with private(server) as ws, private(server, login=False):
            await subscribe(ws, {"channel": "positions", "instType": "ANY"})
            listed = await asyncio.to_thread(control, server, "ws")
            dropped = await asyncio.to_thread(control, server, "ws/drop", {"account": "main"})
            return listed, dropped, await until_closed(ws)

    listed, dropped, closed = asyncio.run(scenario())
    by_account = {c["account"]: c for c in listed}
    assert set(by_account) == {"main", None}
    assert by_account["main"]["channels"] == ["positions"]
    assert abs(by_account["main"]["since_ms"] - time.time() * 1000) < 60_000
    assert dropped == {"dropped": 1}
    assert isinstance(closed, ConnectionClosed)
    assert closed.rcvd is None  # no close frame: the TCP connection was cut
    unknown = httpx.post(f"{server.base_url}/__sim__/ws/drop", json={"account": "ghost"})
    assert unknown.status_code == 400
    assert "ghost" in unknown.json()["error"]


def test_connection_rate_is_limited_per_address() -> None:
    exchange = SimExchange(shipped("incident-2025-12-20"))  # limits enforced

    async def scenario(server: SimServer) -> int:
        open_ = []
        try:
            for _ in range(3):
                open_.append(await connect(server.ws_url + PRIVATE))
            with pytest.raises(InvalidStatus) as refused:
                await connect(server.ws_url + PRIVATE)
            return refused.value.response.status_code
        finally:
            for ws in open_:
                await ws.close()

    with SimServer(exchange) as server:
        assert asyncio.run(scenario(server)) == 429


def test_login_and_subscribe_ops_are_limited_per_connection() -> None:
    exchange = SimExchange(shipped("incident-2025-12-20"))
    arg = {"channel": "account"}

    async def scenario(server: SimServer) -> Any:
        async with private(server) as ws:  # the login is op 1
            for _ in range(479):
                await send(ws, {"op": "unsubscribe", "args": [arg]})
            for _ in range(479):
                assert (await receive(ws))["event"] == "unsubscribe"
            await send(ws, {"op": "unsubscribe", "args": [arg]})
            return await receive(ws)

    with SimServer(exchange) as server:
        refused = asyncio.run(scenario(server))
    assert (refused["code"], refused["msg"]) == ("60014", "Requests too frequent")


def test_thirty_connections_per_channel_per_account() -> None:
    exchange = SimExchange(shipped("incident-2025-12-20"))
    arg = {"channel": "balance_and_position"}

    async def scenario(server: SimServer) -> list[Any]:
        answers = []
        sockets = []
        try:
            for number in range(31):
                # Three connections per address and second: spread over loopback addresses.
                local = (f"127.0.0.{2 + number // 3}", 0)
                ws = await connect(server.ws_url + PRIVATE, local_addr=local)
                sockets.append(ws)
                await send(ws, login_request())
                await receive(ws)
                await send(ws, {"op": "subscribe", "args": [arg]})
                await receive(ws)  # the ack
                answers.append(await receive(ws))
        finally:
            for ws in sockets:
                await ws.close()
        return answers

    with SimServer(exchange) as server:
        answers = asyncio.run(scenario(server))
    assert [a["connCount"] for a in answers[:30]] == [str(n) for n in range(1, 31)]
    assert answers[29]["event"] == "channel-conn-count"
    assert answers[30]["event"] == "channel-conn-count-error"
    assert answers[30]["connCount"] == "30"


def test_server_lists_no_connections_after_clients_leave(server: SimServer) -> None:
    async def scenario() -> None:
        async with private(server):
            pass

    asyncio.run(scenario())
    assert no_connections_left(server) == []
