"""The simulated exchange's state: accounts, books, prices, the clock, faults and scenario
steps (the endpoints that render it: endpoints.py; HTTP: app.py)."""

from __future__ import annotations

import copy
import dataclasses
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from posguard.instants import parse_instant
from posguard.okx import endpoints as ep
from posguard.sim import book
from posguard.sim.book import Account, Position, SimRefusal
from posguard.sim.market import (
    Instrument,
    default_price,
    load_instruments,
    synthetic_id,
    synthetic_instruments,
)
from posguard.sim.numbers import ZERO, dec, okx_str, round_to
from posguard.sim.scenario import STREAM_FAULT_KINDS, Fault, Scenario, ScenarioAccount, Step

# The credentials of the default account: fixed, documented and obviously not real.
DEMO_ACCOUNT = ScenarioAccount(
    name="demo",
    api_key="sim-demo-key",
    secret_key="sim-demo-secret",
    passphrase="sim-demo-passphrase",
    demo=True,
)
DEFAULT_CANDLE_HISTORY = 3000
MARKET_CANDLES_LATEST = 1440  # market/candles serves only the latest 1,440 bars
# The causes the private stream's balance_and_position channel names (its eventType).
STEP_CAUSES = {
    "open": "filled",
    "close": "filled",
    "liquidate": "liquidation",
    "adl": "adl",
    "set_leverage": "set_leverage",
}
# Changes kept for the stream's pushers; one that falls further behind re-sends snapshots.
CHANGE_LOG_SIZE = 10_000


def _instrument_keys(inst_id: str) -> list[book.PosKey]:
    return [(inst_id, mode, side) for mode in ("cross", "isolated") for side in book.POS_SIDES]


@dataclass
class ArmedFault:
    fault: Fault
    start_ms: int | None
    until_ms: int | None
    remaining: int | None

    def active(self, now_ms: int) -> bool:
        if self.remaining is not None and self.remaining <= 0:
            return False
        if self.start_ms is not None and now_ms < self.start_ms:
            return False
        return not (self.until_ms is not None and now_ms >= self.until_ms)


@dataclass
class Snapshot:
    at_ms: int
    positions: dict[book.PosKey, Position]


@dataclass(frozen=True)
class PositionChange:
    """One change of an account's positions or their leverage, for the private stream."""

    seq: int
    account: str
    cause: str  # balance_and_position's eventType; "snapshot" for a scenario (re)load
    at_ms: int
    # Copies of the touched positions after the change; a closed one keeps its last state
    # with pos 0 and uTime the close time (the stream pushes it once with pos "0").
    positions: dict[book.PosKey, Position]


@dataclass
class SimExchange:
    """Everything the simulator knows; thread-safe behind one lock."""

    scenario: Scenario = field(default_factory=Scenario)
    extra_accounts: list[ScenarioAccount] = field(default_factory=list)
    # Off only for throughput benchmarks: OKX's per-account limits are part of the behaviour.
    enforce_rate_limits: bool = True
    # The private stream: a connection silent this long is closed (4004), and `positions`
    # subscribers get a full snapshot this often unless they ask otherwise.
    ws_idle_seconds: float = 30.0
    ws_regular_push_seconds: float = 5.0
    # Frames waiting for one connection before it is closed 4005 "Buffer is full" (OKX
    # publishes no size). A tick queues its pushes before any is written, a page per 100
    # positions and a balance_and_position message per change: far below this for a client
    # that reads, unless a simulated-clock jump plays thousands of one account's steps.
    ws_outbox_frames: int = 4096
    lock: threading.RLock = field(default_factory=threading.RLock)
    # The stream's change signal: position_seq grows under the lock with every change, so a
    # pusher compares one int (no lock) and reads position_changes only when it moved.
    position_seq: int = field(default=0, init=False)
    position_changes: deque[PositionChange] = field(
        default_factory=lambda: deque(maxlen=CHANGE_LOG_SIZE), init=False
    )

    def __post_init__(self) -> None:
        self.load(self.scenario)

    # -- loading and time --------------------------------------------------------------------

    def load(self, scenario: Scenario) -> None:
        with self.lock:
            before = {name: a.positions for name, a in getattr(self, "accounts", {}).items()}
            self.scenario = scenario
            self.start_ms = scenario.start_ms
            self.wall_at_start = time.time()
            self.sim_now_ms = self.start_ms
            self.prices: dict[str, Decimal] = {k: dec(v) for k, v in scenario.prices.items()}
            self.instruments: dict[str, Instrument] = load_instruments(self.prices)
            self.instruments.update(synthetic_instruments(scenario.load.instruments))
            for inst_id in self.instruments:
                self.prices.setdefault(inst_id, default_price(inst_id))
            defined = scenario.accounts or ([] if self.extra_accounts else [DEMO_ACCOUNT])
            self.accounts: dict[str, Account] = {}
            for number, spec in enumerate([*defined, *self.extra_accounts], start=1):
                self.accounts[spec.name] = Account(
                    name=spec.name,
                    api_key=spec.api_key,
                    secret_key=spec.secret_key,
                    passphrase=spec.passphrase,
                    demo=spec.demo,
                    pos_mode=spec.pos_mode,
                    acct_lv=spec.acct_lv,
                    uid=str(100_000_000_000_000_000 + number),
                )
            self.by_key = {a.api_key: a for a in self.accounts.values()}
            self._open_load(scenario)
            for setting in scenario.leverage:
                account = self.accounts[setting.account or self.default_account]
                key = book.lever_key(account, setting.inst_id, setting.mgn_mode, setting.pos_side)
                account.leverage[key] = dec(setting.lever)
            for account in self.accounts.values():
                self._note_reload(account, before.get(account.name, {}))
            self.pending: deque[tuple[int, int, Step]] = deque(
                sorted(
                    (
                        (parse_instant(s.at, self.start_ms), i, s)
                        for i, s in enumerate(scenario.steps)
                    ),
                    key=lambda item: (item[0], item[1]),
                )
            )
            self.applied: list[dict[str, Any]] = []
            self.registry_writes: list[dict[str, Any]] = []
            self.snapshots: dict[str, list[Snapshot]] = {name: [] for name in self.accounts}
            if scenario.load.positions:
                # The "stale" fault serves snapshots: the loaded book is the first one.
                for account in self.accounts.values():
                    self.snapshots[account.name].append(
                        Snapshot(self.start_ms, copy.deepcopy(account.positions))
                    )
            self.faults = [
                ArmedFault(
                    f,
                    None if f.start is None else parse_instant(f.start, self.start_ms),
                    None if f.until is None else parse_instant(f.until, self.start_ms),
                    f.times,
                )
                for f in scenario.faults
            ]
            self._apply_due()

    def _open_load(self, scenario: Scenario) -> None:
        """Each account's synthetic positions: longs and shorts, cross and isolated, sizes
        varied so the snapshot is not one repeated row."""
        for account in self.accounts.values():
            for number in range(1, scenario.load.positions + 1):
                inst = self.instruments[synthetic_id(number)]
                side = "sell" if number % 2 == 0 else "buy"
                hedged = {"buy": "long", "sell": "short"}[side]
                book.open_or_add(
                    account,
                    inst,
                    mgn_mode="isolated" if number % 3 == 0 else "cross",
                    pos_side="net" if account.pos_mode == "net_mode" else hedged,
                    side=side,
                    size=Decimal(1 + number % 250),
                    price=self.prices[inst.inst_id],
                    now_ms=self.start_ms,
                )

    @property
    def default_account(self) -> str:
        return next(iter(self.accounts))

    def now_ms(self) -> int:
        with self.lock:
            if self.scenario.clock == "wall":
                elapsed = time.time() - self.wall_at_start
                self.sim_now_ms = self.start_ms + int(elapsed * 1000)
                self._apply_due()
            return self.sim_now_ms

    def stamp_is_current(self, stamp_ms: int, window_ms: int) -> bool:
        """A signed request's timestamp, within `window_ms` of the simulated clock (what
        public/time answers, so clients that sync to it pass) or of this machine's (clients
        that sign with their own time, as ccxt and python-okx do by default, pass too)."""
        wall_ms = time.time_ns() // 1_000_000
        return min(abs(stamp_ms - wall_ms), abs(stamp_ms - self.now_ms())) <= window_ms

    def advance(self, *, seconds: float | None = None, to_ms: int | None = None) -> int:
        """Move simulated time forward (never back) and apply the steps now due."""
        with self.lock:
            target = self.sim_now_ms
            if seconds is not None:
                target += int(seconds * 1000)
            if to_ms is not None:
                target = max(target, to_ms)
            self.sim_now_ms = target
            self._apply_due()
            return self.sim_now_ms

    def next_step_ms(self) -> int | None:
        with self.lock:
            return self.pending[0][0] if self.pending else None

    def end_ms(self) -> int:
        """The time of the last step or fault boundary: the scenario is over after it."""
        moments = [parse_instant(s.at, self.start_ms) for s in self.scenario.steps]
        moments += [f.until_ms for f in self.faults if f.until_ms is not None]
        moments += [f.start_ms for f in self.faults if f.start_ms is not None]
        return max(moments, default=self.start_ms)

    def _apply_due(self) -> None:
        while self.pending and self.pending[0][0] <= self.sim_now_ms:
            at_ms, index, step = self.pending.popleft()
            self.apply_step(step, at_ms, index)

    # -- scenario steps ----------------------------------------------------------------------

    def apply_step(self, step: Step, at_ms: int, index: int | None = None) -> None:
        with self.lock:
            account = self.accounts[step.account or self.default_account]
            cause = STEP_CAUSES.get(step.action)
            held = self._held(account, step.inst_id) if cause and step.inst_id else {}
            outcome = "ok"
            try:
                self._apply(step, account, at_ms)
            except SimRefusal as refusal:
                outcome = f"refused {refusal.code}: {refusal.msg}"
            if cause and step.inst_id:
                self._note_change(account, cause, at_ms, step.inst_id, held)
            self.applied.append(
                {
                    "index": index,
                    "at_ms": at_ms,
                    "action": step.action,
                    "account": account.name,
                    "instId": step.inst_id,
                    "outcome": outcome,
                    "note": step.note,
                }
            )
            self.snapshots[account.name].append(Snapshot(at_ms, copy.deepcopy(account.positions)))

    def _apply(self, step: Step, account: Account, at_ms: int) -> None:
        if step.action == "registry_write":
            self.registry_writes.append(
                {
                    "at_ms": at_ms,
                    "account": account.name,
                    "instId": step.inst_id,
                    "posSide": step.pos_side,
                    "mgnMode": step.mgn_mode,
                    "pos": step.pos,
                    "lever": step.lever,
                    "avgPx": step.px,
                }
            )
            return
        assert step.inst_id is not None  # validated with the scenario
        inst = self.instruments[step.inst_id]
        price = dec(step.px) if step.px is not None else self.prices[inst.inst_id]
        price = round_to(price, inst.tick_sz)
        if step.action == "price":
            self.prices[inst.inst_id] = price
        elif step.action == "open":
            assert step.sz is not None
            self.prices[inst.inst_id] = price
            book.open_or_add(
                account,
                inst,
                mgn_mode=step.mgn_mode,
                pos_side=step.pos_side,
                side=step.side,
                size=dec(step.sz),
                price=price,
                now_ms=at_ms,
            )
        elif step.action in ("close", "liquidate", "adl"):
            kind = {"close": "close", "liquidate": "liquidation", "adl": "adl"}[step.action]
            key = self._key(account, inst.inst_id, step.mgn_mode, step.pos_side)
            book.close(
                account,
                inst,
                key=key,
                size=None if step.sz is None else dec(step.sz),
                price=price,
                now_ms=at_ms,
                kind=kind,  # type: ignore[arg-type]
            )
        elif step.action == "set_leverage":
            assert step.lever is not None
            side = None if step.pos_side == "net" else step.pos_side
            book.set_leverage(
                account, inst, lever=dec(step.lever), mgn_mode=step.mgn_mode, pos_side=side
            )
        elif step.action == "pending_orders":
            account.pending_orders[(inst.inst_id, step.mgn_mode)] = step.count or 0

    def _key(self, account: Account, inst_id: str, mgn_mode: str, pos_side: str) -> book.PosKey:
        if account.pos_mode == "net_mode":
            return (inst_id, mgn_mode, "net")
        if pos_side == "net":
            raise SimRefusal("51000", "Parameter posSide error: use long or short")
        return (inst_id, mgn_mode, pos_side)

    def set_leverage(
        self,
        account: Account,
        inst: Instrument,
        *,
        lever: Decimal,
        mgn_mode: str,
        pos_side: str | None,
    ) -> list[dict[str, str]]:
        """The set-leverage endpoint: book.set_leverage, noted for the private stream."""
        with self.lock:
            held = self._held(account, inst.inst_id)
            answer = book.set_leverage(
                account, inst, lever=lever, mgn_mode=mgn_mode, pos_side=pos_side
            )
            self._note_change(account, "set_leverage", self.now_ms(), inst.inst_id, held)
            return answer

    # -- the private stream's change signal ----------------------------------------------------

    def _held(self, account: Account, inst_id: str) -> dict[book.PosKey, tuple[Position, Any]]:
        """An instrument's positions with what the stream shows of them, before a change
        (looked up by key: a load test's book may hold a million positions)."""
        held: dict[book.PosKey, tuple[Position, Any]] = {}
        for key in _instrument_keys(inst_id):
            position = account.positions.get(key)
            if position is not None:
                held[key] = (position, self._footprint(account, position))
        return held

    def _footprint(self, account: Account, position: Position) -> Any:
        inst = self.instruments[position.inst_id]
        lever = book.leverage_of(account, inst, position.mgn_mode, position.pos_side)
        return (position.pos, position.avg_px, position.pos_id, position.u_time, lever)

    def _note_change(
        self,
        account: Account,
        cause: str,
        at_ms: int,
        inst_id: str,
        held: dict[book.PosKey, tuple[Position, Any]],
    ) -> None:
        touched: dict[book.PosKey, Position] = {}
        for key in _instrument_keys(inst_id):
            position = account.positions.get(key)
            if position is not None:
                was = held.get(key)
                if was is None or was[1] != self._footprint(account, position):
                    touched[key] = copy.copy(position)
        for key, (position, _) in held.items():
            if key not in account.positions:
                # book.close left the closed object at pos 0 with uTime the close time.
                touched[key] = dataclasses.replace(position, pos=ZERO)
        self._record(account, cause, at_ms, touched)

    def _note_reload(self, account: Account, before: dict[book.PosKey, Position]) -> None:
        # The live positions, not copies: a load test's book would double in memory.
        touched = dict(account.positions)
        for key, position in before.items():
            if key not in touched:
                touched[key] = dataclasses.replace(position, pos=ZERO, u_time=self.start_ms)
        self._record(account, "snapshot", self.start_ms, touched)

    def _record(
        self, account: Account, cause: str, at_ms: int, touched: dict[book.PosKey, Position]
    ) -> None:
        if not touched:
            return
        self.position_seq += 1
        self.position_changes.append(
            PositionChange(self.position_seq, account.name, cause, at_ms, touched)
        )

    def position_changes_since(self, seq: int) -> list[PositionChange] | None:
        """The changes after `seq`, oldest first; None if the log no longer holds them all."""
        with self.lock:
            fresh: list[PositionChange] = []
            for change in reversed(self.position_changes):
                if change.seq <= seq:
                    break
                fresh.append(change)
            if fresh and fresh[-1].seq != seq + 1:
                return None
            return fresh[::-1]

    # -- faults --------------------------------------------------------------------------------

    def faults_for(
        self, endpoint: ep.Endpoint, account: str | None, inst_ids: set[str]
    ) -> list[ArmedFault]:
        now = self.now_ms()
        matched: list[ArmedFault] = []
        with self.lock:
            for armed in self.faults:
                fault = armed.fault
                if fault.endpoint not in ("*", endpoint.name, endpoint.path):
                    continue
                if fault.account is not None and fault.account != account:
                    continue
                # Request-level faults on one instrument fire when that instrument is asked
                # for, or when the request names no instrument at all.
                if (
                    fault.inst_id is not None
                    and fault.kind not in ("lever_empty", "drop_position")
                    and inst_ids
                    and fault.inst_id not in inst_ids
                ):
                    continue
                if not armed.active(now):
                    continue
                matched.append(armed)
        return matched

    def stream_faults(self, now_ms: int) -> list[ArmedFault]:
        """The private-stream faults active now (their account is matched by the stream)."""
        with self.lock:
            return [
                armed
                for armed in self.faults
                if armed.fault.kind in STREAM_FAULT_KINDS and armed.active(now_ms)
            ]

    @staticmethod
    def consume(armed: ArmedFault) -> None:
        if armed.remaining is not None:
            armed.remaining -= 1

    # -- endpoint handlers -----------------------------------------------------------------------

    def instrument(self, inst_id: str) -> Instrument:
        inst = self.instruments.get(inst_id)
        if inst is None:
            raise SimRefusal(
                "51001", "Instrument ID, Instrument ID code or Spread ID doesn't exist."
            )
        return inst

    def positions_at(self, account: Account, at_ms: int) -> dict[book.PosKey, Position]:
        older = [s for s in self.snapshots[account.name] if s.at_ms <= at_ms]
        return older[-1].positions if older else {}

    def state(self) -> dict[str, Any]:
        with self.lock:
            return {
                "scenario": self.scenario.name,
                "clock": self.scenario.clock,
                "now_ms": self.now_ms(),
                "start_ms": self.start_ms,
                "end_ms": self.end_ms(),
                "next_step_ms": self.next_step_ms(),
                "steps_left": len(self.pending),
                "applied": self.applied,
                "accounts": {
                    name: {
                        "demo": a.demo,
                        "pos_mode": a.pos_mode,
                        "acct_lv": a.acct_lv,
                        "positions": [
                            {
                                "instId": p.inst_id,
                                "mgnMode": p.mgn_mode,
                                "posSide": p.pos_side,
                                "pos": str(p.pos),
                                "posId": p.pos_id,
                                "cTime": p.c_time,
                                "lever": okx_str(
                                    book.leverage_of(
                                        a, self.instruments[p.inst_id], p.mgn_mode, p.pos_side
                                    )
                                ),
                            }
                            for p in a.positions.values()
                        ],
                    }
                    for name, a in self.accounts.items()
                },
            }
