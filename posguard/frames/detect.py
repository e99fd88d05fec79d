"""Which OKX endpoint a list of records came from, and its typed frame.

Pure: the records come from `posguard.okx.saved` (files users saved) or a client. The entity
is told by the fields its records carry, so a new sample file needs no code.
"""

from __future__ import annotations

from typing import Any, Literal

import pandas as pd

from posguard.errors import DataError
from posguard.frames import parse as P

Entity = Literal[
    "positions",
    "instruments",
    "leverage_info",
    "positions_history",
    "fills",
    "candles",
    "position_tiers",
    "account_config",
    "public_time",
    "empty",
]


def detect_entity(records: list[Any]) -> Entity:
    if not records:
        return "empty"
    first = records[0]
    if isinstance(first, list):
        return "candles"
    if not isinstance(first, dict):
        raise DataError(f"records are {type(first).__name__}, not OKX objects", field="data")
    keys = set(first)
    if {"posMode", "acctLv"} & keys:
        return "account_config"
    if {"ctVal", "lotSz", "tickSz"} <= keys:
        return "instruments"
    if {"closeTotalPos", "openMaxPos"} & keys:
        return "positions_history"
    if "fillSz" in keys:
        return "fills"
    if {"tier", "maxLever"} <= keys:
        return "position_tiers"
    if {"pos", "posSide", "mgnMode"} <= keys:
        return "positions"
    if {"lever", "mgnMode"} <= keys:
        return "leverage_info"
    if keys == {"ts"}:
        return "public_time"
    raise DataError(
        f"cannot tell which OKX endpoint records with fields {sorted(keys)[:12]} come from",
        field="data",
    )


def parse_records(records: list[Any], entity: Entity | None = None) -> pd.DataFrame:
    """Parse records as `entity` (detected when None) into its typed frame."""
    kind = entity or detect_entity(records)
    if kind == "positions":
        return P.parse_positions(records)
    if kind == "instruments":
        return P.parse_instruments(records)
    if kind == "leverage_info":
        return P.parse_leverage_info(records)
    if kind == "positions_history":
        return P.parse_positions_history(records)
    if kind == "fills":
        return P.parse_fills(records)
    if kind == "candles":
        return P.parse_candles(records)
    if kind == "position_tiers":
        return P.parse_position_tiers(records)
    if kind == "account_config":
        config = P.parse_account_config(records)
        return pd.DataFrame(
            [{"uid": config.uid, "acctLv": config.acct_lv, "posMode": config.pos_mode}]
        )
    if kind == "public_time":
        return pd.DataFrame([{"ts": P.parse_server_time(records)}])
    return pd.DataFrame()
