"""Accounts, positions and their lifecycle: trades, closes, liquidations, ADL, leverage.

Every number follows OKX's formulas (okx-facts.md section 4): linear notional
|pos| x ctVal x ctMult x markPx, inverse |pos| x ctVal x ctMult USD; upl, imr, margin and mmr
from those; liqPx for isolated positions (cross positions show "" as real captures do).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from posguard.sim.market import Instrument
from posguard.sim.numbers import ONE, ZERO, okx_str, round_to

PosKey = tuple[str, str, str]  # (instId, mgnMode, posSide)
LeverKey = tuple[str, str, str]  # (instId, mgnMode, posSide or "net")
POS_SIDES = ("net", "long", "short")

THIRTY_DAYS_MS = 30 * 86_400_000
TAKER_FEE = Decimal("0.0005")


class SimRefusal(Exception):
    """An OKX error the simulator answers with (code, message)."""

    def __init__(self, code: str, msg: str, http_status: int = 200) -> None:
        super().__init__(f"{code} {msg}")
        self.code = code
        self.msg = msg
        self.http_status = http_status


@dataclass
class Position:
    inst_id: str
    mgn_mode: str
    pos_side: str
    pos: Decimal  # signed in net mode, positive in long/short mode
    avg_px: Decimal
    pos_id: str
    c_time: int
    u_time: int
    max_pos: Decimal = ZERO
    close_total: Decimal = ZERO
    realized_pnl: Decimal = ZERO
    fee: Decimal = ZERO
    close_value: Decimal = ZERO  # sum of closed size x close price, for closeAvgPx

    @property
    def key(self) -> PosKey:
        return (self.inst_id, self.mgn_mode, self.pos_side)

    @property
    def direction(self) -> Literal["long", "short"]:
        if self.pos_side in ("long", "short"):
            return "long" if self.pos_side == "long" else "short"
        return "long" if self.pos >= 0 else "short"

    @property
    def signed(self) -> Decimal:
        return abs(self.pos) if self.direction == "long" else -abs(self.pos)


@dataclass
class Account:
    name: str
    api_key: str
    secret_key: str
    passphrase: str
    demo: bool = True
    pos_mode: str = "net_mode"
    acct_lv: int = 2
    uid: str = "100000000000000001"
    positions: dict[PosKey, Position] = field(default_factory=dict)
    closed: dict[PosKey, tuple[str, int]] = field(default_factory=dict)
    history: list[dict[str, str]] = field(default_factory=list)
    fills: list[dict[str, str]] = field(default_factory=list)
    leverage: dict[LeverKey, Decimal] = field(default_factory=dict)
    pending_orders: dict[tuple[str, str], int] = field(default_factory=dict)
    counter: int = 0

    def next_id(self, base: int) -> str:
        self.counter += 1
        return str(base + int(self.uid[-6:]) * 1_000_000 + self.counter)

    @property
    def portfolio_margin(self) -> bool:
        return self.acct_lv == 4


def lever_key(account: Account, inst_id: str, mgn_mode: str, pos_side: str) -> LeverKey:
    # Cross leverage is per instrument; isolated is per side in long/short mode.
    if account.pos_mode == "long_short_mode" and mgn_mode == "isolated":
        return (inst_id, mgn_mode, pos_side)
    return (inst_id, mgn_mode, "net")


def scope_sides(account: Account, mgn_mode: str, key_side: str) -> list[str]:
    """The posSides of the positions one leverage setting (a lever_key) governs."""
    if account.pos_mode != "long_short_mode":
        return ["net"]
    if mgn_mode == "isolated":
        return [key_side]
    return ["long", "short"]


def leverage_of(account: Account, inst: Instrument, mgn_mode: str, pos_side: str) -> Decimal:
    default = min(Decimal(10), inst.max_lever)
    return account.leverage.get(lever_key(account, inst.inst_id, mgn_mode, pos_side), default)


def _fill(
    account: Account,
    inst: Instrument,
    position: Position,
    *,
    side: str,
    size: Decimal,
    price: Decimal,
    sub_type: int,
    pnl: Decimal,
    now_ms: int,
    system: bool,
) -> Decimal:
    notional = _quote_notional(inst, size, price)
    fee = -(notional * TAKER_FEE)
    bill = account.next_id(600_000_000_000_000_000)
    trade_id = account.next_id(1_000_000_000)
    account.fills.append(
        {
            "instType": "SWAP",
            "instId": inst.inst_id,
            "tradeId": f"-{trade_id}" if system else trade_id,
            "ordId": "" if system else account.next_id(700_000_000_000_000_000),
            "clOrdId": "",
            "billId": bill,
            "subType": str(sub_type),
            "tag": "",
            "fillPx": okx_str(price),
            "fillSz": okx_str(size),
            "fillIdxPx": okx_str(price),
            "fillPnl": okx_str(pnl),
            "fillMarkPx": okx_str(price),
            "side": side,
            "posSide": position.pos_side,
            "execType": "" if system else "T",
            "feeCcy": inst.settle_ccy,
            "fee": okx_str(fee),
            "feeRate": "",
            "ts": str(now_ms),
            "fillTime": str(now_ms),
            "tradeQuoteCcy": "",
        }
    )
    return fee


def _quote_notional(inst: Instrument, size: Decimal, price: Decimal) -> Decimal:
    """Linear: in quote currency; inverse: in coin (settlement currency)."""
    face = abs(size) * inst.ct_val * inst.ct_mult
    if inst.ct_type == "inverse":
        return face / price if price else ZERO
    return face * price


def _pnl(
    inst: Instrument, direction: str, size: Decimal, entry: Decimal, exit_: Decimal
) -> Decimal:
    sign = ONE if direction == "long" else -ONE
    face = size * inst.ct_val * inst.ct_mult
    if inst.ct_type == "inverse":
        return sign * face * (ONE / entry - ONE / exit_)
    return sign * face * (exit_ - entry)


def open_or_add(
    account: Account,
    inst: Instrument,
    *,
    mgn_mode: str,
    pos_side: str,
    side: str,
    size: Decimal,
    price: Decimal,
    now_ms: int,
) -> Position:
    """A fill that opens or increases a position (or, in net mode, may flip it)."""
    if account.pos_mode == "net_mode":
        pos_side = "net"
    elif pos_side not in ("long", "short"):
        raise SimRefusal("51000", "Parameter posSide error: long/short mode needs long or short")
    key = (inst.inst_id, mgn_mode, pos_side)
    existing = account.positions.get(key)
    signed_change = size if side == "buy" else -size
    if existing is not None and pos_side == "net" and existing.pos * signed_change < 0:
        closing = min(abs(existing.pos), size)
        close(account, inst, key=key, size=closing, price=price, now_ms=now_ms)
        rest = size - closing
        if rest <= 0:
            return account.positions.get(key) or existing
        return open_or_add(
            account,
            inst,
            mgn_mode=mgn_mode,
            pos_side=pos_side,
            side=side,
            size=rest,
            price=price,
            now_ms=now_ms,
        )
    if existing is None:
        previous = account.closed.get(key)
        reuse = previous is not None and now_ms - previous[1] < THIRTY_DAYS_MS
        pos_id = previous[0] if reuse and previous else account.next_id(500_000_000_000_000_000)
        existing = Position(inst.inst_id, mgn_mode, pos_side, ZERO, price, pos_id, now_ms, now_ms)
        account.positions[key] = existing
    new_abs = abs(existing.pos) + size
    existing.avg_px = round_to(
        (abs(existing.pos) * existing.avg_px + size * price) / new_abs, inst.tick_sz / 100
    )
    existing.pos = (existing.pos + signed_change) if pos_side == "net" else new_abs
    existing.max_pos = max(existing.max_pos, abs(existing.pos))
    existing.u_time = now_ms
    direction = existing.direction
    existing.fee += _fill(
        account,
        inst,
        existing,
        side=side,
        size=size,
        price=price,
        sub_type=3 if direction == "long" else 4,
        pnl=ZERO,
        now_ms=now_ms,
        system=False,
    )
    return existing


CloseKind = Literal["close", "liquidation", "adl"]


def close(
    account: Account,
    inst: Instrument,
    *,
    key: PosKey,
    size: Decimal | None,
    price: Decimal,
    now_ms: int,
    kind: CloseKind = "close",
) -> Position:
    """Reduce or close a position; records positions-history and fills like OKX does."""
    position = account.positions.get(key)
    if position is None:
        raise SimRefusal("59216", "The position doesn't exist. Please try again")
    held = abs(position.pos)
    amount = held if size is None else min(size, held)
    full = amount >= held
    direction = position.direction
    pnl = _pnl(inst, direction, amount, position.avg_px, price)
    long_ = direction == "long"
    if kind == "close":
        sub_type, close_type = (5 if long_ else 6), ("2" if full else "1")
    elif kind == "liquidation":
        sub_type = (104 if long_ else 105) if full else (100 if long_ else 101)
        close_type = "3" if full else "4"
    else:
        sub_type, close_type = (125 if long_ else 126), ("6" if full else "5")
    fee = _fill(
        account,
        inst,
        position,
        side="sell" if long_ else "buy",
        size=amount,
        price=price,
        sub_type=sub_type,
        pnl=pnl,
        now_ms=now_ms,
        system=kind != "close",
    )
    position.fee += fee
    position.realized_pnl += pnl + fee
    position.close_total += amount
    position.close_value += amount * price
    remaining = held - amount
    position.pos = remaining if position.pos >= 0 else -remaining
    position.u_time = now_ms
    lever = leverage_of(account, inst, position.mgn_mode, position.pos_side)
    account.history.append(
        {
            "instType": "SWAP",
            "instId": inst.inst_id,
            "mgnMode": position.mgn_mode,
            "type": close_type,
            "cTime": str(position.c_time),
            "uTime": str(now_ms),
            "openAvgPx": okx_str(position.avg_px),
            "nonSettleAvgPx": "",
            "closeAvgPx": okx_str(position.close_value / position.close_total),
            "posId": position.pos_id,
            "openMaxPos": okx_str(position.max_pos),
            "closeTotalPos": okx_str(position.close_total),
            "realizedPnl": okx_str(position.realized_pnl),
            "settledPnl": "",
            "pnlRatio": "0",
            "fee": okx_str(position.fee),
            "fundingFee": "0",
            "liqPenalty": "0",
            "pnl": okx_str(position.realized_pnl - position.fee),
            "posSide": position.pos_side,
            "lever": okx_str(lever),
            "direction": direction,
            "triggerPx": okx_str(price) if kind != "close" else "",
            "uly": inst.inst_family,
            "ccy": inst.settle_ccy,
        }
    )
    if full:
        del account.positions[key]
        account.closed[key] = (position.pos_id, now_ms)
    return position


def render_position(
    account: Account,
    inst: Instrument,
    position: Position,
    mark: Decimal,
    *,
    lever_override: str | None = None,
) -> dict[str, Any]:
    """One `account/positions` record, every number a string, "" where OKX sends ""."""
    lever = leverage_of(account, inst, position.mgn_mode, position.pos_side)
    size = abs(position.pos)
    linear = inst.ct_type == "linear"
    notional = _quote_notional(inst, size, mark)  # quote ccy (linear) or coin (inverse)
    notional_usd = notional if linear else size * inst.ct_val * inst.ct_mult
    upl = _pnl(inst, position.direction, size, position.avg_px, mark)
    entry_margin = _quote_notional(inst, size, position.avg_px) / lever
    tier = inst.tier_for(size)
    mmr = notional * tier.mmr
    isolated = position.mgn_mode == "isolated"
    liq: Decimal | None = None
    if isolated and size > 0:
        buffer = ONE / lever - tier.mmr
        factor = (ONE - buffer) if position.direction == "long" else (ONE + buffer)
        liq = round_to(position.avg_px * factor, inst.tick_sz)
    pm_cross = account.portfolio_margin and position.mgn_mode == "cross"
    lever_text = "" if pm_cross else okx_str(lever)
    if lever_override is not None:
        lever_text = lever_override
    return {
        "adl": "1",
        "availPos": okx_str(size) if isolated else "",
        "avgPx": okx_str(position.avg_px),
        "baseBal": "",
        "baseBorrowed": "",
        "baseInterest": "",
        "bePx": okx_str(position.avg_px),
        "bizRefId": "",
        "bizRefType": "",
        "cTime": str(position.c_time),
        "ccy": inst.settle_ccy,
        "clSpotInUseAmt": "",
        "closeOrderAlgo": [],
        "deltaBS": "",
        "deltaPA": "",
        "fee": okx_str(position.fee),
        "fundingFee": "0",
        "gammaBS": "",
        "gammaPA": "",
        "hedgedPos": "",
        "idxPx": okx_str(mark),
        "imr": "" if isolated else okx_str(notional / lever),
        "instId": inst.inst_id,
        "instType": "SWAP",
        "interest": "",
        "last": okx_str(mark),
        "lever": lever_text,
        "liab": "",
        "liabCcy": "",
        "liqPenalty": "0",
        "liqPx": okx_str(liq),
        "margin": okx_str(entry_margin) if isolated else "",
        "markPx": okx_str(mark),
        "maxSpotInUseAmt": "",
        "mgnMode": position.mgn_mode,
        "mgnRatio": okx_str(entry_margin / mmr, 6) if isolated and mmr else "",
        "mmr": okx_str(mmr),
        "notionalUsd": okx_str(notional_usd),
        "optVal": "",
        "pendingCloseOrdLiabVal": "",
        "pnl": okx_str(position.realized_pnl - position.fee),
        "pos": okx_str(position.pos),
        "posCcy": "",
        "posId": position.pos_id,
        "posSide": position.pos_side,
        "quoteBal": "",
        "quoteBorrowed": "",
        "quoteInterest": "",
        "realizedPnl": okx_str(position.realized_pnl),
        "spotInUseAmt": "",
        "spotInUseCcy": "",
        "thetaBS": "",
        "thetaPA": "",
        "tradeId": "",
        "uTime": str(position.u_time),
        "upl": okx_str(upl),
        "uplLastPx": okx_str(upl),
        "uplRatio": okx_str(upl / entry_margin, 6) if entry_margin else "0",
        "uplRatioLastPx": okx_str(upl / entry_margin, 6) if entry_margin else "0",
        "usdPx": "" if linear else okx_str(mark),
        "vegaBS": "",
        "vegaPA": "",
    }


def render_zero_record(
    inst: Instrument, key: PosKey, pos_id: str, closed_at: int
) -> dict[str, Any]:
    """The zero-size record OKX returns for 30 days after a full close (by instId only)."""
    return {
        "adl": "",
        "availPos": "",
        "avgPx": "",
        "cTime": str(closed_at),
        "ccy": inst.settle_ccy,
        "closeOrderAlgo": [],
        "imr": "",
        "instId": inst.inst_id,
        "instType": "SWAP",
        "lever": "",
        "liqPx": "",
        "margin": "",
        "markPx": "",
        "mgnMode": key[1],
        "mgnRatio": "",
        "mmr": "0",
        "notionalUsd": "",
        "pos": "0",
        "posCcy": "",
        "posId": pos_id,
        "posSide": key[2],
        "uTime": str(closed_at),
        "upl": "",
        "uplRatio": "",
        "last": "",
        "idxPx": "",
        "realizedPnl": "",
        "fee": "",
        "fundingFee": "",
    }


def set_leverage(
    account: Account,
    inst: Instrument,
    *,
    lever: Decimal,
    mgn_mode: str,
    pos_side: str | None,
) -> list[dict[str, str]]:
    """OKX's set-leverage rules: max lever, position tiers, pending orders, portfolio margin."""
    if mgn_mode not in ("cross", "isolated"):
        raise SimRefusal("51000", "Parameter mgnMode error")
    if account.portfolio_margin and mgn_mode == "cross":
        raise SimRefusal("59111", "Leverage query isn't supported in portfolio margin account mode")
    if lever < ONE:
        raise SimRefusal("59105", "Leverage can't be less than 1. Please increase the leverage.")
    if lever > inst.max_lever:
        raise SimRefusal("59102", "Leverage exceeds the maximum limit. Please lower the leverage.")
    if (
        account.pos_mode == "long_short_mode"
        and mgn_mode == "isolated"
        and pos_side not in ("long", "short")
    ):
        raise SimRefusal("51000", "Parameter posSide error")
    pending = account.pending_orders.get((inst.inst_id, mgn_mode), 0)
    if pending:
        if mgn_mode == "isolated":
            raise SimRefusal(
                "59101",
                "Leverage can't be modified. Please cancel all pending isolated margin orders "
                "before adjusting the leverage.",
            )
        raise SimRefusal(
            "59107",
            "Leverage can't be modified. Please cancel all pending cross-margin orders before "
            "adjusting the leverage.",
        )
    key = lever_key(account, inst.inst_id, mgn_mode, pos_side or "net")
    # The positions this leverage applies to follow from the account's mode, not from the
    # posSide a client sends (OKX needs it only for isolated legs in long/short mode). A
    # shared cross scope must fit the tier of each leg: the large leg binds the small one.
    for side in scope_sides(account, mgn_mode, key[2]):
        held = account.positions.get((inst.inst_id, mgn_mode, side))
        if held is not None and lever > inst.tier_for(abs(held.pos)).max_lever:
            raise SimRefusal(
                "59104",
                "The borrowed position has exceeded the maximum position of this leverage. "
                "Please lower the leverage.",
            )
    account.leverage[key] = lever
    if key[2] == "net" and account.pos_mode == "long_short_mode":
        answer_side = ""
    else:
        answer_side = "" if key[2] == "net" else key[2]
    return [
        {
            "lever": okx_str(lever),
            "mgnMode": mgn_mode,
            "instId": inst.inst_id,
            "posSide": answer_side,
        }
    ]


def leverage_rows(account: Account, inst: Instrument, mgn_mode: str) -> list[dict[str, str]]:
    if account.portfolio_margin and mgn_mode == "cross":
        raise SimRefusal("59111", "Leverage query isn't supported in portfolio margin account mode")
    sides = ["long", "short"] if account.pos_mode == "long_short_mode" else ["net"]
    return [
        {
            "instId": inst.inst_id,
            "ccy": "",
            "mgnMode": mgn_mode,
            "posSide": side,
            "lever": okx_str(leverage_of(account, inst, mgn_mode, side)),
        }
        for side in sides
    ]
