"""Many accounts' streams in one process: observed books, debounced notices, figures.

The watcher never writes the registry: it only says "this account changed" (a `Notice`) to
its `publish` callable (deployments.watch turns it into a Prefect event that starts the
account's reconcile run). A push is an observation with the venue's time; the reconcile run
reads the account itself and decides, so a lost, late or doubled notice costs latency, never
truth: the schedule stays the safety net.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from posguard.errors import DataError
from posguard.frames.parse import parse_epoch_ms
from posguard.okx.stream import BalancePositionPush, Frame, PositionsPush
from posguard.watch.connection import (
    ConnectGate,
    StreamAccount,
    StreamStatus,
    StreamTiming,
    run_stream,
)
from posguard.watch.debounce import Debouncer, Notice
from posguard.watch.observed import Change, ObservedBook, key_of

logger = logging.getLogger("posguard.watch")


@dataclass
class WatchFigures:
    """What the watcher did, for `posguard watch` and the benchmarks."""

    pushes: int = 0
    changes: int = 0
    notices: int = 0
    unreadable: int = 0
    unpublished: int = 0  # notices `publish` refused (said in the log, never silently)
    # Receipt time minus the venue's push time (pTime), ms, the last 1,000 pushes.
    lags_ms: list[int] = field(default_factory=list)

    def lag(self, lag_ms: int) -> None:
        self.lags_ms.append(lag_ms)
        if len(self.lags_ms) > 1000:
            del self.lags_ms[:-1000]


class Watcher:
    def __init__(
        self,
        accounts: Sequence[StreamAccount],
        publish: Callable[[Notice], None],
        *,
        quiet_seconds: float = 0.3,
        max_seconds: float = 2.0,
        timing: StreamTiming | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
        refresh: Callable[[str], StreamAccount | None] | None = None,
    ) -> None:
        """`refresh(name)`: the account as the settings say now (None: no longer there),
        read before each reconnect; without it, the accounts stay as given."""
        names = [a.name for a in accounts]
        if len(set(names)) != len(names):
            raise ValueError("each account is watched once")
        self.accounts = list(accounts)
        self.publish = publish
        self.timing = timing or StreamTiming()
        self.clock = clock
        self.wall_ms = wall_ms
        self.refresh = refresh
        self.books = {a.name: ObservedBook() for a in accounts}
        self.status = {a.name: StreamStatus() for a in accounts}
        self.debouncer = Debouncer(quiet_seconds, max_seconds)
        self.figures = WatchFigures()
        self._wake = asyncio.Event()

    def on_frame(self, account: str, frame: Frame) -> None:
        """One frame from `account`'s stream (called in the event loop, never blocks)."""
        book = self.books[account]
        now = self.clock()
        changes: list[Change] = []
        try:
            if isinstance(frame, PositionsPush):
                self.figures.pushes += 1
                if frame.event_type == "event_update":
                    changes = book.update(frame.records, "event_update")
                else:
                    changes = book.snapshot_page(frame.records, frame.page, frame.last_page)
            elif isinstance(frame, BalancePositionPush) and frame.event_type != "snapshot":
                self.figures.pushes += 1
                changes = book.update(frame.records, "balance_and_position")
                for record in frame.records:
                    self.debouncer.note_cause(account, key_of(record), frame.event_type, now)
        except DataError as exc:
            # The push cannot be read; the next regular snapshot (or the schedule) will be.
            self.figures.unreadable += 1
            logger.error("account %s: push not read: %s", account, exc)
            return
        if isinstance(frame, PositionsPush):
            self._lag(frame.records)
        if changes:
            self.figures.changes += len(changes)
            self.debouncer.add(account, changes, now)
            self._wake.set()

    def _lag(self, records: list[dict[str, Any]]) -> None:
        """A figure only: a push time that cannot be read leaves it out, nothing more."""
        for record in records[:1]:
            inst_id = str(record.get("instId") or "unknown")
            try:
                stamp = parse_epoch_ms(
                    record.get("pTime"), field="pTime", inst_id=inst_id, source="positions push"
                )
            except DataError:
                stamp = None
            lag = None if stamp is None else self.wall_ms() - stamp
            # A venue clock far from this machine's (a simulator replaying a past day) has
            # no lag worth a figure.
            if lag is not None and -1000 < lag < 600_000:
                self.figures.lag(lag)

    async def run(self, stopping: asyncio.Event) -> None:
        gate = ConnectGate(self.timing.connects_per_second)
        streams = [
            run_stream(
                account,
                self.on_frame,
                stopping,
                gate=gate,
                timing=self.timing,
                status=self.status[account.name],
                refresh=None
                if self.refresh is None
                else functools.partial(self.refresh, account.name),
            )
            for account in self.accounts
        ]
        await asyncio.gather(self._notify(stopping), *streams)

    async def _notify(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            due = self.debouncer.next_due()
            timeout = 1.0 if due is None else max(0.0, due - self.clock())
            self._wake.clear()
            waits = [
                asyncio.ensure_future(self._wake.wait()),
                asyncio.ensure_future(stopping.wait()),
            ]
            await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            for waiting in waits:
                waiting.cancel()
            self.flush(self.clock())
        self.flush(float("inf"))  # what was seen before the stop still goes out

    def flush(self, now: float) -> None:
        for notice in self.debouncer.due(now):
            try:
                self.publish(notice)
            except Exception:  # one account's notice must not stop the others' streams
                logger.exception("account %s: notice not published", notice.account)
                self.figures.unpublished += 1
                continue
            self.figures.notices += 1
