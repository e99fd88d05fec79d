"""A simulator scenario as a replay timeline: what a reconciler polling every `poll_seconds`
would have seen, and the bot's registry writes the scenario scripts.

It lets the shipped `cause-*` scenarios be asserted through the real engine without a
server, the same way the soak's lives are.
"""

from __future__ import annotations

from typing import Any

from posguard.drift.model import DriftSettings, iso_ms
from posguard.okx import endpoints as ep
from posguard.sim import endpoints
from posguard.sim.exchange import SimExchange
from posguard.sim.scenario import Scenario
from posguard.stages.replay import settings_document

ERROR_KINDS = {"http_error", "timeout", "rate_limit", "malformed"}


def _error(kind: str, fault: Any) -> dict[str, Any]:
    if kind == "timeout":
        return {"timeout": True}
    if kind == "rate_limit":
        return {"http": 429, "code": "50011", "msg": "Too Many Requests"}
    if kind == "malformed":
        return {"http": 200, "msg": "malformed JSON"}
    return {"http": fault.http, "code": fault.code, "msg": fault.msg}


def scenario_timeline(
    scenario: Scenario,
    *,
    account: str | None = None,
    poll_seconds: float = 30.0,
    settings: DriftSettings | None = None,
    polls_after_end: int = 4,
) -> dict[str, Any]:
    settings = settings or DriftSettings()
    exchange = SimExchange(scenario)
    name = account or exchange.default_account
    book = exchange.accounts[name]
    poll_ms = int(poll_seconds * 1000)
    lookback_ms = int(settings.lookback_seconds * 1000)
    steps: list[dict[str, Any]] = []
    written = 0
    at_ms = exchange.start_ms
    end_ms = exchange.end_ms() + polls_after_end * poll_ms
    while at_ms <= end_ms:
        exchange.advance(to_ms=at_ms)
        for write in exchange.registry_writes[written:]:
            if write["account"] != name:
                continue
            step = {k: v for k, v in write.items() if k not in ("at_ms", "account") and v}
            steps.append({"at": iso_ms(int(write["at_ms"])), "registry_write": step})
        written = len(exchange.registry_writes)
        faults = exchange.faults_for(ep.POSITIONS, name, set())
        failed = next((f for f in faults if f.fault.kind in ERROR_KINDS), None)
        members: dict[str, Any]
        if failed is not None:
            exchange.consume(failed)
            members = {"positions": {"error": _error(failed.fault.kind, failed.fault)}}
        else:
            records = endpoints.positions(exchange, book, {"instType": "SWAP"}, faults)
            members = {"positions": {"code": "0", "msg": "", "data": records}}
        since = at_ms - lookback_ms
        history = [r for r in book.history if since <= int(r["uTime"]) <= at_ms]
        fills = [f for f in book.fills if since <= int(f["ts"]) <= at_ms]
        members["positions_history"] = {
            "code": "0",
            "msg": "",
            "data": sorted(history, key=lambda r: -int(r["uTime"])),
        }
        members["fills"] = {
            "code": "0",
            "msg": "",
            "data": sorted(fills, key=lambda f: -int(f["billId"])),
        }
        steps.append({"at": iso_ms(at_ms), "sync": members})
        at_ms += poll_ms
    inst_ids = sorted({str(s.inst_id) for s in scenario.steps if s.inst_id})
    return {
        "account": name,
        "settings": settings_document(settings),
        "instruments": {
            "code": "0",
            "msg": "",
            "data": [exchange.instruments[i].record for i in inst_ids],
        },
        "registry": [],
        "steps": steps,
    }
