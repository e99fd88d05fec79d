"""The private WebSocket's channels: what a subscription asks for, and the `positions` and
`balance_and_position` messages rendered from the exchange's state. No I/O here (the
protocol: stream.py; when and to whom messages go: pushes.py).

Records are REST's (`book.render_position` at the exchange's mark price) plus `pTime`, the
venue time of the push. A position closed to zero is pushed once as a record with `pos` "0"
that keeps its posId, cTime, instId, mgnMode and posSide, with uTime the close time.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from posguard.sim import book
from posguard.sim.book import Account, Position, PosKey, SimRefusal
from posguard.sim.exchange import PositionChange, SimExchange
from posguard.sim.market import Instrument
from posguard.sim.numbers import okx_str

# Records per `positions` message. OKX splits large pushes without documenting the size.
PAGE_SIZE = 100
POSITION_INST_TYPES = ("MARGIN", "SWAP", "FUTURES", "OPTION", "EVENTS", "ANY")
SIMULATED_INST_TYPES = ("SWAP", "ANY")  # the simulator lists swaps only
PUSHING_CHANNELS = ("positions", "balance_and_position")
# Acknowledged, counted against the connection cap, and silent: the simulator keeps no
# balances or orders, and never warns before a liquidation.
SILENT_CHANNELS = ("account", "orders", "liquidation-warning")
NEEDS_INST_TYPE = ("positions", "orders", "liquidation-warning")
REGULAR_INTERVALS_MS = (2000, 3000, 4000)  # updateInterval values OKX honours

Rendered = tuple[Instrument, dict[str, Any]]


@dataclass
class Subscription:
    arg: dict[str, Any]  # as the client sent it: acknowledgements echo it
    channel: str
    inst_type: str = ""
    inst_family: str = ""
    inst_id: str = ""
    # Seconds between regular snapshots: None is the exchange's default, 0 events only.
    interval: float | None = None
    pushes: bool = True  # False: a silent channel, or over the connection cap
    over_cap: bool = False  # the account's 31st connection on this channel: not counted
    since_seq: int = 0  # changes up to this one are in what the client already has
    next_regular: float = 0.0  # monotonic time of the next regular snapshot

    @property
    def key(self) -> tuple[str, str, str, str, str]:
        """What identifies a subscription for replacing or unsubscribing it."""
        return (
            self.channel,
            self.inst_type,
            self.inst_family,
            self.inst_id,
            str(self.arg.get("ccy", "")),
        )

    def wants(self, inst: Instrument) -> bool:
        if self.channel == "balance_and_position":
            return True
        if self.inst_type not in SIMULATED_INST_TYPES:
            return False
        if self.inst_id:  # instId wins over instFamily
            return inst.inst_id == self.inst_id
        return not self.inst_family or inst.inst_family == self.inst_family

    def push_arg(self, uid: str) -> dict[str, str]:
        arg = {"channel": self.channel, "uid": uid}
        if self.channel == "positions":
            arg["instType"] = self.inst_type
            if self.inst_family:
                arg["instFamily"] = self.inst_family
            if self.inst_id:
                arg["instId"] = self.inst_id
        return arg


def parse_subscription(arg: Any, exchange: SimExchange) -> Subscription:
    """One `args` item of a subscribe or unsubscribe; refusals carry OKX's codes (60012's
    message is completed by the caller with the request's text)."""
    if not isinstance(arg, dict):
        raise SimRefusal("60012", "")
    channel = arg.get("channel")
    if not isinstance(channel, str) or not channel:
        raise SimRefusal("60012", "")
    fields = {name: arg.get(name, "") for name in ("instType", "instFamily", "instId")}
    if any(not isinstance(value, str) for value in fields.values()):
        raise SimRefusal("60013", "Invalid args")
    inst_id = str(fields["instId"])
    if channel not in PUSHING_CHANNELS and channel not in SILENT_CHANNELS:
        raise SimRefusal("60018", _missing(channel, inst_id))
    inst_type = str(fields["instType"])
    if channel in NEEDS_INST_TYPE and inst_type not in POSITION_INST_TYPES:
        raise SimRefusal("60013", "Invalid args")
    if inst_id and inst_id not in exchange.instruments:
        raise SimRefusal("60018", _missing(channel, inst_id))
    return Subscription(
        arg=arg,
        channel=channel,
        inst_type=inst_type,
        inst_family=str(fields["instFamily"]),
        inst_id=inst_id,
        interval=_interval(arg.get("extraParams")),
        pushes=channel in PUSHING_CHANNELS,
    )


def _missing(channel: str, inst_id: str) -> str:
    where = f"channel:{channel},instId:{inst_id}" if inst_id else f"channel:{channel}"
    return f"Wrong URL or {where} doesn't exist"


def _interval(extra: Any) -> float | None:
    """extraParams' updateInterval: "0" events only, 2000/3000/4000 ms, else the default."""
    if extra in (None, ""):
        return None
    if isinstance(extra, str):
        try:
            extra = json.loads(extra)
        except ValueError:
            raise SimRefusal("60013", "Invalid args") from None
    if not isinstance(extra, dict):
        raise SimRefusal("60013", "Invalid args")
    value = str(extra.get("updateInterval", ""))
    if value == "0":
        return 0.0
    if value.isdigit() and int(value) in REGULAR_INTERVALS_MS:
        return int(value) / 1000
    return None


class Renderer:
    """One moment's records, rendered once under the lock and shared by every connection."""

    def __init__(self, exchange: SimExchange, now_ms: int) -> None:
        self.exchange = exchange
        self.p_time = str(now_ms)
        self._books: dict[str, list[Rendered]] = {}
        self._changed: dict[tuple[str, int, int], list[Rendered]] = {}

    def open_positions(self, name: str) -> list[Rendered]:
        """Every open position of the account, newest first (REST's order)."""
        if name not in self._books:
            with self.exchange.lock:
                self._books[name] = [self._open(a, p) for a, p in self._held(name)]
        return self._books[name]

    def pos_data(self, name: str) -> list[dict[str, str]]:
        """balance_and_position's posData for every open position of the account."""
        with self.exchange.lock:
            held = self._held(name)
            return [pos_data(self.exchange.instruments[p.inst_id], p) for _, p in held]

    def _held(self, name: str) -> list[tuple[Account, Position]]:
        with self.exchange.lock:
            account = self.exchange.accounts.get(name)
            if account is None:
                return []
            return [
                (account, p) for p in sorted(account.positions.values(), key=lambda p: -p.c_time)
            ]

    def records(self, name: str, sub: Subscription) -> list[dict[str, Any]]:
        """The subscription's share of the account's open positions."""
        return [record for inst, record in self.open_positions(name) if sub.wants(inst)]

    def changed(
        self, name: str, changes: list[PositionChange], sub: Subscription
    ) -> list[dict[str, Any]]:
        """The positions these changes touched, as they stand now (closed ones as their
        pos "0" record), for the subscription."""
        span = (name, changes[0].seq, changes[-1].seq)
        if span not in self._changed:
            latest = {key: p for change in changes for key, p in change.positions.items()}
            with self.exchange.lock:
                account = self.exchange.accounts.get(name)
                self._changed[span] = [
                    self._open(account, account.positions[key])
                    if account is not None and key in account.positions
                    else self._closed(last)
                    for key, last in latest.items()
                ]
        return [record for inst, record in self._changed[span] if sub.wants(inst)]

    def _open(self, account: Account, position: Position) -> Rendered:
        inst = self.exchange.instruments[position.inst_id]
        return inst, open_record(self.exchange, account, position, self.p_time)

    def _closed(self, position: Position) -> Rendered:
        inst = self.exchange.instruments[position.inst_id]
        life = (position.pos_id, position.c_time)
        return inst, closed_record(inst, position.key, life, position.u_time, self.p_time)


def open_record(
    exchange: SimExchange, account: Account, position: Position, p_time: str
) -> dict[str, Any]:
    """An open position as `positions` pushes it: REST's record at the mark price, and pTime."""
    inst = exchange.instruments[position.inst_id]
    record = book.render_position(account, inst, position, exchange.prices[position.inst_id])
    record["pTime"] = p_time
    return record


def closed_record(
    inst: Instrument, key: PosKey, life: tuple[str, int], closed_at: int, p_time: str
) -> dict[str, Any]:
    """A closed position as `positions` pushes it once: pos "0", its life (posId, cTime),
    and pTime."""
    record = book.render_zero_record(inst, key, life[0], closed_at)
    record["cTime"] = str(life[1])
    record["pTime"] = p_time
    return record


def positions_messages(
    sub: Subscription, uid: str, records: list[dict[str, Any]], *, snapshot: bool
) -> list[dict[str, Any]]:
    """Pages of at most PAGE_SIZE records; a snapshot of nothing is one page with data []."""
    pages = [records[i : i + PAGE_SIZE] for i in range(0, len(records), PAGE_SIZE)] or [[]]
    messages: list[dict[str, Any]] = []
    for number, page in enumerate(pages, start=1):
        message: dict[str, Any] = {"arg": sub.push_arg(uid)}
        if snapshot:
            message.update(eventType="snapshot", curPage=number, lastPage=number == len(pages))
        else:
            message["eventType"] = "event_update"
        message["data"] = page
        messages.append(message)
    return messages


def pos_data(inst: Instrument, position: Position) -> dict[str, str]:
    """One balance_and_position posData record."""
    closed = position.pos == 0
    return {
        "posId": position.pos_id,
        "tradeId": "",
        "instId": inst.inst_id,
        "instType": "SWAP",
        "mgnMode": position.mgn_mode,
        "posSide": position.pos_side,
        "pos": okx_str(position.pos) if not closed else "0",
        "ccy": inst.settle_ccy,
        "posCcy": "",
        "avgPx": "" if closed else okx_str(position.avg_px),
        "uTime": str(position.u_time),
    }


def balance_and_position_message(
    uid: str, event_type: str, p_time: str, pos_records: list[dict[str, str]]
) -> dict[str, Any]:
    return {
        "arg": {"channel": "balance_and_position", "uid": uid},
        "data": [
            {
                "pTime": p_time,
                "eventType": event_type,
                "balData": [],
                "posData": pos_records,
                "trades": [],
            }
        ],
    }
