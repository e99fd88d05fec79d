"""The OKX v5 REST endpoints posguard uses, with their documented rate limits.

One table serves the client (its limiter) and the simulator (its 50011 answers).
Limits: shared/docs/okx-facts.md section 6 (each endpoint's OKX docs page).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Scope = Literal["uid", "ip"]


@dataclass(frozen=True)
class Endpoint:
    name: str
    method: Literal["GET", "POST"]
    path: str
    private: bool
    limit: int
    window_seconds: float
    # "uid" limits count per account (user ID); "ip" limits count per client address.
    scope: Scope
    # Some limits are kept per value of a parameter too (instruments: per instType).
    scope_param: str | None = None
    # Pagination: the record field whose value is the cursor for `after`, if OKX pages it.
    cursor: str | None = None
    max_page_size: int | None = None

    def limit_key(self, scope_id: str, params: dict[str, str] | None = None) -> str:
        extra = ""
        if self.scope_param is not None and params:
            extra = ":" + params.get(self.scope_param, "")
        return f"{self.scope}:{scope_id}:{self.path}{extra}"


PUBLIC_TIME = Endpoint("public_time", "GET", "/api/v5/public/time", False, 10, 2.0, "ip")
INSTRUMENTS = Endpoint(
    "instruments", "GET", "/api/v5/public/instruments", False, 20, 2.0, "ip", "instType"
)
POSITION_TIERS = Endpoint(
    "position_tiers", "GET", "/api/v5/public/position-tiers", False, 10, 2.0, "ip"
)
ACCOUNT_CONFIG = Endpoint("account_config", "GET", "/api/v5/account/config", True, 5, 2.0, "uid")
POSITIONS = Endpoint("positions", "GET", "/api/v5/account/positions", True, 10, 2.0, "uid")
POSITIONS_HISTORY = Endpoint(
    "positions_history",
    "GET",
    "/api/v5/account/positions-history",
    True,
    10,
    2.0,
    "uid",
    cursor="uTime",
    max_page_size=100,
)
LEVERAGE_INFO = Endpoint(
    "leverage_info", "GET", "/api/v5/account/leverage-info", True, 20, 2.0, "uid"
)
SET_LEVERAGE = Endpoint(
    "set_leverage", "POST", "/api/v5/account/set-leverage", True, 20, 2.0, "uid"
)
CANDLES = Endpoint(
    "candles", "GET", "/api/v5/market/candles", False, 40, 2.0, "ip", cursor="0", max_page_size=300
)
HISTORY_CANDLES = Endpoint(
    "history_candles",
    "GET",
    "/api/v5/market/history-candles",
    False,
    20,
    2.0,
    "ip",
    cursor="0",
    max_page_size=300,
)
FILLS = Endpoint(
    "fills", "GET", "/api/v5/trade/fills", True, 60, 2.0, "uid", cursor="billId", max_page_size=100
)
FILLS_HISTORY = Endpoint(
    "fills_history",
    "GET",
    "/api/v5/trade/fills-history",
    True,
    10,
    2.0,
    "uid",
    cursor="billId",
    max_page_size=100,
)

ALL_ENDPOINTS: tuple[Endpoint, ...] = (
    PUBLIC_TIME,
    INSTRUMENTS,
    POSITION_TIERS,
    ACCOUNT_CONFIG,
    POSITIONS,
    POSITIONS_HISTORY,
    LEVERAGE_INFO,
    SET_LEVERAGE,
    CANDLES,
    HISTORY_CANDLES,
    FILLS,
    FILLS_HISTORY,
)
BY_PATH: dict[str, Endpoint] = {e.path: e for e in ALL_ENDPOINTS}
