"""What the private WebSocket pushes: snapshots (paged), event updates after each change of
the book (a closed position once with pos "0"), balance_and_position's event types, and the
regular snapshot interval."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from posguard.sim import SimExchange, SimServer
from tests.sim.conftest import MAIN, client_for, control, scenario, shipped
from tests.sim.stream_helpers import (
    BALANCE_AND_POSITION,
    EVENTS_ONLY,
    POSITIONS,
    is_event,
    private,
    quiet_for,
    receive_until,
    subscribe,
    until_closed,
)

INCIDENT_BOOK = {
    "XRP-USDT-SWAP",
    "ETH-USDT-SWAP",
    "DOGE-USDT-SWAP",
    "SUSHI-USDT-SWAP",
    "BTC-USDT-SWAP",
}


def incident(**fields: Any) -> SimExchange:
    return SimExchange(shipped("incident-2025-12-20"), enforce_rate_limits=False, **fields)


def step(server: SimServer, **body: Any) -> Any:
    return control(server, "step", {"account": "main", **body})


def test_snapshot_records_are_what_rest_renders() -> None:
    async def run(server: SimServer) -> Any:
        async with private(server) as ws:
            (snapshot,) = await subscribe(ws, POSITIONS)
            return snapshot

    with SimServer(incident()) as server, client_for(server) as client:
        snapshot = asyncio.run(run(server))
        rest = client.positions(inst_type="SWAP")
        now = str(server.exchange.now_ms())
    uid = server.exchange.accounts["main"].uid
    assert snapshot["arg"] == {"channel": "positions", "instType": "ANY", "uid": uid}
    assert snapshot["eventType"] == "snapshot"
    assert (snapshot["curPage"], snapshot["lastPage"]) == (1, True)
    pushed = {r["instId"]: r for r in snapshot["data"]}
    assert set(pushed) == INCIDENT_BOOK
    for record in rest:
        mine = pushed[record["instId"]]
        assert mine["pTime"] == now
        # REST's lever_empty fault blanks two levers; the stream has no such fault.
        assert {k: v for k, v in mine.items() if k != "pTime"} == {**record, "lever": mine["lever"]}


def test_large_snapshots_are_paged_and_an_empty_selection_is_one_page() -> None:
    loaded = scenario(load={"instruments": 250, "positions": 250})

    async def run(server: SimServer) -> tuple[list[Any], Any]:
        async with private(server) as ws:
            (first,) = await subscribe(ws, {**EVENTS_ONLY, "instType": "SWAP"})
            pages = [first, *[await receive_until(ws, lambda m: "data" in m) for _ in range(2)]]
            (futures,) = await subscribe(ws, {**EVENTS_ONLY, "instType": "FUTURES"})
            return pages, futures

    with SimServer(SimExchange(loaded, enforce_rate_limits=False)) as server:
        pages, futures = asyncio.run(run(server))
    assert [(p["curPage"], p["lastPage"], len(p["data"])) for p in pages] == [
        (1, False, 100),
        (2, False, 100),
        (3, True, 50),
    ]
    assert len({r["posId"] for p in pages for r in p["data"]}) == 250
    assert (futures["curPage"], futures["lastPage"], futures["data"]) == (1, True, [])


def test_empty_book_snapshot() -> None:
    async def run(server: SimServer) -> Any:
        async with private(server) as ws:
            (snapshot,) = await subscribe(ws, POSITIONS)
            return snapshot

    with SimServer(SimExchange(scenario(), enforce_rate_limits=False)) as server:
        snapshot = asyncio.run(run(server))
    assert (snapshot["curPage"], snapshot["lastPage"], snapshot["data"]) == (1, True, [])


def test_a_close_is_pushed_once_with_pos_zero() -> None:
    async def run(server: SimServer) -> tuple[Any, Any, float, list[Any]]:
        async with private(server) as ws:
            (snapshot,) = await subscribe(ws, EVENTS_ONLY)
            before = next(r for r in snapshot["data"] if r["instId"] == "XRP-USDT-SWAP")
            started = time.monotonic()
            await asyncio.to_thread(step, server, action="close", instId="XRP-USDT-SWAP")
            update = await receive_until(ws, is_event("positions"))
            latency = time.monotonic() - started
            return before, update, latency, await quiet_for(ws, 0.3)

    exchange = incident()
    with SimServer(exchange) as server:
        control(server, "advance", {"seconds": 90})
        before, update, latency, after = asyncio.run(run(server))
    assert latency < 0.5
    assert "curPage" not in update
    (record,) = update["data"]
    assert record["pos"] == "0"
    for name in ("posId", "cTime", "instId", "mgnMode", "posSide"):
        assert record[name] == before[name]
    assert record["uTime"] == str(exchange.start_ms + 90_000)
    assert after == []  # once, and no regular push with updateInterval "0"


def test_open_partial_close_and_leverage_push_only_the_changed_position() -> None:
    async def run(server: SimServer) -> list[Any]:
        async with private(server) as ws:
            await subscribe(ws, EVENTS_ONLY)
            updates = []
            for body in (
                {"action": "open", "instId": "ADA-USDT-SWAP", "sz": "3", "px": "0.9"},
                {"action": "close", "instId": "ETH-USDT-SWAP", "sz": "2"},
                {"action": "set_leverage", "instId": "XRP-USDT-SWAP", "lever": "7"},
                {"action": "price", "instId": "XRP-USDT-SWAP", "px": "1.95"},
            ):
                await asyncio.to_thread(step, server, **body)
                if body["action"] != "price":
                    updates.append(await receive_until(ws, is_event("positions")))
            return [*updates, *await quiet_for(ws, 0.2)]

    with SimServer(incident()) as server:
        updates = asyncio.run(run(server))
    assert len(updates) == 3  # a price move is no position event
    opened, reduced, relevered = ([r for r in u["data"]] for u in updates)
    assert [(r["instId"], r["pos"]) for r in opened] == [("ADA-USDT-SWAP", "3")]
    assert [(r["instId"], r["pos"]) for r in reduced] == [("ETH-USDT-SWAP", "10")]
    assert [(r["instId"], r["lever"]) for r in relevered] == [("XRP-USDT-SWAP", "7")]


def test_subscription_filters_by_instrument() -> None:
    async def run(server: SimServer) -> tuple[Any, list[Any]]:
        async with private(server) as ws:
            arg = {**EVENTS_ONLY, "instType": "SWAP", "instId": "ETH-USDT-SWAP"}
            (snapshot,) = await subscribe(ws, arg)
            await asyncio.to_thread(step, server, action="close", instId="XRP-USDT-SWAP")
            await asyncio.to_thread(step, server, action="close", instId="ETH-USDT-SWAP", sz="1")
            return snapshot, await quiet_for(ws, 0.3)

    with SimServer(incident()) as server:
        snapshot, pushed = asyncio.run(run(server))
    assert [r["instId"] for r in snapshot["data"]] == ["ETH-USDT-SWAP"]
    assert snapshot["arg"]["instId"] == "ETH-USDT-SWAP"
    assert [[r["instId"] for r in m["data"]] for m in pushed] == [["ETH-USDT-SWAP"]]


def test_balance_and_position_names_the_cause() -> None:
    async def run(server: SimServer) -> tuple[Any, list[Any]]:
        async with private(server) as ws:
            (snapshot,) = await subscribe(ws, BALANCE_AND_POSITION)
            await asyncio.to_thread(control, server, "advance", {"to": "+4m"})  # liquidation
            events = [await receive_until(ws, is_event("balance_and_position"))]
            for body in (
                {"action": "adl", "instId": "ETH-USDT-SWAP", "sz": "2"},
                {"action": "open", "instId": "DOGE-USDT-SWAP", "sz": "5"},
            ):
                await asyncio.to_thread(step, server, **body)
                events.append(await receive_until(ws, is_event("balance_and_position")))
            with client_for(server) as client:
                await asyncio.to_thread(
                    client.set_leverage, lever="6", mgn_mode="cross", inst_id="SUSHI-USDT-SWAP"
                )
            events.append(await receive_until(ws, is_event("balance_and_position")))
            return snapshot, events

    with SimServer(incident()) as server:
        snapshot, events = asyncio.run(run(server))
    uid = server.exchange.accounts["main"].uid
    assert snapshot["arg"] == {"channel": "balance_and_position", "uid": uid}
    (data,) = snapshot["data"]
    assert (data["eventType"], data["balData"], data["trades"]) == ("snapshot", [], [])
    assert {p["instId"] for p in data["posData"]} == INCIDENT_BOOK
    assert set(data["posData"][0]) == {
        "posId",
        "tradeId",
        "instId",
        "instType",
        "mgnMode",
        "posSide",
        "pos",
        "ccy",
        "posCcy",
        "avgPx",
        "uTime",
    }
    seen = [
        (e["data"][0]["eventType"], [(p["instId"], p["pos"]) for p in e["data"][0]["posData"]])
        for e in events
    ]
    assert seen == [
        ("liquidation", [("BTC-USDT-SWAP", "0")]),
        ("adl", [("ETH-USDT-SWAP", "10")]),
        ("filled", [("DOGE-USDT-SWAP", "35")]),
        ("set_leverage", [("SUSHI-USDT-SWAP", "400")]),
    ]


def test_regular_snapshots_follow_the_interval() -> None:
    async def run(server: SimServer) -> tuple[list[float], list[Any]]:
        async with private(server) as ws:
            await subscribe(ws, POSITIONS)
            started = time.monotonic()
            times = []
            for _ in range(2):
                await receive_until(ws, lambda m: m.get("eventType") == "snapshot")
                times.append(time.monotonic() - started)
            return times, await quiet_for(ws, 0.1)

    with SimServer(incident(ws_regular_push_seconds=0.25)) as server:
        times, _ = asyncio.run(run(server))
    assert 0.2 < times[0] < 0.45
    assert 0.45 < times[1] < 0.75


def test_an_event_goes_before_a_coinciding_regular_push() -> None:
    async def run(server: SimServer) -> list[Any]:
        async with private(server) as ws:
            await subscribe(ws, POSITIONS)
            # A step applied from this thread lands between two ticks of the push loop.
            server.exchange.advance(to_ms=server.exchange.start_ms + 240_000)
            return await quiet_for(ws, 0.5)

    with SimServer(incident(ws_regular_push_seconds=0.05)) as server:
        pushed = asyncio.run(run(server))
    kinds = [m["eventType"] for m in pushed]
    first_event = kinds.index("event_update")
    liquidated = pushed[first_event]
    assert [(r["instId"], r["pos"]) for r in liquidated["data"]] == [("BTC-USDT-SWAP", "0")]
    # No regular snapshot shows the liquidation before the event that reports it.
    for earlier in pushed[:first_event]:
        assert "BTC-USDT-SWAP" in {r["instId"] for r in earlier["data"]}
    later = [m for m in pushed[first_event:] if m["eventType"] == "snapshot"]
    assert later
    assert all("BTC-USDT-SWAP" not in {r["instId"] for r in m["data"]} for m in later)


def test_wall_clock_steps_are_pushed_without_any_request() -> None:
    steps = [{"at": "+300ms", "action": "open", "instId": "XRP-USDT-SWAP", "sz": "4"}]

    async def run(server: SimServer) -> Any:
        async with private(server) as ws:
            await subscribe(ws, EVENTS_ONLY)
            return await receive_until(ws, is_event("positions"), timeout=2)

    exchange = SimExchange(scenario(clock="wall", steps=steps), enforce_rate_limits=False)
    with SimServer(exchange) as server:
        update = asyncio.run(run(server))
    assert [(r["instId"], r["pos"]) for r in update["data"]] == [("XRP-USDT-SWAP", "4")]


def test_update_interval_values() -> None:
    from posguard.sim.channels import parse_subscription

    exchange = incident()
    for value, interval in (("0", 0.0), ("2000", 2.0), ("4000", 4.0), ("1500", None), ("", None)):
        arg = {**POSITIONS, "extraParams": f'{{"updateInterval": "{value}"}}'}
        assert parse_subscription(arg, exchange).interval == interval
    numeric = {**POSITIONS, "extraParams": {"updateInterval": 3000}}
    assert parse_subscription(numeric, exchange).interval == 3.0


def test_a_scenario_load_pushes_the_new_book_or_closes_a_removed_account() -> None:
    async def run(server: SimServer) -> tuple[Any, int | None]:
        async with private(server) as ws:
            await subscribe(ws, EVENTS_ONLY)
            await asyncio.to_thread(step, server, action="close", instId="XRP-USDT-SWAP")
            await receive_until(ws, is_event("positions"))
            await asyncio.to_thread(control, server, "reset", {})
            reloaded = await receive_until(ws, is_event("positions"))
            other = {"name": "other", "accounts": [{**MAIN, "name": "other", "api_key": "sim-k"}]}
            await asyncio.to_thread(control, server, "scenario", other)
            closed = await until_closed(ws)
            return reloaded, closed.rcvd.code if closed.rcvd else None

    with SimServer(incident()) as server:
        reloaded, code = asyncio.run(run(server))
    assert {(r["instId"], r["pos"]) for r in reloaded["data"]} == {
        ("XRP-USDT-SWAP", "108"),
        ("ETH-USDT-SWAP", "12"),
        ("DOGE-USDT-SWAP", "30"),
        ("SUSHI-USDT-SWAP", "400"),
        ("BTC-USDT-SWAP", "5"),
    }
    assert code == 4007
