"""One account's life, played on the simulator: a bot, the exchange, and a reconciler polling.

A seeded generator drives the simulated exchange (`posguard.sim.SimExchange`) the way a
scalping bot and the venue do: the bot opens, adds, partially closes, closes, reopens (same
posId, new cTime, sometimes within the same second), flips side and changes leverage, on
several instruments, in net or long/short mode, cross and isolated; the venue liquidates and
ADLs; someone closes or opens a position by hand. The bot records what it did in the
registry with realistic lag and host-clock skew, and sometimes does not (a missed write) or
writes a wrong size: those are true drift. The reconciler polls every 30 s (plus on-demand
runs seconds after a scheduled one) and meets trouble: 5xx, timeouts, 429, a position
missing from one answer, stale answers, evidence pages cut short. OKX's private stream pushes
every change (the position's record, a close as pos "0") about 50 ms later, and the watcher's
own book (`posguard.watch.observed`) turns it into a change; a missed push is seen in the next
regular snapshot (a close then has no time). Each burst of changes starts an on-change run,
about a second later and now and then up to 20 s, that waits out the grace window as the
change trigger's run does; it is given the changes (`pushed`, what the event's payload
carries).

The output is a replay timeline (`shared/docs/replay-format.md`): exactly what the
reconciler saw and what the registry received, so that the life replays through the real
code path, and a failing life is a regression test by copying a file. Beside it, the truth:
what the exchange held and what the registry said at every moment, and why each changed.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from posguard.drift.model import DriftSettings, Key, iso_ms
from posguard.settings import WatchConfig
from posguard.sim import endpoints
from posguard.sim.book import SimRefusal, leverage_of
from posguard.sim.channels import closed_record, open_record
from posguard.sim.exchange import ArmedFault, SimExchange
from posguard.sim.numbers import okx_str
from posguard.sim.scenario import Fault, Scenario, ScenarioAccount, Step
from posguard.stages.fetch import SETTLE_MARGIN_MS
from posguard.stages.replay import settings_document
from posguard.watch.debounce import Debouncer, Notice
from posguard.watch.observed import Change as StreamChange
from posguard.watch.observed import ObservedBook

INSTRUMENTS = (
    "XRP-USDT-SWAP",
    "BTC-USDT-SWAP",
    "ETH-USDT-SWAP",
    "DOGE-USDT-SWAP",
    "ADA-USDT-SWAP",
    "LTC-USDT-SWAP",
)
Life = tuple[str, int]  # (posId, cTime)


@dataclass(frozen=True)
class Trouble:
    """How often things go wrong, per bot action or per poll."""

    missed_write: float = 0.03
    wrong_size: float = 0.02
    slow_write: float = 0.04
    catch_up: float = 0.5  # the bot notices a venue-side change and records it
    positions_error: float = 0.06  # 5xx, timeout, 429, malformed
    evidence_error: float = 0.03
    drop_position: float = 0.04
    stale: float = 0.04
    cut_pages: float = 0.06
    lever_empty: float = 0.02
    back_to_back: float = 0.1
    missed_push: float = 0.05  # a push lost; the watcher's next regular snapshot shows it

    @staticmethod
    def none() -> Trouble:
        return Trouble(0, 0, 0, 0.5, 0, 0, 0, 0, 0, 0, 0, 0)


@dataclass(frozen=True)
class Shape:
    minutes: float = 15.0
    poll_seconds: float = 30.0
    bot_think_seconds: float = 70.0  # mean time between one key's bot actions
    venue_events: float = 2.5  # mean venue-side changes per life
    stream: bool = True  # posguard watch: each change starts a run on-change


@dataclass(frozen=True)
class Holding:
    """What the exchange holds on one key at one moment."""

    pos: Decimal  # signed in net mode, positive for long/short legs
    lever: Decimal
    life: Life


@dataclass(frozen=True)
class Belief:
    """One registry write: what it says and which life it is about (the truth)."""

    pos: Decimal
    lever: Decimal | None
    life: Life | None  # the life the writer meant; None for a close
    recorded: bool  # the row names the life (posId, cTime) itself


@dataclass
class Change:
    at_ms: int
    key: Key
    reason: str  # what made it: an action name, "write", "heal"
    life: Life | None = None  # the life it concerned


@dataclass
class Poll:
    at_ms: int  # the snapshot's start
    done_ms: int  # when the registry was read and evidence fetched
    exchange_ms: int  # the moment the positions answer shows (earlier when stale)
    observed: bool  # every member answered
    dropped: str | None = None  # an instId missing from this answer
    lever_blank: str | None = None  # an instId whose lever the answer left ""
    history: list[dict[str, Any]] = field(default_factory=list)
    fills: list[dict[str, Any]] = field(default_factory=list)
    truncated: list[str] = field(default_factory=list)
    pushed: list[dict[str, Any]] = field(default_factory=list)  # an on-change run's


# OKX's regular positions push, as the simulator sends it.
REGULAR_PUSH_MS = int(SimExchange.ws_regular_push_seconds * 1000)


@dataclass
class LifeRecord:
    """A played life: the timeline to replay and the truth to judge it by."""

    seed: int
    number: int
    account: str
    settings: DriftSettings
    timeline: dict[str, Any]
    end_ms: int
    lots: dict[str, Decimal]
    net: bool
    holdings: dict[Key, list[tuple[int, Holding | None]]]
    beliefs: dict[Key, list[tuple[int, Belief]]]
    changes: list[Change]
    polls: list[Poll]
    endings: dict[int, str]  # a life's cTime -> what ended it


class _Queue:
    def __init__(self) -> None:
        self._items: list[tuple[int, int, str, dict[str, Any]]] = []
        self._counter = 0

    def push(self, at_ms: int, kind: str, **data: Any) -> None:
        self._counter += 1
        heapq.heappush(self._items, (at_ms, self._counter, kind, data))

    def peek(self) -> int | None:
        return self._items[0][0] if self._items else None

    def pop_until(self, until_ms: int) -> Iterator[tuple[int, str, dict[str, Any]]]:
        while self._items and self._items[0][0] <= until_ms:
            at_ms, _, kind, data = heapq.heappop(self._items)
            yield at_ms, kind, data


class World:
    def __init__(
        self,
        seed: int,
        number: int,
        *,
        settings: DriftSettings,
        trouble: Trouble,
        shape: Shape,
    ) -> None:
        self.rng = random.Random(f"posguard-soak:{seed}:{number}")
        self.seed = seed
        self.number = number
        self.settings = settings
        self.trouble = trouble
        self.shape = shape
        self.account = f"life-{seed}-{number}"
        rng = self.rng
        self.net = rng.random() < 0.6
        spec = ScenarioAccount(
            name=self.account,
            api_key=f"soak-key-{number}",
            secret_key="soak-secret",
            passphrase="soak-passphrase",
            pos_mode="net_mode" if self.net else "long_short_mode",
        )
        self.exchange = SimExchange(Scenario(name=self.account, accounts=[spec], seed=seed))
        self.book = self.exchange.accounts[self.account]
        self.start_ms = self.exchange.start_ms
        self.end_ms = self.start_ms + int(shape.minutes * 60_000)
        chosen = rng.sample(INSTRUMENTS, rng.randint(1, 3))
        self.keys: list[Key] = []
        for inst_id in chosen:
            modes = (
                ["cross", "isolated"]
                if rng.random() < 0.25
                else [rng.choice(["cross", "isolated"])]
            )
            for mode in modes:
                sides = (
                    ["net"]
                    if self.net
                    else (
                        ["long", "short"] if rng.random() < 0.5 else [rng.choice(["long", "short"])]
                    )
                )
                self.keys.extend((inst_id, side, mode) for side in sides)
        self.records_life = rng.random() < 0.4
        self.records_lever = rng.random() < 0.6
        self.skew_ms = rng.randint(-10_000, 10_000)  # the bot's host clock vs OKX
        self.queue = _Queue()
        self.steps: list[dict[str, Any]] = []
        self.holdings: dict[Key, list[tuple[int, Holding | None]]] = {k: [] for k in self.keys}
        self.beliefs: dict[Key, list[tuple[int, Belief]]] = {k: [] for k in self.keys}
        self.changes: list[Change] = []
        self.polls: list[Poll] = []
        self.endings: dict[int, str] = {}
        # The stream has its own generator: the lives a seed plays stay as they were.
        self.stream_rng = random.Random(f"posguard-soak-stream:{seed}:{number}")
        # The watcher's own debouncer, at [watch]'s defaults, in whole milliseconds of the
        # life's clock (seconds as floats once made a notice never quite due: a hang).
        watch = WatchConfig()
        self.debouncer = Debouncer(
            round(watch.quiet_seconds * 1000), round(watch.max_delay_seconds * 1000)
        )
        self.clock_ms = self.start_ms  # how far the life has been played
        self.observed = ObservedBook()  # the watcher's, started before the life: nothing open
        self.observed.snapshot_page([], 1, True)
        self.on_change: list[tuple[int, int, list[dict[str, Any]]]] = []  # a heap of runs

    # -- the exchange's truth -----------------------------------------------------------------

    def _holding(self, key: Key) -> Holding | None:
        inst_id, pos_side, mgn_mode = key
        position = self.book.positions.get((inst_id, mgn_mode, pos_side))
        if position is None:
            return None
        inst = self.exchange.instruments[inst_id]
        lever = leverage_of(self.book, inst, mgn_mode, pos_side)
        return Holding(position.pos, lever, (position.pos_id, position.c_time))

    def _note_holdings(self, at_ms: int, reason: str, touched: Key | None) -> None:
        for key in self.keys:
            now = self._holding(key)
            series = self.holdings[key]
            before = series[-1][1] if series else None
            if now != before:
                series.append((at_ms, now))
                if before is not None and (now is None or now.life != before.life):
                    self.endings.setdefault(before.life[1], reason)
                life = now.life if now is not None else (before.life if before else None)
                why = reason if key == touched or touched is None else f"{reason}-side"
                self.changes.append(Change(at_ms, key, why, life))
                if self.shape.stream:
                    self._push(at_ms, key, now, before)

    # -- OKX's private stream and posguard watch ------------------------------------------------

    def _push(self, at_ms: int, key: Key, now: Holding | None, before: Holding | None) -> None:
        """OKX pushes the change (the position as it stands, a close as its pos "0" record)
        about 50 ms later, and `posguard watch`'s own book (`ObservedBook`) makes it a
        change; a missed push is seen in the next regular snapshot instead."""
        rng = self.stream_rng
        if rng.random() < self.trouble.missed_push:
            self.queue.push(at_ms + rng.randint(100, REGULAR_PUSH_MS), "stream_snapshot")
            return
        p_time = at_ms + rng.randint(0, 50)
        if now is not None:
            record = self._pushed_record(key, p_time)
        else:
            assert before is not None
            inst = self.exchange.instruments[key[0]]
            book_key = (key[0], key[2], key[1])
            record = closed_record(inst, book_key, before.life, at_ms, str(p_time))
        self._notice(p_time, self.observed.update([record], "event_update"))

    def _pushed_record(self, key: Key, p_time: int) -> dict[str, Any]:
        inst_id, pos_side, mgn_mode = key
        position = self.book.positions[(inst_id, mgn_mode, pos_side)]
        return open_record(self.exchange, self.book, position, str(p_time))

    def _regular_snapshot(self, at_ms: int) -> None:
        """OKX's regular push of every open position: what a missed push hid."""
        records = [
            self._pushed_record(key, at_ms) for key in self.keys if self._holding(key) is not None
        ]
        self._notice(at_ms, self.observed.snapshot_page(records, 1, True))

    def _notice(self, pushed_ms: int, changes: list[StreamChange]) -> None:
        """The watcher's debouncer: a burst of changes is one notice, one event, one run."""
        if not changes:
            return
        seen_ms = pushed_ms + self.stream_rng.randint(1, 30)
        self._flush_notice(seen_ms)  # a notice due before this change goes out first
        self.debouncer.add(self.account, changes, seen_ms)

    def _notice_due_ms(self) -> int | None:
        due = self.debouncer.next_due()
        return None if due is None else int(due)

    def _send(self, notice: Notice, due_ms: int) -> None:
        """The event starts an on-change run: it is running a second or so later and takes
        its snapshot once the latest change is past the grace window."""
        changes = [change.to_json() for change in notice.changes]
        timed = [c["venue_ms"] for c in changes if c["venue_ms"] is not None]
        # Event to a running flow: about a second, and now and then a slow trigger or a wait
        # for the account's slot behind a scheduled run.
        rng = self.stream_rng
        started = due_ms + (
            rng.randint(600, 2_500) if rng.random() < 0.9 else rng.randint(4_000, 20_000)
        )
        changed = max(timed) if len(timed) == len(changes) else started
        at_ms = max(started, changed + int(self.settings.grace_seconds * 1000) + SETTLE_MARGIN_MS)
        at_ms = max(at_ms, self.clock_ms + 1)
        heapq.heappush(self.on_change, (at_ms, len(self.polls) + len(self.on_change), changes))

    def _flush_notice(self, until_ms: int) -> None:
        due_ms = self._notice_due_ms()
        if due_ms is not None and due_ms <= until_ms:
            for notice in self.debouncer.due(due_ms):
                self._send(notice, due_ms)

    def _apply(self, at_ms: int, step: Step, reason: str, key: Key) -> bool:
        self.exchange.advance(to_ms=at_ms)
        try:
            self.exchange.apply_step(step, at_ms)
        except SimRefusal:
            return False
        if self.exchange.applied and self.exchange.applied[-1]["outcome"] != "ok":
            return False
        self._note_holdings(at_ms, reason, key)
        return True

    def _step(self, action: str, key: Key, **fields: Any) -> Step:
        inst_id, pos_side, mgn_mode = key
        return Step.model_validate(
            {
                "at": "+0s",
                "action": action,
                "account": self.account,
                "instId": inst_id,
                "mgnMode": mgn_mode,
                "posSide": pos_side,
                **fields,
            }
        )

    def _lots(self, key: Key, low: int, high: int) -> Decimal:
        lot = self.exchange.instruments[key[0]].lot_sz
        return lot * self.rng.randint(low, high)

    # -- the bot --------------------------------------------------------------------------------

    def _bot_acts(self, at_ms: int, key: Key) -> None:
        rng = self.rng
        held = self._holding(key)
        side = key[1]
        opening = "buy" if side in ("net", "long") else "sell"
        if side == "net":
            opening = rng.choice(["buy", "sell"])
        if held is None:
            if rng.random() < 0.6:
                size = self._lots(key, 10, 400)
                if self._apply(
                    at_ms, self._step("open", key, side=opening, sz=str(size)), "open", key
                ):
                    self._bot_writes(at_ms, key)
            return
        direction = "buy" if held.pos > 0 or side == "long" else "sell"
        if side == "short":
            direction = "sell"
        against = "sell" if direction == "buy" else "buy"
        roll = rng.random()
        if roll < 0.2:
            size = self._lots(key, 5, 100)
            if self._apply(
                at_ms, self._step("open", key, side=direction, sz=str(size)), "add", key
            ):
                self._bot_writes(at_ms, key)
        elif roll < 0.4:
            size = min(abs(held.pos) - self._lots(key, 1, 1), self._lots(key, 1, 200))
            if size > 0 and self._apply(
                at_ms, self._step("close", key, sz=str(size)), "partial_close", key
            ):
                self._bot_writes(at_ms, key)
        elif roll < 0.65:
            if self._apply(at_ms, self._step("close", key), "close", key):
                self._bot_writes(at_ms, key)
        elif roll < 0.78:
            # Close and open again: same posId (OKX reuses it), a new cTime, maybe the same ms.
            if self._apply(at_ms, self._step("close", key), "reopen", key):
                self._bot_writes(at_ms, key)
                again = at_ms + rng.choice([0, 0, rng.randint(1, 1500)])
                self.queue.push(again, "reopen", key=key, side=direction)
        elif roll < 0.85 and side == "net":
            size = abs(held.pos) + self._lots(key, 10, 300)
            if self._apply(at_ms, self._step("open", key, side=against, sz=str(size)), "flip", key):
                self._bot_writes(at_ms, key)
        elif roll < 0.93:
            lever = Decimal(rng.randint(1, 10))
            if self._apply(at_ms, self._step("set_leverage", key, lever=str(lever)), "lever", key):
                self._bot_writes(at_ms, key, all_keys_of=key[0])

    def _bot_writes(self, acted_ms: int, key: Key, *, all_keys_of: str | None = None) -> None:
        """The bot records what it just did (leverage applies to every key of a scope)."""
        keys = [k for k in self.keys if k[0] == all_keys_of] if all_keys_of else [key]
        for target in keys:
            self._write_later(acted_ms, target, self._holding(target), catching_up=False)

    def _write_later(
        self, acted_ms: int, key: Key, held: Holding | None, *, catching_up: bool
    ) -> None:
        rng = self.rng
        trouble = self.trouble
        if not catching_up and rng.random() < trouble.missed_write:
            return
        lag = int(rng.lognormvariate(5.5, 0.9))  # ~250 ms median, a long tail
        lag = min(lag, 3_500)
        if catching_up:
            lag = rng.randint(15_000, 120_000)
        elif rng.random() < trouble.slow_write:
            lag = rng.randint(6_000, 20_000)
        pos = Decimal(0) if held is None else held.pos
        if held is not None and not catching_up and rng.random() < trouble.wrong_size:
            lot = self.exchange.instruments[key[0]].lot_sz
            wrong = abs(pos) + lot * rng.choice([-3, -2, -1, 1, 2, 5])
            if wrong > 0:
                pos = wrong if pos > 0 else -wrong
        belief = Belief(
            pos=pos,
            lever=held.lever if held is not None and self.records_lever else None,
            life=held.life if held is not None else None,
            recorded=self.records_life and held is not None,
        )
        self.queue.push(acted_ms + lag, "write", key=key, belief=belief)

    def _land(self, at_ms: int, key: Key, belief: Belief) -> None:
        inst_id, pos_side, mgn_mode = key
        write: dict[str, Any] = {
            "instId": inst_id,
            "posSide": pos_side,
            "mgnMode": mgn_mode,
            "pos": okx_str(belief.pos),
            "updatedAt": iso_ms(at_ms + self.skew_ms),
        }
        if belief.lever is not None:
            write["lever"] = okx_str(belief.lever)
        if belief.recorded and belief.life is not None:
            write["posId"], write["cTime"] = belief.life[0], str(belief.life[1])
        self.steps.append({"at": iso_ms(at_ms), "registry_write": write})
        self.beliefs[key].append((at_ms, belief))
        self.changes.append(Change(at_ms, key, "write", belief.life))

    # -- the venue and other people -------------------------------------------------------------

    def _venue_acts(self, at_ms: int) -> None:
        rng = self.rng
        open_keys = [k for k in self.keys if self._holding(k) is not None]
        roll = rng.random()
        if roll < 0.1 or not open_keys:
            flat = [k for k in self.keys if self._holding(k) is None]
            if not flat:
                return
            key = rng.choice(flat)
            side = "buy" if key[1] in ("net", "long") else "sell"
            size = self._lots(key, 10, 200)
            if self._apply(
                at_ms, self._step("open", key, side=side, sz=str(size)), "external_open", key
            ):
                self._catch_up(at_ms, key)
            return
        key = rng.choice(open_keys)
        held = self._holding(key)
        assert held is not None
        partial = str(
            max(self._lots(key, 1, 1), abs(held.pos) / 2).quantize(
                self.exchange.instruments[key[0]].lot_sz
            )
        )
        if roll < 0.35:
            applied = self._apply(at_ms, self._step("liquidate", key), "liquidation", key)
        elif roll < 0.45:
            applied = self._apply(
                at_ms, self._step("liquidate", key, sz=partial), "partial_liquidation", key
            )
        elif roll < 0.6:
            applied = self._apply(at_ms, self._step("adl", key), "adl", key)
        elif roll < 0.68:
            applied = self._apply(at_ms, self._step("adl", key, sz=partial), "partial_adl", key)
        elif roll < 0.88:
            applied = self._apply(at_ms, self._step("close", key), "external_close", key)
        else:
            lever = Decimal(rng.randint(1, 10))
            applied = self._apply(
                at_ms, self._step("set_leverage", key, lever=str(lever)), "lever", key
            )
            if applied and rng.random() < self.trouble.catch_up:
                for target in (k for k in self.keys if k[0] == key[0]):
                    self._write_later(at_ms, target, self._holding(target), catching_up=True)
            return
        if applied:
            self._catch_up(at_ms, key)

    def _catch_up(self, at_ms: int, key: Key) -> None:
        if self.rng.random() < self.trouble.catch_up:
            self._write_later(at_ms, key, self._holding(key), catching_up=True)

    # -- the reconciler's polls -----------------------------------------------------------------

    def _poll(self, at_ms: int, pushed: list[dict[str, Any]] | None = None) -> None:
        rng = self.rng if pushed is None else self.stream_rng
        trouble = self.trouble
        done = at_ms + rng.randint(50, 1_200)
        self.exchange.advance(to_ms=at_ms)
        members: dict[str, Any] = {}
        poll = Poll(at_ms, done, at_ms, observed=True)
        faults: list[ArmedFault] = []
        if rng.random() < trouble.stale:
            lag = rng.uniform(0.5, min(4.0, self.settings.grace_seconds))
            poll.exchange_ms = at_ms - int(lag * 1000)
            faults.append(self._fault("stale", seconds=lag))
        open_now = [k for k in self.keys if self._holding(k) is not None]
        if open_now and rng.random() < trouble.drop_position:
            poll.dropped = rng.choice(open_now)[0]
            faults.append(self._fault("drop_position", instId=poll.dropped))
        if open_now and rng.random() < trouble.lever_empty:
            poll.lever_blank = rng.choice(open_now)[0]
            faults.append(self._fault("lever_empty", instId=poll.lever_blank))
        if rng.random() < trouble.positions_error:
            members["positions"] = {"error": rng.choice(ERRORS)}
            poll.observed = False
        else:
            records = endpoints.positions(self.exchange, self.book, {"instType": "SWAP"}, faults)
            members["positions"] = {"code": "0", "msg": "", "data": records}
        # Writes landing while the snapshot is taken are visible to the registry read.
        self._run_until(done)
        since = done - int(self.settings.lookback_seconds * 1000)
        history = [r for r in self.book.history if since <= int(r["uTime"]) <= done]
        history.sort(key=lambda r: -int(r["uTime"]))
        fills = [f for f in self.book.fills if since <= int(f["ts"]) <= done]
        fills.sort(key=lambda f: -int(f["billId"]))
        for name, records in (("positions_history", history), ("fills", fills)):
            if rng.random() < trouble.evidence_error:
                members[name] = {"error": rng.choice(ERRORS)}
                poll.observed = False
                continue
            if records and rng.random() < trouble.cut_pages:
                records = records[: rng.randint(0, 3)]
                poll.truncated.append(name)
            members[name] = {"code": "0", "msg": "", "data": records}
            if name == "positions_history":
                poll.history = records
            else:
                poll.fills = records
        if poll.truncated:
            members["truncated"] = poll.truncated
        if pushed:
            members["pushed"] = poll.pushed = pushed
        self.steps.append({"at": iso_ms(at_ms), "sync": members})
        self.polls.append(poll)

    def _fault(self, kind: str, **fields: Any) -> ArmedFault:
        fault = Fault.model_validate({"endpoint": "positions", "kind": kind, **fields})
        return ArmedFault(fault, None, None, 1)

    # -- the loop -----------------------------------------------------------------------------

    def _run_until(self, until_ms: int) -> None:
        self.clock_ms = max(self.clock_ms, until_ms)
        for at_ms, kind, data in self.queue.pop_until(until_ms):
            if kind == "bot":
                self._bot_acts(at_ms, data["key"])
                self._schedule_bot(at_ms, data["key"])
            elif kind == "reopen":
                key = data["key"]
                size = self._lots(key, 10, 400)
                step = self._step("open", key, side=data["side"], sz=str(size))
                if self._apply(at_ms, step, "reopen", key):
                    self._bot_writes(at_ms, key)
            elif kind == "venue":
                self._venue_acts(at_ms)
            elif kind == "write":
                self._land(at_ms, data["key"], data["belief"])
            elif kind == "stream_snapshot":
                self._regular_snapshot(at_ms)

    def _schedule_bot(self, after_ms: int, key: Key) -> None:
        wait = self.rng.expovariate(1 / self.shape.bot_think_seconds)
        self.queue.push(after_ms + max(1, int(wait * 1000)), "bot", key=key)

    def play(self) -> LifeRecord:
        rng = self.rng
        for key in self.keys:
            self._schedule_bot(self.start_ms, key)
        span = self.end_ms - self.start_ms
        for _ in range(_poisson(rng, self.shape.venue_events)):
            self.queue.push(self.start_ms + rng.randint(0, span), "venue")
        polls: list[int] = []
        moment = self.start_ms + rng.randint(5_000, 30_000)
        while moment < self.end_ms:
            polls.append(moment + rng.randint(-1_500, 1_500))
            if rng.random() < self.trouble.back_to_back:
                polls.append(polls[-1] + rng.randint(2_000, 8_000))
            moment += int(self.shape.poll_seconds * 1000)
        # No poll after the life's end: the truth the oracle judges by stops there (a jittered
        # last poll past it once made a true liquidation look like a false alarm).
        scheduled = sorted({min(at, self.end_ms - 1) for at in polls})  # sorted: a heap
        while scheduled or self.on_change:
            poll_at = min(
                scheduled[0] if scheduled else self.end_ms,
                self.on_change[0][0] if self.on_change else self.end_ms,
            )
            event_at = self.queue.peek()
            notice_at = self._notice_due_ms()
            if (
                notice_at is not None
                and notice_at <= poll_at
                and (event_at is None or notice_at <= event_at)
            ):
                self._run_until(notice_at)
                self._flush_notice(notice_at)
                continue
            if event_at is not None and event_at <= poll_at:
                self._run_until(event_at)
                continue
            pushed = None
            if scheduled and scheduled[0] == poll_at:
                heapq.heappop(scheduled)
            else:
                pushed = heapq.heappop(self.on_change)[2]
            # One run at a time: a poll waits for the one before it to have read the registry.
            at_ms = max(poll_at, self.clock_ms + 1)
            if at_ms < self.end_ms:
                self._poll(at_ms, pushed)
        self._run_until(self.end_ms)
        settings = self.settings
        timeline = {
            "account": self.account,
            "settings": settings_document(settings),
            "instruments": {
                "code": "0",
                "msg": "",
                "data": [
                    self.exchange.instruments[i].record for i in sorted({k[0] for k in self.keys})
                ],
            },
            "registry": [],
            "steps": self.steps,
            "soak": {"seed": self.seed, "life": self.number, "net": self.net},
        }
        return LifeRecord(
            seed=self.seed,
            number=self.number,
            account=self.account,
            settings=settings,
            timeline=timeline,
            end_ms=self.end_ms,
            lots={k[0]: self.exchange.instruments[k[0]].lot_sz for k in self.keys},
            net=self.net,
            holdings=self.holdings,
            beliefs=self.beliefs,
            changes=self.changes,
            polls=self.polls,
            endings=self.endings,
        )


ERRORS: tuple[dict[str, Any], ...] = (
    {"http": 503, "code": "50001", "msg": "Service temporarily unavailable"},
    {"http": 500, "code": "50013", "msg": "System is busy, please try again later"},
    {"http": 429, "code": "50011", "msg": "Too Many Requests"},
    {"timeout": True},
)


def _poisson(rng: random.Random, mean: float) -> int:
    count, total = 0, rng.expovariate(1.0)
    while total < mean:
        count += 1
        total += rng.expovariate(1.0)
    return count
