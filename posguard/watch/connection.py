"""One account's private WebSocket: login, subscribe, keepalive, and reconnect.

The session logs in, waits for OKX's answer, subscribes, then reads. Nothing from OKX for
`ping_seconds` sends the text "ping"; no answer within `pong_seconds` ends the session (OKX
closes a silent connection after 30 s anyway). Any end but a stop reconnects with backoff
and jitter (a desk of accounts must not reconnect in step), logs in again and subscribes
again: OKX forgets both with the connection. A login refused for the credentials waits
`refused_retry_seconds` before trying again (the error names the account and what to fix;
hammering a wrong key only spends its login quota), or less when the settings give the account
other credentials: each reconnect logs in as the settings files say then (`refresh`). New
connections pass one gate per process: OKX allows 3 per second per IP.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import random
import ssl
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import httpx
from pydantic import SecretStr
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from posguard.errors import PosguardError
from posguard.okx import endpoints as ep
from posguard.okx.client import server_ms_of
from posguard.okx.envelope import CallContext, decode
from posguard.okx.stream import (
    CONN_COUNT_ERROR,
    CONNECTIONS_PER_SECOND,
    PING,
    UPGRADE_NOTICE,
    Frame,
    FrameError,
    LoggedIn,
    Notice,
    Other,
    PositionsPush,
    Refused,
    Subscribed,
    login_message,
    parse_frame,
    subscribe_message,
)

logger = logging.getLogger("posguard.watch")

# A session this long worked: a reconnect after it needs no backoff.
STEADY_SECONDS = 60.0


@dataclass(frozen=True)
class StreamAccount:
    """Where and as whom one account's stream logs in (secrets stay SecretStr)."""

    name: str
    url: str
    api_key: SecretStr
    secret_key: SecretStr
    passphrase: SecretStr
    # OKX's REST base URL: its public/time dates the login, as the REST client dates its
    # requests (OKX refuses a login 30 s off its clock: 60006). None: this machine's clock.
    time_url: str | None = None
    # Not part of who the account is: a refreshed account is the same one under any clock.
    wall_ms: Callable[[], int] = field(default=lambda: time.time_ns() // 1_000_000, compare=False)


@dataclass(frozen=True)
class StreamTiming:
    ping_seconds: float = 20.0
    pong_seconds: float = 5.0
    open_timeout_seconds: float = 10.0
    backoff_first_seconds: float = 0.5
    backoff_max_seconds: float = 30.0
    refused_retry_seconds: float = 300.0
    # While a login is refused for its credentials: how often the settings are read again, so
    # that a key mended in posguard.toml logs in within this, not at the next retry.
    refresh_seconds: float = 5.0
    # No positions push (OKX's regular snapshot comes about every 5 s) for this long: the
    # subscription is gone on the venue's side; reconnect.
    silence_seconds: float = 60.0
    # OKX allows 3 new connections per second per IP; a little under it, so that network
    # jitter cannot put a fourth in one of the venue's seconds.
    connects_per_second: float = CONNECTIONS_PER_SECOND * 0.93


@dataclass
class StreamStatus:
    # connecting, subscribed, reconnecting, refused, removed (from the settings), stopped
    state: str = "starting"
    connects: int = 0
    sessions: int = 0  # logged in and subscribed
    last_error: str | None = None
    history: list[str] = field(default_factory=list)  # the last states, for tests and status

    def move(self, state: str, error: str | None = None) -> None:
        self.state = state
        if error is not None:
            self.last_error = error
        self.history = [*self.history[-19:], state]


class VenueRefused(Exception):
    """The login, or a subscription, was refused: the session cannot work as it is."""

    def __init__(self, refusal: Refused) -> None:
        super().__init__(f"{refusal.code} {refusal.safe_msg}")
        self.refusal = refusal


class StreamStale(Exception):
    pass


class ConnectGate:
    """At most `per_second` new connections per second from this process."""

    def __init__(self, per_second: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = 1.0 / per_second if per_second > 0 else 0.0
        self.clock = clock
        self._next = 0.0

    async def wait(self, stopping: asyncio.Event) -> bool:
        """Wait for this connection's turn; False when `stopping` came first. (The slot is
        taken before the first await: no other stream can take the same one.)"""
        slot = max(self.clock(), self._next)
        self._next = slot + self.interval
        delay = slot - self.clock()
        if delay > 0:
            await _sleep_unless_stopped(delay, stopping)
        return not stopping.is_set()


class Backoff:
    def __init__(self, first: float, maximum: float) -> None:
        self.first = first
        self.maximum = maximum
        self.failures = 0
        # Its own generator: the jitter never moves the process's shared `random` state
        # (which property-based tests, among others, watch).
        self._random = random.Random()

    def next(self) -> float:
        ceiling = min(self.maximum, self.first * 2.0 ** min(self.failures, 30))
        self.failures += 1
        return ceiling / 2 + self._random.uniform(0, ceiling / 2)

    def reset(self) -> None:
        self.failures = 0


# The account as the settings say now: None when it is no longer configured. It raises what
# reading the settings raises (a broken edit: the stream keeps the account it has).
Refresh = Callable[[], StreamAccount | None]


async def run_stream(
    account: StreamAccount,
    on_frame: Callable[[str, Frame], None],
    stopping: asyncio.Event,
    *,
    gate: ConnectGate,
    timing: StreamTiming | None = None,
    status: StreamStatus | None = None,
    refresh: Refresh | None = None,
) -> None:
    """Keep `account`'s stream open until `stopping` is set; every frame goes to `on_frame`.
    With `refresh`, each reconnect logs in as the settings say then (a rotated key: OKX
    closes with 4007 and the next login uses the new one), and an account taken out of the
    settings is not watched until it is back."""
    status = status or StreamStatus()
    timing = timing or StreamTiming()
    backoff = Backoff(timing.backoff_first_seconds, timing.backoff_max_seconds)
    settings = None if refresh is None else _Settings(refresh)
    first = True
    while not stopping.is_set():
        if not first and settings is not None:
            found = await settings.account(account)
            if found is None:
                found = await _until_configured(account, settings, timing, status, stopping)
                if found is None:
                    break
            account = found
        first = False
        if not await gate.wait(stopping):
            break
        status.connects += 1
        status.move("connecting")
        began = time.monotonic()
        delay: float
        refused = False
        try:
            await _until_stopped(_session(account, on_frame, timing, status, backoff), stopping)
            if stopping.is_set():
                break
            # The session ended on OKX's upgrade notice: a new connection now, before the
            # venue closes this one (a minute later); with backoff if notices come at once
            # on every new connection.
            short = time.monotonic() - began < STEADY_SECONDS
            delay = backoff.next() if short else 0.0
            status.move("reconnecting", f"account {account.name}: service upgrade announced")
        except VenueRefused as exc:
            refusal = exc.refusal
            refused = refusal.credentials
            wait = timing.refused_retry_seconds if refused else backoff.next()
            text = (
                f"account {account.name}: OKX refused the stream ({refusal.code} "
                f"{refusal.safe_msg}): {refusal.advice()}; trying again in {wait:.0f} s"
                + (" or once its credentials change in the settings" if refused and refresh else "")
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
        if refused and settings is not None:
            await _until_changed(account, settings, delay, timing.refresh_seconds, stopping)
        elif delay > 0:
            await _sleep_unless_stopped(delay, stopping)
    status.move("stopped")


class _Settings:
    """The account as the settings say now, read off the event loop (a file system that hangs
    must not stall every stream's keepalive). A read that fails keeps the account as it was
    and is said once per reason, not once per account and try."""

    def __init__(self, refresh: Refresh) -> None:
        self.refresh = refresh
        self._said: str | None = None

    async def account(self, account: StreamAccount) -> StreamAccount | None:
        try:
            found = await asyncio.to_thread(self.refresh)
        except Exception as exc:  # a broken edit must not end the stream
            if str(exc) != self._said:
                self._said = str(exc)
                logger.error(
                    "account %s: settings not read again (%s); keeping the account as it was",
                    account.name,
                    exc,
                )
            return account
        self._said = None
        # The clock logins are dated with stays the one this stream was given.
        return None if found is None else dataclasses.replace(found, wall_ms=account.wall_ms)


async def _until_configured(
    account: StreamAccount,
    settings: _Settings,
    timing: StreamTiming,
    status: StreamStatus,
    stopping: asyncio.Event,
) -> StreamAccount | None:
    """The account is not in the settings (taken out, or a file caught half-saved): not
    watched until it is back. None: stopped meanwhile."""
    text = f"account {account.name}: not in the settings; watching again once it is"
    logger.warning(text)
    status.move("removed", text)
    while not stopping.is_set():
        await _sleep_unless_stopped(timing.refresh_seconds, stopping)
        found = await settings.account(account)
        if found is not None:
            return found
    return None


async def _until_changed(
    account: StreamAccount,
    settings: _Settings,
    longest: float,
    every: float,
    stopping: asyncio.Event,
) -> None:
    """Wait out a refusal for the credentials, or until the settings give the account other
    ones (or none): a mended key need not wait for the retry."""
    deadline = time.monotonic() + longest
    while not stopping.is_set():
        left = deadline - time.monotonic()
        if left <= 0:
            return
        await _sleep_unless_stopped(min(every, left), stopping)
        if await settings.account(account) != account:
            return


async def _sleep_unless_stopped(seconds: float, stopping: asyncio.Event) -> None:
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await stopping.wait()


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
    # Before the connection opens: no stream is held idle (nor left open by a stop) while
    # OKX's time is read.
    offset_ms = await _okx_offset_ms(account, timing.open_timeout_seconds)
    async with connect(
        account.url,
        open_timeout=timing.open_timeout_seconds,
        ping_interval=None,  # OKX's keepalive is its text "ping", sent below
        close_timeout=2,
        max_size=2**23,
        ssl=_tls() if account.url.startswith("wss://") else None,
    ) as ws:
        login = login_message(
            account.api_key.get_secret_value(),
            account.secret_key.get_secret_value(),
            account.passphrase.get_secret_value(),
            (account.wall_ms() + offset_ms) // 1000,
        )
        await ws.send(login)
        deliver = _Delivery(account.name, on_frame)
        await _answered(ws, timing.open_timeout_seconds, deliver, LoggedIn)
        await ws.send(subscribe_message(f"posguard{status.sessions + 1}"))
        # The positions ack, or the session is not what it claims to be (an error answers
        # a subscription OKX did not take; no ack at all is a stalled venue).
        await _answered(ws, timing.open_timeout_seconds, deliver, Subscribed)
        status.sessions += 1
        status.move("subscribed")
        keepalive = _Keepalive(timing)
        began = time.monotonic()
        while True:
            frame = await keepalive.next(ws, account.name)
            if isinstance(frame, Notice) and frame.code == UPGRADE_NOTICE:
                logger.info(
                    "account %s: OKX announced a service upgrade; reconnecting", account.name
                )
                return
            if isinstance(frame, Refused):
                raise VenueRefused(frame)
            if isinstance(frame, Other) and frame.message.get("event") == CONN_COUNT_ERROR:
                # Over OKX's 30 connections per channel: acknowledged, then never pushed.
                raise StreamStale(f"OKX refused the subscription: {CONN_COUNT_ERROR}")
            if isinstance(frame, PositionsPush):
                keepalive.pushed()
                if frame.last_page or time.monotonic() - began > STEADY_SECONDS:
                    # A whole snapshot arrived: this venue works; a reconnect after it starts
                    # the backoff over (before it, a venue that drops at once would be
                    # reconnected to in a tight loop).
                    backoff.reset()
            deliver(frame)


class _Delivery:
    """Frames to the watcher; its failure on one frame is said and the stream goes on (an
    exception here would end every account's stream with this one's)."""

    def __init__(self, name: str, on_frame: Callable[[str, Frame], None]) -> None:
        self.name = name
        self.on_frame = on_frame

    def __call__(self, frame: Frame) -> None:
        try:
            self.on_frame(self.name, frame)
        except Exception:
            logger.exception("account %s: a stream frame was not handled", self.name)


async def _answered(
    ws: ClientConnection, timeout: float, deliver: _Delivery, wanted: type[Frame]
) -> None:
    """Read until OKX answers with `wanted` (a refusal raises); pushes on the way are
    delivered."""
    deadline = time.monotonic() + timeout
    while True:
        async with asyncio.timeout(max(0.01, deadline - time.monotonic())):
            text = await ws.recv()
        frame = _parse(text, deliver.name)
        if isinstance(frame, wanted):
            return
        if isinstance(frame, Refused):
            raise VenueRefused(frame)
        if frame is not None and not isinstance(frame, Other | LoggedIn | Subscribed):
            deliver(frame)


async def _okx_offset_ms(account: StreamAccount, timeout: float) -> int:
    """OKX's clock minus this machine's, at least (its stamp before the answer arrived: the
    bound OkxClient.sync_clock keeps); 0 without a time_url or an answer (the login then
    says 60006 if this machine's clock is off)."""
    if account.time_url is None:
        return 0
    url = account.time_url.rstrip("/") + ep.PUBLIC_TIME.path
    try:
        async with httpx.AsyncClient(
            timeout=timeout, verify=_tls() if url.startswith("https://") else True
        ) as client:
            answer = await client.get(url)
        received = account.wall_ms()
        context = CallContext("GET", ep.PUBLIC_TIME.path, account.name)
        data = decode(answer.content, context, http_status=answer.status_code)
        return server_ms_of(data, account.name) - received
    except (httpx.HTTPError, PosguardError) as exc:
        logger.warning(
            "account %s: OKX's time not read (%s); the login is dated by this machine's clock",
            account.name,
            exc,
        )
        return 0


@functools.cache
def _tls() -> ssl.SSLContext:
    """One TLS context per process: building one loads the CA store (blocking the loop)."""
    return ssl.create_default_context()


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
        self.last_push = time.monotonic()

    def pushed(self) -> None:
        self.last_push = time.monotonic()

    async def next(self, ws: ClientConnection, name: str) -> Frame:
        while True:
            now = time.monotonic()
            if now - self.last_push > self.timing.silence_seconds:
                # OKX pushes a positions snapshot about every 5 s: a subscription that
                # stays silent was dropped on the venue's side.
                raise StreamStale(f"no positions push for {self.timing.silence_seconds:g} s")
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
