"""Funding endpoints posguard itself never calls, answered so real clients load unchanged.

ccxt's okx calls `GET /api/v5/asset/currencies` in `load_markets` whenever it has credentials
and is not in sandbox mode (a live-mode account); without an answer it cannot start. The
answer lists one chain per currency the instruments use, in OKX's shape (strings, "" for
not available); the values are plausible, not OKX's.
"""

from __future__ import annotations

from typing import Any

from posguard.okx.endpoints import Endpoint
from posguard.sim.market import Instrument

# OKX: 6 requests per second per user ID (funding account, get currencies).
CURRENCIES = Endpoint("currencies", "GET", "/api/v5/asset/currencies", True, 6, 1.0, "uid")
ENDPOINTS: dict[str, Endpoint] = {CURRENCIES.path: CURRENCIES}


def currencies_data(instruments: dict[str, Instrument], params: dict[str, str]) -> list[Any]:
    codes: set[str] = set()
    for instrument in instruments.values():
        codes.update(p for p in instrument.inst_family.split("-") if p)
        codes.update(
            str(instrument.record.get(f) or "") for f in ("settleCcy", "ctValCcy", "baseCcy")
        )
    codes.discard("")
    wanted = {c for c in params.get("ccy", "").split(",") if c}
    return [_currency(code) for code in sorted(codes) if not wanted or code in wanted]


def _currency(code: str) -> dict[str, str]:
    return {
        "ccy": code,
        "name": code,
        "logoLink": "",
        "chain": f"{code}-{code}",
        "ctAddr": "",
        "canDep": "true",
        "canWd": "true",
        "canInternal": "true",
        "depEstOpenTime": "",
        "wdEstOpenTime": "",
        "minDep": "0.00000001",
        "minWd": "0.001",
        "maxWd": "100000",
        "wdQuota": "10000000",
        "usedWdQuota": "0",
        "wdTickSz": "8",
        "fee": "0.0001",
        "minFee": "0.0001",
        "maxFee": "0.0002",
        "mainNet": "true",
        "needTag": "false",
        "minDepArrivalConfirm": "1",
        "minWdUnlockConfirm": "1",
        "depQuotaFixed": "",
        "usedDepQuotaFixed": "",
        "depQuoteDailyLayer2": "",
    }
