"""Reading saved OKX answers: envelopes, bare `data` arrays or single records.

Used by `posguard validate` (files users saved) and the sample tests: the entity is told by
the fields its records carry, so a new sample file needs no code.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from posguard.errors import DataError
from posguard.frames import parse as P
from posguard.okx.envelope import CallContext, unwrap

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


def records_of(payload: Any, *, source: str = "payload") -> list[Any]:
    """The records of an envelope (raising its error), a bare array, or one bare record."""
    if isinstance(payload, list):
        return payload
    if isinstance(payload, dict) and "code" in payload:
        return unwrap(payload, CallContext("FILE", source), http_status=None)
    if isinstance(payload, dict) and isinstance(payload.get("data"), list) and "arg" in payload:
        # A websocket push: same record schema as REST, no code.
        records: list[Any] = payload["data"]
        return records
    if isinstance(payload, dict) and payload:
        return [payload]
    raise DataError(
        f"{source}: expected an OKX response envelope, a data array or a record, "
        f"got {type(payload).__name__}",
        field="data",
    )


def load_records(path: Path) -> list[Any]:
    """Records from a JSON file; unreadable files raise `DataError` naming the file."""
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise DataError(f"{path}: cannot read the file ({exc.strerror})", field=None) from None
    except RecursionError:
        raise DataError(f"{path}: JSON nested too deeply to read", field=None) from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, integers too long
        raise DataError(f"{path}: not valid JSON ({exc})", field=None) from None
    return records_of(payload, source=str(path))


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
