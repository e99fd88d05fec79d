"""Timeline builders: OKX-shaped envelopes in the replay format, for readable tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

START = datetime(2025, 12, 20, 0, 0, tzinfo=UTC)
XRP_POS_ID = "681423155054862336"
XRP_CTIME = 1766188740000  # 2025-12-19T23:59:00Z: opened before the timeline starts


def at(seconds: float) -> str:
    moment = START + timedelta(seconds=seconds)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def ms(seconds: float) -> int:
    return int((START + timedelta(seconds=seconds)).timestamp() * 1000)


def env(data: list[Any]) -> dict[str, Any]:
    return {"code": "0", "msg": "", "data": data}


def position(
    inst: str = "XRP-USDT-SWAP",
    pos: str = "108",
    *,
    pos_id: str = XRP_POS_ID,
    c_time: int = XRP_CTIME,
    lever: str = "5",
    mgn: str = "cross",
    side: str = "net",
) -> dict[str, Any]:
    return {
        "instType": "SWAP",
        "instId": inst,
        "mgnMode": mgn,
        "posSide": side,
        "pos": pos,
        "posId": pos_id,
        "cTime": str(c_time),
        "uTime": str(c_time),
        "lever": lever,
        "avgPx": "1.93",
        "markPx": "1.93",
        "notionalUsd": str(float(pos) * 193),
        "liqPx": "",
    }


def history(
    inst: str = "XRP-USDT-SWAP",
    close_type: int = 2,
    *,
    u_time: int,
    pos_id: str = XRP_POS_ID,
    c_time: int = XRP_CTIME,
    mgn: str = "cross",
    side: str = "net",
    closed: str = "108",
) -> dict[str, Any]:
    return {
        "instType": "SWAP",
        "instId": inst,
        "mgnMode": mgn,
        "posSide": side,
        "type": str(close_type),
        "posId": pos_id,
        "cTime": str(c_time),
        "uTime": str(u_time),
        "openMaxPos": closed,
        "closeTotalPos": closed,
        "direction": "long",
        "lever": "5",
        "triggerPx": "" if close_type < 3 else "1.5",
    }


def fill(
    inst: str = "XRP-USDT-SWAP",
    sub_type: int = 5,
    *,
    ts: int,
    bill: int = 1,
    size: str = "108",
    side: str = "net",
) -> dict[str, Any]:
    return {
        "instType": "SWAP",
        "instId": inst,
        "subType": str(sub_type),
        "fillSz": size,
        "fillPx": "1.93",
        "ts": str(ts),
        "fillTime": str(ts),
        "billId": str(bill),
        "posSide": side,
    }


def pushed_change(seconds: float, **fields: Any) -> dict[str, Any]:
    """A change as `posguard watch` puts it in its event's payload (observed.Change.to_json):
    by default the close of the XRP position, pushed at `seconds`."""
    return {
        "instId": "XRP-USDT-SWAP",
        "posSide": "net",
        "mgnMode": "cross",
        "before": "108",
        "after": "0",
        "posId": XRP_POS_ID,
        "cTime": str(XRP_CTIME),
        "lever": "5",
        "venue_ms": ms(seconds),
        "source": "event_update",
        **fields,
    }


def sync(
    seconds: float,
    positions: list[dict[str, Any]] | None = None,
    *,
    hist: list[dict[str, Any]] | None = None,
    fills: list[dict[str, Any]] | None = None,
    error: dict[str, Any] | None = None,
) -> dict[str, Any]:
    members: dict[str, Any] = {}
    members["positions"] = {"error": error} if error else env(positions or [])
    members["positions_history"] = env(hist or [])
    members["fills"] = env(fills or [])
    return {"at": at(seconds), "sync": members}


def write(
    seconds: float, inst: str = "XRP-USDT-SWAP", pos: str = "108", **extra: str
) -> dict[str, Any]:
    return {
        "at": at(seconds),
        "registry_write": {
            "instId": inst,
            "posSide": "net",
            "mgnMode": "cross",
            "pos": pos,
            **extra,
        },
    }


def registry_row(
    inst: str = "XRP-USDT-SWAP",
    pos: str = "108",
    *,
    updated: float = -60,
    lever: str = "5",
    **extra: str,
) -> dict[str, Any]:
    return {
        "instId": inst,
        "posSide": "net",
        "mgnMode": "cross",
        "pos": pos,
        "avgPx": "1.93",
        "lever": lever,
        "updatedAt": at(updated),
        **extra,
    }


INSTRUMENTS = env(
    [
        {
            "instType": "SWAP",
            "instId": "XRP-USDT-SWAP",
            "ctVal": "100",
            "ctMult": "1",
            "ctType": "linear",
            "lotSz": "0.1",
            "minSz": "0.1",
            "tickSz": "0.0001",
            "lever": "50",
            "state": "live",
        },
        {
            "instType": "SWAP",
            "instId": "BTC-USDT-SWAP",
            "ctVal": "0.01",
            "ctMult": "1",
            "ctType": "linear",
            "lotSz": "0.1",
            "minSz": "0.1",
            "tickSz": "0.1",
            "lever": "100",
            "state": "live",
        },
    ]
)


def timeline(
    steps: list[dict[str, Any]], registry: list[dict[str, Any]] | None = None, **settings: Any
) -> dict[str, Any]:
    document: dict[str, Any] = {
        "account": "main",
        "instruments": INSTRUMENTS,
        "registry": registry if registry is not None else [],
        "steps": steps,
    }
    if settings:
        document["settings"] = settings
    return document
