"""One account's private WebSocket: login, subscribe, keepalive, and reconnect.

The session logs in, waits for OKX's answer, subscribes, then reads. Nothing from OKX for
`ping_seconds` sends the text "ping"; no answer within `pong_seconds` ends the session (OKX
closes a silent connection after 30 s anyway). Any end but a stop reconnects with backoff
and jitter (a desk of accounts must not reconnect in step), logs in again and subscribes
again: OKX forgets both with the connection. A login refused for the credentials waits
`refused_retry_seconds` before trying again (the error names the account and what to fix;
hammering a wrong key only spends its login quota). New connections pass one gate per
process: OKX allows 3 per second per IP.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from pydantic import SecretStr
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from posguard.okx.stream import (
    PING,
    UPGRADE_NOTICE,
    Frame,
    FrameError,
    LoggedIn,
    Notice,
    Other,
    Refused,
    login_message,
    parse_frame,
    subscribe_message,
)

logger = logging.getLogger("posguard.watch")


@dataclass(frozen=True)
class StreamAccount:
    """Where and as whom one account's stream logs in (secrets stay SecretStr)."""

    name: str
    url: str
    api_key: SecretStr
    secret_key: SecretStr
    passphrase: SecretStr


@dataclass(frozen=True)
class StreamTiming:
    ping_seconds: float = 20.0
    pong_seconds: float = 5.0
    open_timeout_seconds: float = 10.0
    backoff_first_seconds: float = 0.5
    backoff_max_seconds: float = 30.0
    refused_retry_seconds: float = 300.0
    # OKX allows 3 new connections per second per IP; a little under it, so that network
    # jitter cannot put a fourth in one of the venue's seconds.
    connects_per_second: float = 2.8


@dataclass
class StreamStatus:
    state: str = "starting"  # connecting, subscribed, reconnecting, refused, stopped
    connects: int = 0
    sessions: int = 0  # logged in and subscribed
    last_error: str | None = None
    subscribed_at: float | None = None
    history: list[str] = field(default_factory=list)  # the last states, for tests and status

    def move(self, state: str, error: str | None = None) -> None:
        self.state = state
        if error is not None:
            self.last_error = error
        self.history = [*self.history[-19:], state]


class LoginRefused(Exception):
    def __init__(self, refusal: Refused) -> None:
        super().__init__(f"{refusal.code} {refusal.msg}")
        self.refusal = refusal


class StreamStale(Exception):
    pass


class ConnectGate:
    """At most `per_second` new connections per second from this process."""

    def __init__(self, per_second: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = 1.0 / per_second if per_second > 0 else 0.0
        self.clock = clock
        self._next = 0.0
        self._lock = asyncio.Lock()

    async def wait(self) -> None:
        async with self._lock:
            delay = self._next - self.clock()
            if delay > 0:
                await asyncio.sleep(delay)
            self._next = max(self.clock(), self._next) + self.interval


class Backoff:
    def __init__(self, first: float, maximum: float) -> None:
        self.first = first
        self.maximum = maximum
        self.failures = 0

    def next(self) -> float:
        ceiling = min(self.maximum, self.first * 2.0 ** min(self.failures, 30))
        self.failures += 1
        return ceiling / 2 + random.uniform(0, ceiling / 2)

    def reset(self) -> None:
        self.failures = 0


async def run_stream(
    account: StreamAccount,
    on_frame: Callable[[str, Frame], None],
    stopping: asyncio.Event,
    *,
    gate: ConnectGate,
    timing: StreamTiming | None = None,
    status: StreamStatus | None = None,
) -> None:
    """Keep `account`'s stream open until `stopping` is set; every frame goes to `on_frame`."""
    status = status or StreamStatus()
    timing = timing or StreamTiming()
    backoff = Backoff(timing.backoff_first_seconds, timing.backoff_max_seconds)
    while not stopping.is_set():
        await gate.wait()
        status.connects += 1
        status.move("connecting")
        delay: float
        try:
            await _until_stopped(_session(account, on_frame, timing, status, backoff), stopping)
            if stopping.is_set():
                break
            # The session ended on OKX's upgrade notice: a new connection now, before the
            # venue closes this one (a minute later).
            status.move("reconnecting", f"account {account.name}: service upgrade announced")
            delay = 0.0
        except LoginRefused as exc:
            refusal = exc.refusal
            wait = timing.refused_retry_seconds if refusal.credentials else backoff.next()
            text = (
                f"account {account.name}: OKX refused the stream's login ({refusal.code} "
                f"{refusal.msg}): {refusal.advice()}; trying again in {wait:.0f} s"
            )
            logger.error(text)
            status.move("refused", text)
            delay = wait
        except (OSError, TimeoutError, ConnectionClosed, InvalidHandshake, StreamStale) as exc:
            delay = backoff.next()
            text = f"account {account.name}: stream lost ({_describe(exc)}); reconnecting"
            logger.warning("%s in %.1f s", text, delay)
            status.move("reconnecting", text)
        except InvalidURI as exc:
            text = f"account {account.name}: the stream URL {account.url!r} is not valid: {exc}"
            logger.error(text)
            status.move("stopped", text)
            return
        if delay > 0:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await stopping.wait()
    status.move("stopped")


async def _until_stopped(session: Coroutine[Any, Any, None], stopping: asyncio.Event) -> None:
    task = asyncio.ensure_future(session)
    stop = asyncio.ensure_future(stopping.wait())
    done, _ = await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
    for pending in (task, stop):
        while not pending.done():
            # Cancelled again until it ends: one cancellation can be lost in a library's
            # own waiting, and a stop must land.
            pending.cancel()
            await asyncio.wait({pending}, timeout=1.0)
        with contextlib.suppress(asyncio.CancelledError, Exception):
            pending.result()
    if task in done:
        task.result()  # the session's end, or its error


async def _session(
    account: StreamAccount,
    on_frame: Callable[[str, Frame], None],
    timing: StreamTiming,
    status: StreamStatus,
    backoff: Backoff,
) -> None:
    async with connect(
        account.url,
        open_timeout=timing.open_timeout_seconds,
        ping_interval=None,  # OKX's keepalive is its text "ping", sent below
        close_timeout=2,
        max_size=2**23,
    ) as ws:
        login = login_message(
            account.api_key.get_secret_value(),
            account.secret_key.get_secret_value(),
            account.passphrase.get_secret_value(),
            int(time.time()),
        )
        await ws.send(login)
        await _logged_in(ws, timing.open_timeout_seconds, account.name, on_frame)
        await ws.send(subscribe_message(f"posguard{status.sessions + 1}"))
        status.sessions += 1
        status.subscribed_at = time.monotonic()
        status.move("subscribed")
        backoff.reset()
        keepalive = _Keepalive(timing)
        while True:
            frame = await keepalive.next(ws, account.name)
            if isinstance(frame, Notice) and frame.code == UPGRADE_NOTICE:
                logger.info(
                    "account %s: OKX announced a service upgrade; reconnecting", account.name
                )
                return
            if isinstance(frame, Refused):
                logger.warning(
                    "account %s: OKX refused a stream request (%s %s)",
                    account.name,
                    frame.code,
                    frame.msg,
                )
                if frame.code in ("60011", "60009"):
                    raise LoginRefused(frame)
                continue
            on_frame(account.name, frame)


async def _logged_in(
    ws: ClientConnection, timeout: float, name: str, on_frame: Callable[[str, Frame], None]
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        async with asyncio.timeout(max(0.01, deadline - time.monotonic())):
            text = await ws.recv()
        frame = _parse(text, name)
        if isinstance(frame, LoggedIn):
            return
        if isinstance(frame, Refused):
            raise LoginRefused(frame)
        if frame is not None and not isinstance(frame, Other):
            on_frame(name, frame)


class _Keepalive:
    """OKX's 4004 "No data received in 30s" is read two ways (nothing pushed, or nothing
    sent by the client; okx-ws-and-prefect-triggers.md 1.2, 1.7): a ping goes out after
    `ping_seconds` without a frame from OKX, and also after `ping_seconds` without one sent,
    however busy the pushes keep the connection. A ping that nothing follows within
    `pong_seconds` ends the session."""

    def __init__(self, timing: StreamTiming) -> None:
        self.timing = timing
        self.sent = time.monotonic()
        self.pinged: float | None = None  # when the unanswered ping went out

    async def next(self, ws: ClientConnection, name: str) -> Frame:
        while True:
            now = time.monotonic()
            wait = self.sent + self.timing.ping_seconds - now
            if self.pinged is not None:
                wait = min(wait, self.pinged + self.timing.pong_seconds - now)
            try:
                # asyncio.timeout, not wait_for: Python 3.11's wait_for can swallow a
                # cancellation that meets a frame arriving (the stop then never lands).
                async with asyncio.timeout(max(0.0, wait)):
                    text = await ws.recv()
            except TimeoutError:
                pinged = self.pinged
                if pinged is not None and time.monotonic() - pinged >= self.timing.pong_seconds:
                    raise StreamStale(f"no answer within {self.timing.pong_seconds:g} s") from None
                await self.ping(ws)
                continue
            self.pinged = None  # anything from OKX shows the connection alive
            if time.monotonic() - self.sent >= self.timing.ping_seconds:
                await self.ping(ws)
            frame = _parse(text, name)
            if frame is not None:
                return frame

    async def ping(self, ws: ClientConnection) -> None:
        await ws.send(PING)
        self.sent = time.monotonic()
        self.pinged = self.pinged or self.sent


def _parse(text: str | bytes, name: str) -> Frame | None:
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    try:
        return parse_frame(text)
    except FrameError as exc:
        # One unreadable frame: said and skipped; the next regular snapshot tells the truth.
        logger.error("account %s: unreadable stream frame: %s", name, exc)
        return None


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ConnectionClosed):
        received = exc.rcvd
        if received is not None:
            return f"closed by OKX with {received.code} {received.reason!r}"
        return "connection dropped without a close frame"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
