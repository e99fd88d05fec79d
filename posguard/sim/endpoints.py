"""The simulator's OKX endpoints: each renders one answer's `data` from the exchange's state
(or refuses with OKX's code). No HTTP here (see app.py), and no state: that is exchange.py."""

from __future__ import annotations

from typing import Any

from posguard.bars import BAR_MS
from posguard.sim import book
from posguard.sim.book import Account, SimRefusal
from posguard.sim.exchange import (
    DEFAULT_CANDLE_HISTORY,
    MARKET_CANDLES_LATEST,
    ArmedFault,
    SimExchange,
)
from posguard.sim.market import candle_rows, tier_record
from posguard.sim.numbers import dec


def instruments(exchange: SimExchange, params: dict[str, str]) -> list[dict[str, Any]]:
    inst_type = params.get("instType", "")
    if not inst_type:
        raise SimRefusal("50014", "Parameter instType can not be empty.", 400)
    if inst_type != "SWAP":
        return []
    records = [i.record for i in exchange.instruments.values()]
    if params.get("instFamily"):
        records = [r for r in records if r.get("instFamily") == params["instFamily"]]
    if params.get("instId"):
        records = [r for r in records if r["instId"] == params["instId"]]
    return records


def tiers(exchange: SimExchange, params: dict[str, str]) -> list[dict[str, Any]]:
    for name in ("instType", "tdMode"):
        if not params.get(name):
            raise SimRefusal("50014", f"Parameter {name} can not be empty.", 400)
    if params["instType"] != "SWAP":
        return []
    families = [f for f in params.get("instFamily", "").split(",") if f]
    if not families:
        raise SimRefusal("50014", "Parameter instFamily can not be empty.", 400)
    rows: list[dict[str, Any]] = []
    for inst in exchange.instruments.values():
        if inst.inst_family in families:
            rows += [tier_record(inst, t, params["tdMode"]) for t in inst.tiers]
    return rows


def config(exchange: SimExchange, account: Account) -> list[dict[str, Any]]:
    return [
        {
            "acctLv": str(account.acct_lv),
            "autoLoan": False,
            "ctIsoMode": "automatic",
            "greeksType": "PA",
            "ip": "",
            "kycLv": "2",
            "label": account.name,
            "level": "Lv1",
            "levelTmp": "",
            "mainUid": account.uid,
            "mgnIsoMode": "automatic",
            "perm": "read_only,trade",
            "posMode": account.pos_mode,
            "roleType": "0",
            "spotOffsetType": "",
            "spotRoleType": "0",
            "traderInsts": [],
            "spotTraderInsts": [],
            "uid": account.uid,
        }
    ]


def positions(
    exchange: SimExchange, account: Account, params: dict[str, str], faults: list[ArmedFault]
) -> list[dict[str, Any]]:
    inst_type = params.get("instType", "")
    inst_ids = [i for i in params.get("instId", "").split(",") if i]
    pos_ids = [p for p in params.get("posId", "").split(",") if p]
    if len(inst_ids) > 10:
        raise SimRefusal("51000", "Parameter instId error: at most 10 instIds")
    if len(pos_ids) > 20:
        raise SimRefusal("51000", "Parameter posId error: at most 20 posIds")
    for inst_id in inst_ids:
        exchange.instrument(inst_id)
    if inst_type and inst_type not in ("SWAP", "MARGIN", "FUTURES", "OPTION", "EVENTS"):
        raise SimRefusal("51000", "Parameter instType error")
    positions = account.positions
    stale = [f for f in faults if f.fault.kind == "stale"]
    if stale:
        lag_ms = int(stale[0].fault.seconds * 1000)
        positions = exchange.positions_at(account, exchange.now_ms() - lag_ms)
        exchange.consume(stale[0])
    dropped = {f.fault.inst_id for f in faults if f.fault.kind == "drop_position"}
    blank_lever = {f.fault.inst_id for f in faults if f.fault.kind == "lever_empty"}
    for armed in faults:
        if armed.fault.kind in ("drop_position", "lever_empty"):
            exchange.consume(armed)
    rows: list[dict[str, Any]] = []
    for position in sorted(positions.values(), key=lambda p: -p.c_time):
        if inst_type and inst_type != "SWAP":
            continue
        if inst_ids and position.inst_id not in inst_ids:
            continue
        if pos_ids and position.pos_id not in pos_ids:
            continue
        if position.inst_id in dropped:
            continue
        inst = exchange.instruments[position.inst_id]
        rows.append(
            book.render_position(
                account,
                inst,
                position,
                exchange.prices[position.inst_id],
                lever_override="" if position.inst_id in blank_lever else None,
            )
        )
    if inst_ids and not (inst_type and inst_type != "SWAP"):
        now = exchange.now_ms()
        for key, (pos_id, closed_at) in account.closed.items():
            if (
                key[0] in inst_ids
                and key not in positions
                and now - closed_at < book.THIRTY_DAYS_MS
            ):
                rows.append(
                    book.render_zero_record(exchange.instruments[key[0]], key, pos_id, closed_at)
                )
    return rows


def history(
    exchange: SimExchange, account: Account, params: dict[str, str]
) -> list[dict[str, Any]]:
    limit = _limit(params, 100)
    rows = list(account.history)
    for name in ("instType", "instId", "mgnMode", "type", "posId"):
        if params.get(name):
            rows = [r for r in rows if r.get(name) == params[name]]
    after, before = _int_param(params, "after"), _int_param(params, "before")
    if after is not None:
        rows = [r for r in rows if int(r["uTime"]) < after]
    if before is not None:
        rows = [r for r in rows if int(r["uTime"]) > before]
    rows.sort(key=lambda r: -int(r["uTime"]))
    if len(rows) > limit:
        # OKX returns every record sharing the last uTime in the same page.
        last = rows[limit - 1]["uTime"]
        rows = [r for i, r in enumerate(rows) if i < limit or r["uTime"] == last]
    return rows


def leverage(
    exchange: SimExchange, account: Account, params: dict[str, str]
) -> list[dict[str, Any]]:
    mgn_mode = params.get("mgnMode", "")
    if not mgn_mode:
        raise SimRefusal("50014", "Parameter mgnMode can not be empty.", 400)
    if mgn_mode not in ("cross", "isolated"):
        raise SimRefusal("51000", "Parameter mgnMode error")
    inst_ids = [i for i in params.get("instId", "").split(",") if i]
    if not inst_ids:
        raise SimRefusal("50014", "Parameter instId can not be empty.", 400)
    if len(inst_ids) > 20:
        raise SimRefusal("51000", "Parameter instId error: at most 20 instIds")
    rows: list[dict[str, Any]] = []
    for inst_id in inst_ids:
        rows += book.leverage_rows(account, exchange.instrument(inst_id), mgn_mode)
    return rows


def set_leverage(exchange: SimExchange, account: Account, body: Any) -> list[dict[str, Any]]:
    if not isinstance(body, dict):
        raise SimRefusal("50002", "JSON syntax error", 400)
    for name in ("lever", "mgnMode"):
        if body.get(name) in (None, ""):
            raise SimRefusal("50014", f"Parameter {name} can not be empty.", 400)
    inst_id = body.get("instId")
    if not inst_id:
        raise SimRefusal("50014", "Parameter instId can not be empty.", 400)
    raw_lever = body["lever"]
    # Decimal() would also read "1_0" or non-ASCII digits; OKX takes a decimal string.
    if not isinstance(raw_lever, str | int | float) or isinstance(raw_lever, bool):
        raise SimRefusal("51000", "Parameter lever error")
    if not str(raw_lever).isascii() or "_" in str(raw_lever):
        raise SimRefusal("51000", "Parameter lever error")
    try:
        lever = dec(raw_lever)
    except ValueError:
        raise SimRefusal("51000", "Parameter lever error") from None
    pos_side = body.get("posSide") or None
    return exchange.set_leverage(
        account,
        exchange.instrument(str(inst_id)),
        lever=lever,
        mgn_mode=str(body["mgnMode"]),
        pos_side=pos_side,
    )


def candles(exchange: SimExchange, params: dict[str, str], *, history: bool) -> list[list[str]]:
    inst_id = params.get("instId", "")
    if not inst_id:
        raise SimRefusal("50014", "Parameter instId can not be empty.", 400)
    inst = exchange.instrument(inst_id)
    bar = params.get("bar") or "1m"
    if bar not in BAR_MS:
        raise SimRefusal("51000", "Parameter bar error")
    limit = _limit(params, 300)
    available = exchange.scenario.candle_history.get(inst_id, DEFAULT_CANDLE_HISTORY)
    rows = candle_rows(
        seed=exchange.scenario.seed,
        inst_id=inst_id,
        bar=bar,
        now_ms=exchange.now_ms(),
        last_price=exchange.prices[inst_id],
        tick=inst.tick_sz,
        ct_val=inst.ct_val,
        history_bars=available if history else min(available, MARKET_CANDLES_LATEST),
    )
    after, before = _int_param(params, "after"), _int_param(params, "before")
    if after is not None:
        rows = [r for r in rows if int(r[0]) < after]
    if before is not None:
        newer = [r for r in rows if int(r[0]) > before]
        # With `before` alone OKX returns the latest records; with both, the range.
        rows = newer if after is not None else newer[:limit]
    return rows[:limit]


def fills(
    exchange: SimExchange, account: Account, params: dict[str, str], *, history: bool
) -> list[dict[str, Any]]:
    if history and not params.get("instType"):
        raise SimRefusal("50014", "Parameter instType can not be empty.", 400)
    limit = _limit(params, 100)
    window = (90 if history else 3) * 86_400_000
    now = exchange.now_ms()
    rows = [f for f in account.fills if now - int(f["ts"]) <= window]
    for name in ("instType", "instId", "ordId", "subType"):
        if params.get(name):
            rows = [r for r in rows if r.get(name) == params[name]]
    begin, end = _int_param(params, "begin"), _int_param(params, "end")
    after, before = _int_param(params, "after"), _int_param(params, "before")
    if begin is not None:
        rows = [r for r in rows if int(r["ts"]) >= begin]
    if end is not None:
        rows = [r for r in rows if int(r["ts"]) <= end]
    if after is not None:
        rows = [r for r in rows if int(r["billId"]) < after]
    if before is not None:
        rows = [r for r in rows if int(r["billId"]) > before]
    rows.sort(key=lambda r: -int(r["billId"]))
    return rows[:limit]


# -- the control API's view -------------------------------------------------------------


def _int_param(params: dict[str, str], name: str) -> int | None:
    """A whole-number query parameter (a time or an id), or OKX's 51000 answer naming it.

    ASCII digits only: int() would also read "1_000", " 7" or non-ASCII digits, which OKX
    refuses, and a non-number must be OKX's JSON error, not a plain-text 500.
    """
    raw = params.get(name)
    if not raw:
        return None
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 20):
        raise SimRefusal("51000", f"Parameter {name} error", 400)
    return int(raw)


def _limit(params: dict[str, str], maximum: int) -> int:
    value = _int_param(params, "limit")
    if value is None:
        return min(100, maximum)
    if value < 1:
        raise SimRefusal("51000", "Parameter limit error", 400)
    return min(value, maximum)
