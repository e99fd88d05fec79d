"""When and to whom the private WebSocket pushes: the connections and one poll loop per app.

Every 50 ms (OKX's aggregation window) the loop reads the exchange's change signal
(`position_seq`, one int), pushes an `event_update` of the changed positions and one
balance_and_position message per change, then the regular snapshots that are due (so an
event goes before a coinciding regular push). It also closes idle connections (4004) and
those whose account a scenario load removed or re-keyed (4007), cuts a connection whose close
frame its client has not taken for `exchange.ws_idle_seconds`, and applies the stream faults:
ws_drop, ws_miss_push, ws_delay_push, ws_upgrade_notice (scenario.py).

Each connection's outbox holds at most `exchange.ws_outbox_frames` frames: a client that
stops reading fills it, and the next frame closes the connection with 4005 "Buffer is full"
instead of growing the simulator's memory.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketDisconnected

from posguard.okx.stream import UPGRADE_NOTICE
from posguard.sim.channels import (
    Renderer,
    Subscription,
    balance_and_position_message,
    pos_data,
    positions_messages,
)
from posguard.sim.exchange import ArmedFault, PositionChange, SimExchange
from posguard.sim.limits import SlidingWindow

logger = logging.getLogger(__name__)

TICK_SECONDS = 0.05
IDLE_REASON = "No data received in 30s."
BUFFER_FULL_CODE = 4005
BUFFER_FULL_REASON = "Buffer is full"
UPGRADE_MESSAGE = "The connection will soon be closed for a service upgrade. Please reconnect."


@dataclass(frozen=True)
class Close:
    code: int
    reason: str


class Connection:
    """One client: its login, its subscriptions, and an outbox drained in order."""

    def __init__(self, websocket: WebSocket, *, private: bool, outbox_frames: int) -> None:
        self.websocket = websocket
        self.private = private
        self.conn_id = secrets.token_hex(4)
        self.account: str | None = None
        self.api_key = ""
        self.uid = ""
        self.subscriptions: dict[tuple[str, ...], Subscription] = {}
        self.last_received = time.monotonic()
        self.since_ms = time.time_ns() // 1_000_000  # wall clock: when it connected
        self.ops = SlidingWindow()
        self.noticed = False
        self.closing = False
        self.closing_since: float | None = None  # monotonic: when its close frame was queued
        self.cut = False
        # Bounded by send(), not by the queue, so that a close frame always fits behind it.
        self.outbox_frames = outbox_frames
        self.outbox: asyncio.Queue[str | Close] = asyncio.Queue()

    def send(self, message: dict[str, Any] | str) -> None:
        if self.closing:
            return
        if self.outbox.qsize() >= self.outbox_frames:
            self._buffer_full()
            return
        text = message if isinstance(message, str) else json.dumps(message, separators=(",", ":"))
        self.outbox.put_nowait(text)

    def _buffer_full(self) -> None:
        # The frames still queued would reach a client that is being closed anyway: dropping
        # them frees the memory now and puts the close frame next in line. UNCONFIRMED: the
        # facts sheet names close 4005 "Buffer is full", not what OKX does with its buffer.
        logger.warning(
            "stream connection %s (account %s) stopped reading: %s frames queued, closing 4005",
            self.conn_id,
            self.account,
            self.outbox.qsize(),
        )
        while not self.outbox.empty():
            self.outbox.get_nowait()
        self.close(BUFFER_FULL_CODE, BUFFER_FULL_REASON)

    def send_later(self, seconds: float, message: dict[str, Any]) -> None:
        asyncio.get_running_loop().call_later(seconds, self.send, message)

    def reply(self, request_id: Any, event: str, **fields: Any) -> None:
        head = {"id": request_id} if request_id is not None else {}
        self.send({**head, "event": event, **fields, "connId": self.conn_id})

    def error(self, request_id: Any, code: str, msg: str) -> None:
        self.reply(request_id, "error", code=code, msg=msg)

    def close(self, code: int, reason: str) -> None:
        """Close after what is already queued."""
        if not self.closing:
            self.outbox.put_nowait(Close(code, reason))
            self.closing = True
            self.closing_since = time.monotonic()

    def close_overdue(self, clock: float, grace: float) -> bool:
        """Whether a close has waited more than `grace` seconds behind a client that reads
        nothing (the writer blocks on a full socket, so the close frame never leaves)."""
        return (
            self.closing_since is not None and not self.cut and clock - self.closing_since > grace
        )

    def abort(self) -> None:
        """Cut the TCP connection without a close frame, as a network failure would."""
        self.closing = True
        self.cut = True
        # uvicorn hands the app its protocol's bound receive; its transport is the socket.
        protocol = getattr(getattr(self.websocket, "_receive", None), "__self__", None)
        abort = getattr(getattr(protocol, "transport", None), "abort", None)
        if callable(abort):  # asyncio's or uvloop's transport
            abort()
        else:  # another ASGI server: the nearest OKX close code
            self.outbox.put_nowait(Close(4006, "Abnormal disconnection"))

    async def write(self) -> None:
        while True:
            item = await self.outbox.get()
            try:
                if isinstance(item, Close):
                    await self.websocket.close(item.code, item.reason)
                    return
                await self.websocket.send_text(item)
            except (WebSocketDisconnect, WebSocketDisconnected, OSError):
                return

    def describe(self) -> dict[str, Any]:
        channels = sorted({s.channel for s in self.subscriptions.values()})
        return {
            "connId": self.conn_id,
            "account": self.account,
            "channels": channels,
            "since_ms": self.since_ms,
        }


class Pusher:
    """The connections of one app and the loop that pushes to them (on the app's loop)."""

    def __init__(self, exchange: SimExchange) -> None:
        self.exchange = exchange
        self.connections: dict[str, Connection] = {}
        self.seen_seq = exchange.position_seq
        self._task: asyncio.Task[None] | None = None

    def add(self, conn: Connection) -> None:
        self.connections[conn.conn_id] = conn
        if self._task is None:
            # Nobody listened to what changed while no one was connected.
            self.seen_seq = self.exchange.position_seq
            self._task = asyncio.get_running_loop().create_task(self._run())

    def remove(self, conn: Connection) -> None:
        self.connections.pop(conn.conn_id, None)

    def logged_in(self) -> list[Connection]:
        return [c for c in self.connections.values() if c.account and not c.closing]

    def snapshot(self, conn: Connection, sub: Subscription) -> None:
        """The subscription's full picture now; later events are counted from here."""
        assert conn.account is not None
        exchange = self.exchange
        with exchange.lock:
            renderer = Renderer(exchange, exchange.now_ms())  # wall clock: due steps first
            sub.since_seq = exchange.position_seq
            if sub.channel == "positions":
                records = renderer.records(conn.account, sub)
                for message in positions_messages(sub, conn.uid, records, snapshot=True):
                    conn.send(message)
            else:
                posdata = renderer.pos_data(conn.account)
                conn.send(
                    balance_and_position_message(conn.uid, "snapshot", renderer.p_time, posdata)
                )
        if sub.interval != 0.0:
            period = sub.interval or exchange.ws_regular_push_seconds
            sub.next_regular = time.monotonic() + period

    async def _run(self) -> None:
        try:
            while self.connections:
                await asyncio.sleep(TICK_SECONDS)
                try:
                    self.tick()
                except Exception:  # one bad push must not silence every stream
                    logger.exception("the simulator's push loop failed a tick")
        finally:
            self._task = None

    def tick(self) -> None:
        exchange = self.exchange
        now_ms = exchange.now_ms()  # in wall-clock scenarios this applies the steps now due
        clock = time.monotonic()
        self._expire(clock)
        faults = exchange.stream_faults(now_ms) if exchange.faults else []
        self._connection_faults(faults, now_ms)
        renderer = Renderer(exchange, now_ms)
        if exchange.position_seq != self.seen_seq:
            with exchange.lock:
                changes = exchange.position_changes_since(self.seen_seq)
                self.seen_seq = exchange.position_seq
            if changes is None:  # fell behind the change log: everyone starts over
                for conn in self.logged_in():
                    for sub in conn.subscriptions.values():
                        if sub.pushes:
                            self.snapshot(conn, sub)
            else:
                self._push_events(changes, renderer, faults, now_ms)
        self._push_regular(clock, renderer)

    def _expire(self, clock: float) -> None:
        idle = self.exchange.ws_idle_seconds
        for conn in list(self.connections.values()):
            if conn.closing:
                # OKX breaks a connection nothing could be pushed on for 30 s; without the cut,
                # a client that reads nothing would keep its connection and tasks forever.
                if conn.close_overdue(clock, idle):
                    conn.abort()
                continue
            if clock - conn.last_received > idle:
                conn.close(4004, IDLE_REASON)
            elif conn.account is not None:
                account = self.exchange.accounts.get(conn.account)
                if account is None or account.api_key != conn.api_key:
                    conn.close(4007, "API key updated or deleted")

    def _connection_faults(self, faults: list[ArmedFault], now_ms: int) -> None:
        for armed in faults:
            fault = armed.fault
            if fault.kind not in ("ws_drop", "ws_upgrade_notice"):
                continue
            for conn in self.logged_in():
                if fault.account not in (None, conn.account):
                    continue
                if not armed.active(now_ms):
                    break
                if fault.kind == "ws_drop":
                    self.exchange.consume(armed)
                    conn.abort()
                elif not conn.noticed:
                    self.exchange.consume(armed)
                    conn.noticed = True
                    conn.reply(None, "notice", code=UPGRADE_NOTICE, msg=UPGRADE_MESSAGE)
                    asyncio.get_running_loop().call_later(
                        fault.seconds, conn.close, 1012, "Service upgrade"
                    )

    def _push_events(
        self,
        changes: list[PositionChange],
        renderer: Renderer,
        faults: list[ArmedFault],
        now_ms: int,
    ) -> None:
        by_account: dict[str, list[PositionChange]] = defaultdict(list)
        for change in changes:
            by_account[change.account].append(change)
        for conn in self.logged_in():
            assert conn.account is not None
            mine = by_account.get(conn.account, [])
            for sub in conn.subscriptions.values():
                fresh = [c for c in mine if c.seq > sub.since_seq]
                if not sub.pushes or not fresh:
                    continue
                sub.since_seq = fresh[-1].seq
                if sub.channel == "positions":
                    records = renderer.changed(conn.account, fresh, sub)
                    kept, delay = self._through_faults(conn, records, faults, now_ms)
                    if kept:
                        self._send(
                            conn, positions_messages(sub, conn.uid, kept, snapshot=False), delay
                        )
                    continue
                for change in fresh:
                    posdata = [
                        pos_data(self.exchange.instruments[p.inst_id], p)
                        for p in change.positions.values()
                    ]
                    kept, delay = self._through_faults(conn, posdata, faults, now_ms)
                    if kept:
                        message = balance_and_position_message(
                            conn.uid, change.cause, renderer.p_time, kept
                        )
                        self._send(conn, [message], delay)

    def _through_faults(
        self, conn: Connection, records: list[Any], faults: list[ArmedFault], now_ms: int
    ) -> tuple[list[Any], ArmedFault | None]:
        """An event push's records that ws_miss_push lets through, and its ws_delay_push."""
        delay: ArmedFault | None = None
        for armed in faults:
            fault = armed.fault
            if fault.account not in (None, conn.account) or not armed.active(now_ms):
                continue
            if fault.kind == "ws_miss_push" and records:
                kept = [r for r in records if fault.inst_id and r["instId"] != fault.inst_id]
                if len(kept) < len(records):
                    self.exchange.consume(armed)
                    records = kept
            elif fault.kind == "ws_delay_push" and delay is None:
                delay = armed
        return records, delay

    def _send(
        self, conn: Connection, messages: list[dict[str, Any]], delay: ArmedFault | None
    ) -> None:
        if delay is None:
            for message in messages:
                conn.send(message)
            return
        self.exchange.consume(delay)
        for message in messages:
            conn.send_later(delay.fault.seconds, message)

    def _push_regular(self, clock: float, renderer: Renderer) -> None:
        for conn in self.logged_in():
            assert conn.account is not None
            for sub in conn.subscriptions.values():
                if sub.channel != "positions" or not sub.pushes or sub.interval == 0.0:
                    continue
                if clock < sub.next_regular:
                    continue
                sub.next_regular = clock + (sub.interval or self.exchange.ws_regular_push_seconds)
                records = renderer.records(conn.account, sub)
                for message in positions_messages(sub, conn.uid, records, snapshot=True):
                    conn.send(message)
