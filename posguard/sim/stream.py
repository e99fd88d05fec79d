"""OKX's private WebSocket, `/ws/v5/private`, and a minimal `/ws/v5/public`: the protocol
(what the channels push: channels.py; when: pushes.py). Query strings are ignored (ccxt's
sandbox appends `?brokerId=9999`).

Login: `{"op":"login","args":[{apiKey, passphrase, timestamp, sign}]}`, sign =
Base64(HMAC-SHA256(secret, timestamp + "GET" + "/users/self/verify")), timestamp in epoch
seconds as a string or a number. Checked in OKX's order: args missing or empty 60027 (not a
list, or an item not an object: 60012), timestamp format 60004, 30 s window against this
machine's clock or the simulated one 60006, key 60005, passphrase 60024, signature 60007.
A failed login is answered `{"event":"error",...}` and the connection is closed with 4001; a
second login on a logged-in connection gets 60031 and the connection stays up. Demo and live
keys are both accepted: OKX tells them apart by host (wspap, 50101), and one simulator
serves both on one URL.

Subscribe / unsubscribe (`id` echoed): 60011 before login, 60019 unknown op, 60012 malformed
request, 60018 unknown channel or instId, 60013 bad args (positions without a valid
instType, extraParams that is not JSON, or a subscribe whose `args` pass OKX's 64 KB,
65,536 bytes as compact JSON: nothing of it is subscribed). Channels: `positions` and
`balance_and_position` push; `account`, `orders` and `liquidation-warning` are acknowledged
and never push (the simulator keeps no balances or orders and gives no warnings). `ping`
(text) is answered `pong`. A connection that sends nothing for `exchange.ws_idle_seconds` is
closed with 4004.

Pushes: `positions` sends a snapshot on subscribe (pages of at most 100 records, `curPage`
from 1, `lastPage`), then an `event_update` (no page fields) within about 50 ms of each
change of the account's positions or leverage, holding only the changed positions (a closed
one once, with `pos` "0"), and a regular snapshot every `exchange.ws_regular_push_seconds`
(extraParams `updateInterval`: "0" events only; 2000, 3000, 4000 ms that period; anything
else the default). `balance_and_position` sends a snapshot, then one message per change
with eventType filled (open, add, close), liquidation, adl or set_leverage, and "snapshot"
after a scenario load. Closes: 4001 failed login, 4004 idle, 4005 "Buffer is full" when a
client stops reading and `exchange.ws_outbox_frames` frames wait for it (those are dropped),
4007 account removed or re-keyed by a scenario load, 1012 after a 64008 upgrade notice; a
close its client has not taken `exchange.ws_idle_seconds` later (it reads nothing, so the
frame cannot leave) becomes a cut. `ws_drop` and `POST /__sim__/ws/drop` cut the TCP
connection without a close frame (4006 on an ASGI server whose transport cannot be
reached). A frame over uvicorn's `ws_max_size` (16 MiB) is closed 1009 by uvicorn; OKX's
own frame limit is not in the facts sheet, so the simulator adds none.

Limits while `exchange.enforce_rate_limits` (off in throughput benchmarks): 3 new
connections per second per client address (more are refused before the upgrade with HTTP
429), 480 login/subscribe/unsubscribe per connection per hour (60014), 30 connections per
channel per account (the next gets its ack, then `channel-conn-count-error`, and no pushes).
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from contextlib import suppress
from typing import Any

from starlette.responses import PlainTextResponse
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket

from posguard.okx.signing import verify
from posguard.okx.stream import (
    CONN_COUNT_ERROR,
    CONNECTIONS_PER_CHANNEL,
    CONNECTIONS_PER_SECOND,
    LOGIN_WINDOW_MS,
    OPS_PER_HOUR,
    PRIVATE_PATH,
    PUBLIC_PATH,
    VERIFY_PATH,
)
from posguard.sim.book import Account, SimRefusal
from posguard.sim.channels import PUSHING_CHANNELS, SILENT_CHANNELS, parse_subscription
from posguard.sim.exchange import SimExchange
from posguard.sim.limits import SlidingWindow
from posguard.sim.pushes import Connection, Pusher

REQUEST_ID = re.compile(r"[A-Za-z0-9]{1,32}")
# "Total length of the channels in one subscribe request <= 64 KB", measured here as the
# bytes of its `args` in compact JSON.
SUBSCRIBE_ARGS_BYTES = 65_536


def args_too_long(args: list[Any]) -> bool:
    text = json.dumps(args, separators=(",", ":"), ensure_ascii=False)
    return len(text.encode("utf-8")) > SUBSCRIBE_ARGS_BYTES


def check_login(exchange: SimExchange, args: Any) -> Account:
    if args is None or args == []:
        raise SimRefusal("60027", "Param empty")
    if not isinstance(args, list) or not isinstance(args[0], dict):
        raise SimRefusal("60012", "")
    arg = args[0]
    values = [arg.get(name) for name in ("apiKey", "passphrase", "timestamp", "sign")]
    if any(value in (None, "") for value in values):
        raise SimRefusal("60027", "Param empty")
    key, passphrase, stamp, signature = values
    if not (isinstance(key, str) and isinstance(passphrase, str) and isinstance(signature, str)):
        raise SimRefusal("60012", "")
    if isinstance(stamp, bool) or not isinstance(stamp, int | str):
        raise SimRefusal("60004", "Invalid timestamp")
    stamp_text = str(stamp)
    if not (stamp_text.isascii() and stamp_text.isdigit()) or len(stamp_text) > 12:
        raise SimRefusal("60004", "Invalid timestamp")
    if not exchange.stamp_is_current(int(stamp_text) * 1000, LOGIN_WINDOW_MS):
        raise SimRefusal("60006", "Timestamp request expired")
    account = exchange.by_key.get(key)
    if account is None:
        raise SimRefusal("60005", "Invalid apiKey")
    if passphrase != account.passphrase:
        raise SimRefusal("60024", "Wrong passphrase")
    if not verify(account.secret_key, signature, stamp_text, "GET", VERIFY_PATH, ""):
        raise SimRefusal("60007", "Invalid sign")
    return account


class StreamHub:
    """Every stream connection of one app, and the loop that pushes to them."""

    def __init__(self, exchange: SimExchange) -> None:
        self.exchange = exchange
        self.pusher = Pusher(exchange)
        self.admissions = SlidingWindow()

    def routes(self) -> list[WebSocketRoute]:
        async def private(websocket: WebSocket) -> None:
            await self.serve(websocket, private=True)

        async def public(websocket: WebSocket) -> None:
            await self.serve(websocket, private=False)

        return [WebSocketRoute(PRIVATE_PATH, private), WebSocketRoute(PUBLIC_PATH, public)]

    # -- connections ---------------------------------------------------------------------------

    async def serve(self, websocket: WebSocket, *, private: bool) -> None:
        client = websocket.client.host if websocket.client else "local"
        if self.exchange.enforce_rate_limits and not self.admissions.allow(
            client, CONNECTIONS_PER_SECOND, 1.0
        ):
            if "websocket.http.response" in websocket.scope.get("extensions", {}):
                await websocket.send_denial_response(
                    PlainTextResponse("Too Many Requests", status_code=429)
                )
            else:
                await websocket.close(4002, "Too many connections")
            return
        await websocket.accept()
        conn = Connection(websocket, private=private, outbox_frames=self.exchange.ws_outbox_frames)
        self.pusher.add(conn)
        writer = asyncio.get_running_loop().create_task(conn.write())
        try:
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    break
                conn.last_received = time.monotonic()
                text = message.get("text")
                if text is None:
                    text = (message.get("bytes") or b"").decode("utf-8", errors="replace")
                self.handle(conn, text)
        finally:
            self.pusher.remove(conn)
            writer.cancel()
            with suppress(asyncio.CancelledError):
                await writer

    def describe(self) -> list[dict[str, Any]]:
        return [c.describe() for c in self.pusher.connections.values() if c.private]

    def drop(self, account: str | None) -> int:
        """Cut private connections (one account's, or all) as a network failure would."""
        cut = [
            c
            for c in self.pusher.connections.values()
            if c.private and not c.closing and account in (None, c.account)
        ]
        for conn in cut:
            conn.abort()
        return len(cut)

    # -- requests ------------------------------------------------------------------------------

    def handle(self, conn: Connection, text: str) -> None:
        if conn.closing:
            return
        if text == "ping":
            conn.send("pong")
            return
        try:
            request = json.loads(text)
        except (ValueError, RecursionError):
            request = None
        if not isinstance(request, dict):
            conn.error(None, "60012", f"Invalid request: {text}")
            return
        request_id = request.get("id")
        if request_id is not None and not (
            isinstance(request_id, str) and REQUEST_ID.fullmatch(request_id)
        ):
            conn.error(None, "60012", f"Invalid request: {text}")
            return
        op = request.get("op")
        if op not in ("login", "subscribe", "unsubscribe"):
            conn.error(request_id, "60019", f"Invalid op: {op}")
            return
        if self.exchange.enforce_rate_limits and not conn.ops.allow("ops", OPS_PER_HOUR, 3600):
            conn.error(request_id, "60014", "Requests too frequent")
            return
        if op == "login":
            self._login(conn, request_id, request.get("args"), text)
        else:
            self._subscribe(conn, request_id, str(op), request.get("args"), text)

    def _login(self, conn: Connection, request_id: Any, args: Any, text: str) -> None:
        if not conn.private:
            conn.error(request_id, "60028", "Operation not supported by this URL")
            return
        if conn.account is not None:
            conn.error(
                request_id,
                "60031",
                "The WebSocket endpoint does not allow multiple or repeated logins.",
            )
            return
        try:
            account = check_login(self.exchange, args)
        except SimRefusal as refusal:
            conn.error(request_id, refusal.code, refusal.msg or f"Invalid request: {text}")
            conn.close(4001, "Login failed")
            return
        conn.account, conn.api_key, conn.uid = account.name, account.api_key, account.uid
        conn.reply(request_id, "login", code="0", msg="")

    def _subscribe(self, conn: Connection, request_id: Any, op: str, args: Any, text: str) -> None:
        if not conn.private:
            self._refuse_public(conn, request_id, args, text)
            return
        if conn.account is None:
            conn.error(request_id, "60011", "Please log in")
            return
        if not isinstance(args, list) or not args:
            conn.error(request_id, "60012", f"Invalid request: {text}")
            return
        if op == "subscribe" and args_too_long(args):
            # UNCONFIRMED: the facts sheet gives the 64 KB limit, not OKX's answer to it;
            # 60013 "Invalid args" is its code for args it will not take. (cryptofeed#816,
            # 2022: OKX closed 1009 "Max frame length of 65536 has been exceeded." instead.)
            conn.error(request_id, "60013", "Invalid args")
            return
        try:
            subs = [parse_subscription(arg, self.exchange) for arg in args]
        except SimRefusal as refusal:
            conn.error(request_id, refusal.code, refusal.msg or f"Invalid request: {text}")
            return
        for sub in subs:
            if op == "unsubscribe":
                conn.subscriptions.pop(sub.key, None)
                conn.reply(request_id, "unsubscribe", arg=sub.arg)
                continue
            conn.subscriptions.pop(sub.key, None)
            count = 1 + sum(
                1
                for other in self.pusher.logged_in()
                if other is not conn
                and other.account == conn.account
                and any(
                    s.channel == sub.channel and not s.over_cap
                    for s in other.subscriptions.values()
                )
            )
            conn.reply(request_id, "subscribe", arg=sub.arg)
            if self.exchange.enforce_rate_limits and count > CONNECTIONS_PER_CHANNEL:
                sub.pushes, sub.over_cap = False, True
                conn.subscriptions[sub.key] = sub
                conn.reply(None, CONN_COUNT_ERROR, channel=sub.channel, connCount=str(count - 1))
                continue
            conn.subscriptions[sub.key] = sub
            conn.reply(None, "channel-conn-count", channel=sub.channel, connCount=str(count))
            if sub.pushes:
                self.pusher.snapshot(conn, sub)

    def _refuse_public(self, conn: Connection, request_id: Any, args: Any, text: str) -> None:
        if not isinstance(args, list) or not args or not isinstance(args[0], dict):
            conn.error(request_id, "60012", f"Invalid request: {text}")
            return
        channel = str(args[0].get("channel", ""))
        if channel in PUSHING_CHANNELS or channel in SILENT_CHANNELS:
            conn.error(request_id, "60008", f"Endpoint does not support {channel} channels")
        else:  # the simulator has no market data streams
            conn.error(request_id, "60018", f"Wrong URL or channel:{channel} doesn't exist")
