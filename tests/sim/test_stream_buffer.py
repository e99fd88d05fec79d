"""A client that stops reading fills its connection's outbox: the simulator closes it with
4005 "Buffer is full" (or cuts it when even the close cannot reach it), and everything else
goes on. The real server and a real websocket client, made to stop reading."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from posguard.sim import SimExchange, SimServer
from tests.sim.conftest import control, shipped
from tests.sim.stream_helpers import (
    EVENTS_ONLY,
    private,
    receive,
    send,
    subscribe,
    until_closed,
)

OUTBOX_FRAMES = 16
# Each invalid request comes back whole in its 60012 answer: the client is sent as much as
# it sends. The total passes the kernel's socket buffers (about 5.5 MB here: tcp_wmem's
# 4 MB ceiling and the client's window) four times over, then the outbox.
REQUEST_BYTES = 60_000
FLOOD_BYTES = 24_000_000


@asynccontextmanager
async def stuck(server: SimServer) -> AsyncIterator[ClientConnection]:
    """A logged-in client that reads nothing after its login answer: websockets stops
    taking frames after one, the kernel after a small fixed window; without compression
    the echoes take on the wire the room they take in memory."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65_536)  # before connect: no growth
    sock.connect((server.host, server.port))
    options: dict[str, Any] = {"max_queue": 1, "compression": None, "ping_interval": None}
    async with private(server, sock=sock, **options) as ws:
        yield ws


async def flood(ws: ClientConnection) -> None:
    """Send FLOOD_BYTES of invalid requests and read none of the answers."""
    request = "x" * REQUEST_BYTES
    try:
        for _ in range(FLOOD_BYTES // REQUEST_BYTES):
            await ws.send(request)
    except ConnectionClosed:  # the simulator cut it
        return


def conn_ids(server: SimServer) -> set[str]:
    return {str(c["connId"]) for c in control(server, "ws")}


def own_conn_id(server: SimServer, others: set[str]) -> str:
    (conn_id,) = conn_ids(server) - others
    return conn_id


def listed_after(server: SimServer, gone: str, timeout: float = 3.0) -> set[str]:
    """The connIds the server lists once `gone` left the list (the server drops a
    connection when its tasks ended: the reader's loop, after it awaited the writer), or
    when the timeout passed."""
    deadline = time.monotonic() + timeout
    while (ids := conn_ids(server)) and gone in ids and time.monotonic() < deadline:
        time.sleep(0.02)
    return ids


def test_a_client_that_stops_reading_is_closed_4005_and_the_rest_goes_on() -> None:
    exchange = SimExchange(
        shipped("incident-2025-12-20"), enforce_rate_limits=False, ws_outbox_frames=OUTBOX_FRAMES
    )

    async def scenario(server: SimServer) -> tuple[ConnectionClosed, Any, int, str, set[str]]:
        async with private(server) as healthy:
            await subscribe(healthy, EVENTS_ONLY)
            before = await asyncio.to_thread(conn_ids, server)
            async with stuck(server) as ws:
                conn_id = await asyncio.to_thread(own_conn_id, server, before)
                await flood(ws)
                await send(healthy, "ping")
                pong = await receive(healthy)
                time_url = f"{server.base_url}/api/v5/public/time"
                rest = (await asyncio.to_thread(httpx.get, time_url)).status_code
                closed = await until_closed(ws)  # it reads again: what is in flight, the close
            listed = await asyncio.to_thread(listed_after, server, conn_id)
            return closed, pong, rest, conn_id, listed - before

    with SimServer(exchange) as server:
        closed, pong, rest, conn_id, left = asyncio.run(scenario(server))
    assert closed.rcvd is not None
    assert (closed.rcvd.code, closed.rcvd.reason) == (4005, "Buffer is full")
    assert pong == "pong"
    assert rest == 200
    assert conn_id not in left


def test_a_client_that_never_reads_is_cut_and_its_connection_ends() -> None:
    # Its close frame cannot pass the unread data: the cut comes ws_idle_seconds later.
    exchange = SimExchange(
        shipped("incident-2025-12-20"),
        enforce_rate_limits=False,
        ws_outbox_frames=OUTBOX_FRAMES,
        ws_idle_seconds=0.5,
    )

    async def scenario(server: SimServer) -> tuple[str, set[str], ConnectionClosed]:
        async with stuck(server) as ws:
            conn_id = await asyncio.to_thread(own_conn_id, server, set())
            await flood(ws)
            listed = await asyncio.to_thread(listed_after, server, conn_id)
            return conn_id, listed, await until_closed(ws)

    with SimServer(exchange) as server:
        conn_id, listed, closed = asyncio.run(scenario(server))
    assert conn_id not in listed
    assert closed.rcvd is None  # cut, no close frame
