"""A thin OKX private-stream client for the simulator's WebSocket tests (websockets' asyncio
client, no mocking)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from posguard.okx.signing import sign
from posguard.okx.stream import PRIVATE_PATH, VERIFY_PATH
from posguard.sim import SimServer
from tests.sim.conftest import MAIN

PRIVATE = PRIVATE_PATH
POSITIONS = {"channel": "positions", "instType": "ANY"}
EVENTS_ONLY = {**POSITIONS, "extraParams": '{"updateInterval": "0"}'}
BALANCE_AND_POSITION = {"channel": "balance_and_position"}


def login_request(
    *,
    api_key: str = MAIN["api_key"],
    passphrase: str = MAIN["passphrase"],
    secret: str = MAIN["secret_key"],
    timestamp: str | int | None = None,
    sign_with: str | None = None,
) -> dict[str, Any]:
    stamp = str(int(time.time())) if timestamp is None else timestamp
    signed = str(sign_with if sign_with is not None else stamp)
    arg = {
        "apiKey": api_key,
        "passphrase": passphrase,
        "timestamp": stamp,
        "sign": sign(secret, signed, "GET", VERIFY_PATH, ""),
    }
    return {"op": "login", "args": [arg]}


async def send(ws: ClientConnection, message: dict[str, Any] | str) -> None:
    await ws.send(message if isinstance(message, str) else json.dumps(message))


async def receive(ws: ClientConnection, timeout: float = 2.0) -> Any:
    text = await asyncio.wait_for(ws.recv(), timeout)
    return text if text == "pong" else json.loads(text)


async def receive_until(
    ws: ClientConnection, wanted: Callable[[Any], bool], timeout: float = 2.0
) -> Any:
    """The first message that satisfies `wanted`, skipping others."""
    deadline = time.monotonic() + timeout
    while True:
        message = await receive(ws, max(0.01, deadline - time.monotonic()))
        if wanted(message):
            return message


async def quiet_for(ws: ClientConnection, seconds: float) -> list[Any]:
    """Everything that arrives within `seconds`."""
    seen: list[Any] = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            seen.append(await receive(ws, left))
        except TimeoutError:
            break
    return seen


async def until_closed(ws: ClientConnection, timeout: float = 3.0) -> ConnectionClosed:
    """Read until the server closes or cuts the connection; how it ended."""
    try:
        while True:
            await receive(ws, timeout)
    except ConnectionClosed as closed:
        return closed


@asynccontextmanager
async def private(
    server: SimServer, *, login: bool = True, **connect_args: Any
) -> AsyncIterator[ClientConnection]:
    async with connect(server.ws_url + PRIVATE, **connect_args) as ws:
        if login:
            await send(ws, login_request())
            answer = await receive(ws)
            assert answer["event"] == "login", answer
        yield ws


async def subscribe(ws: ClientConnection, *args: dict[str, Any]) -> list[Any]:
    """Subscribe and return each arg's first push (its snapshot), after ack and count."""
    await send(ws, {"op": "subscribe", "args": list(args)})
    snapshots = []
    for _ in args:
        ack = await receive(ws)
        assert ack["event"] == "subscribe", ack
        count = await receive(ws)
        assert count["event"] == "channel-conn-count", count
        snapshots.append(await receive_until(ws, lambda m: "data" in m))
    return snapshots


def is_event(channel: str) -> Callable[[Any], bool]:
    def wanted(message: Any) -> bool:
        if not isinstance(message, dict) or message.get("arg", {}).get("channel") != channel:
            return False
        if channel == "positions":
            return bool(message.get("eventType") == "event_update")
        return bool(message["data"][0]["eventType"] != "snapshot")

    return wanted
