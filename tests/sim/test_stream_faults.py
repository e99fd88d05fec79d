"""Stream faults as scenario data: ws_drop, ws_miss_push, ws_delay_push, ws_upgrade_notice
(endpoint "ws_private"), and the clear errors of a misplaced one."""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed

from posguard.sim import ScenarioError, SimExchange, SimServer
from tests.sim.conftest import control, shipped
from tests.sim.stream_helpers import (
    EVENTS_ONLY,
    POSITIONS,
    is_event,
    private,
    quiet_for,
    receive,
    receive_until,
    subscribe,
    until_closed,
)


def with_faults(*faults: dict[str, Any], **fields: Any) -> SimExchange:
    document = shipped("incident-2025-12-20").model_dump(by_alias=True)
    document["faults"] = [*document["faults"], *faults]
    from tests.sim.conftest import scenario

    return SimExchange(scenario(**document), enforce_rate_limits=False, **fields)


def close_step(server: SimServer, inst_id: str, sz: str | None = None) -> Any:
    body = {"account": "main", "action": "close", "instId": inst_id}
    return control(server, "step", {**body, **({"sz": sz} if sz else {})})


def test_ws_drop_cuts_the_account_streams_once_active() -> None:
    exchange = with_faults(
        {"endpoint": "ws_private", "kind": "ws_drop", "account": "main", "from": "+1m", "times": 1}
    )

    async def run(server: SimServer) -> tuple[list[Any], ConnectionClosed, Any]:
        async with private(server) as ws:
            await subscribe(ws, EVENTS_ONLY)
            before = await quiet_for(ws, 0.15)  # not active yet
            await asyncio.to_thread(control, server, "advance", {"to": "+1m"})
            closed = await until_closed(ws)
        async with private(server) as again:  # times: 1, spent
            await asyncio.sleep(0.15)
            await again.send("ping")
            still = await receive(again)
        return before, closed, still

    with SimServer(exchange) as server:
        before, closed, still = asyncio.run(run(server))
    assert before == []
    assert closed.rcvd is None  # cut, no close frame
    assert still == "pong"


def test_ws_miss_push_hides_events_but_snapshots_tell_the_truth() -> None:
    exchange = with_faults(
        {"endpoint": "ws_private", "kind": "ws_miss_push", "instId": "XRP-USDT-SWAP"},
        ws_regular_push_seconds=0.3,
    )

    async def run(server: SimServer) -> tuple[Any, Any]:
        async with private(server) as ws:
            await subscribe(ws, POSITIONS)
            await asyncio.to_thread(close_step, server, "XRP-USDT-SWAP")
            await asyncio.to_thread(close_step, server, "ETH-USDT-SWAP", "1")
            update = await receive_until(ws, is_event("positions"))
            snapshot = await receive_until(ws, lambda m: m.get("eventType") == "snapshot")
            return update, snapshot

    with SimServer(exchange) as server:
        update, snapshot = asyncio.run(run(server))
    assert [r["instId"] for r in update["data"]] == ["ETH-USDT-SWAP"]
    assert "XRP-USDT-SWAP" not in {r["instId"] for r in snapshot["data"]}


def test_ws_delay_push_makes_events_late() -> None:
    exchange = with_faults({"endpoint": "ws_private", "kind": "ws_delay_push", "seconds": 0.4})

    async def run(server: SimServer) -> tuple[float, Any]:
        async with private(server) as ws:
            await subscribe(ws, EVENTS_ONLY)
            started = time.monotonic()
            await asyncio.to_thread(close_step, server, "XRP-USDT-SWAP")
            update = await receive_until(ws, is_event("positions"))
            return time.monotonic() - started, update

    with SimServer(exchange) as server:
        waited, update = asyncio.run(run(server))
    assert 0.4 <= waited < 1.0
    assert [(r["instId"], r["pos"]) for r in update["data"]] == [("XRP-USDT-SWAP", "0")]


def test_ws_upgrade_notice_then_close() -> None:
    exchange = with_faults({"endpoint": "ws_private", "kind": "ws_upgrade_notice", "seconds": 0.3})

    async def run(server: SimServer) -> tuple[Any, float, ConnectionClosed]:
        async with private(server) as ws:
            notice = await receive_until(ws, lambda m: m.get("event") == "notice")
            noticed = time.monotonic()
            closed = await until_closed(ws)
            return notice, time.monotonic() - noticed, closed

    with SimServer(exchange) as server:
        notice, waited, closed = asyncio.run(run(server))
    assert notice["code"] == "64008"
    assert notice["msg"] == (
        "The connection will soon be closed for a service upgrade. Please reconnect."
    )
    assert 0.25 < waited < 1.0
    assert closed.rcvd is not None
    assert closed.rcvd.code == 1012


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        (
            {"endpoint": "positions", "kind": "ws_drop"},
            "fault 0 (ws_drop), field 'endpoint': ws_drop acts on the private WebSocket; "
            "use endpoint 'ws_private'",
        ),
        (
            {"endpoint": "ws_private", "kind": "http_error"},
            "fault 0 (http_error), field 'kind': endpoint 'ws_private' takes only ws_drop",
        ),
        ({"endpoint": "ws_public", "kind": "ws_drop"}, "'ws_private' (the private WebSocket)"),
    ],
)
def test_misplaced_stream_faults_are_named(fault: dict[str, Any], expected: str) -> None:
    from tests.sim.conftest import scenario

    with pytest.raises(ScenarioError, match=re.escape(expected)):
        scenario(faults=[fault])
