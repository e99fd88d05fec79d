"""OKX payload records -> typed frames, one function per entity (pure, vectorized)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd

from posguard.errors import DataError
from posguard.frames import entities as E
from posguard.frames.schema import build_frame, is_plain_finite

DERIVATIVES = ("SWAP", "FUTURES", "OPTION")


def parse_positions(
    records: Sequence[dict[str, Any]], *, account: str | None = None
) -> pd.DataFrame:
    """Positions with sign rules applied and zero-size records marked.

    Added columns: `side` (long/short/flat), `size` (|pos|), `size_unit` (contracts for
    derivatives; base or quote for MARGIN, where OKX gives a short's size in quote currency),
    `is_open` (False for OKX's zero-size records, kept 30 days after a full close), and
    `account` when given.
    """
    df = build_frame(E.POSITIONS, records)
    if account is not None:
        df.insert(0, "account", pd.Series([account] * len(df), dtype="str"))
    pos = df["pos"].to_numpy(dtype="float64")
    pos_side = df["posSide"]
    hedged = pos_side.isin(["long", "short"]).to_numpy()
    negative_hedged = hedged & (pos < 0)
    if negative_hedged.any():
        row = int(np.flatnonzero(negative_hedged)[0])
        inst_id = str(df["instId"].iloc[row])
        raise DataError(
            f"positions: field 'pos' is {pos[row]!r} with posSide "
            f"{pos_side.iloc[row]!r} for instId {inst_id}; in long/short mode OKX sends "
            f"positive sizes, so the record's side is ambiguous",
            field="pos",
            value=pos[row],
            inst_id=inst_id,
        )
    is_margin = (df["instType"] == "MARGIN").to_numpy()
    base_ccy = df["instId"].str.split("-").str[0]
    margin_long = is_margin & (df["posCcy"] == base_ccy).to_numpy()
    margin_short = is_margin & df["posCcy"].notna().to_numpy() & ~margin_long
    # Later assignments win: zero size beats every rule, MARGIN's posCcy beats posSide.
    side = np.full(len(df), None, dtype=object)
    side[pos > 0] = "long"
    side[pos < 0] = "short"
    side[hedged] = pos_side.to_numpy(dtype=object)[hedged]
    side[margin_short] = "short"
    side[margin_long] = "long"
    side[pos == 0] = "flat"
    df["side"] = pd.Series(side, dtype="str")
    df["size"] = np.abs(pos)
    size_unit = np.full(len(df), None, dtype=object)
    size_unit[df["instType"].isin(DERIVATIVES).to_numpy()] = "contracts"
    size_unit[margin_short] = "quote"
    size_unit[margin_long] = "base"
    df["size_unit"] = pd.Series(size_unit, dtype="str")
    df["is_open"] = pos != 0
    return df


def parse_instruments(records: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """Instruments; `maxLever` is the instrument's leverage ceiling (OKX's `lever`)."""
    return build_frame(E.INSTRUMENTS, records)


def parse_leverage_info(records: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """leverage-info rows (also set-leverage answers): lever per instId, mgnMode, posSide."""
    return build_frame(E.LEVERAGE_INFO, records)


def parse_positions_history(records: Sequence[dict[str, Any]]) -> pd.DataFrame:
    return build_frame(E.POSITIONS_HISTORY, records)


def parse_fills(records: Sequence[dict[str, Any]]) -> pd.DataFrame:
    return build_frame(E.FILLS, records)


def parse_position_tiers(records: Sequence[dict[str, Any]]) -> pd.DataFrame:
    return build_frame(E.POSITION_TIERS, records)


def parse_candles(rows: Sequence[Sequence[Any]], *, inst_id: str | None = None) -> pd.DataFrame:
    """Candle arrays `[ts, o, h, l, c, vol, volCcy, volCcyQuote, confirm]`, oldest first.

    Older answers carry fewer members; the missing ones are NA.
    """
    records: list[dict[str, Any]] = []
    for index, row in enumerate(rows):
        if not isinstance(row, list | tuple) or len(row) < 5:
            raise DataError(
                f"candles: row {index} for instId {inst_id or 'unknown'} is {row!r:.80}; "
                f"expected an array [ts, o, h, l, c, ...]",
                field="data",
                value=row,
                inst_id=inst_id,
            )
        record = dict(zip(E.CANDLE_FIELDS, row, strict=False))
        record["instId"] = inst_id or ""
        records.append(record)
    frame = build_frame(E.CANDLES, records)
    return frame.sort_values("ts", kind="stable").reset_index(drop=True)


@dataclass(frozen=True)
class AccountConfig:
    """The parts of account/config posguard needs."""

    uid: str | None
    acct_lv: int | None
    pos_mode: str | None

    @property
    def portfolio_margin(self) -> bool:
        return self.acct_lv == 4

    @property
    def hedged(self) -> bool:
        return self.pos_mode == "long_short_mode"


def parse_account_config(records: Sequence[dict[str, Any]]) -> AccountConfig:
    if not records or not isinstance(records[0], dict):
        raise DataError("account_config: no configuration record in the payload", field="data")
    record = records[0]
    acct_lv_raw = record.get("acctLv")
    acct_lv: int | None = None
    if acct_lv_raw not in (None, ""):
        if not (
            isinstance(acct_lv_raw, str)
            and acct_lv_raw.isascii()
            and acct_lv_raw.isdigit()
            and len(acct_lv_raw) <= 2
        ):
            raise DataError(
                f"account_config: field 'acctLv' has value {acct_lv_raw!r:.40}; expected a "
                f'level as a string ("1" to "4")',
                field="acctLv",
                value=acct_lv_raw,
            )
        acct_lv = int(acct_lv_raw)
    return AccountConfig(
        uid=_text_field(record, "uid"),
        acct_lv=acct_lv,
        pos_mode=_text_field(record, "posMode"),
    )


def _text_field(record: dict[str, Any], name: str) -> str | None:
    value = record.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise DataError(
            f"account_config: field {name!r} has value {value!r:.40}; expected a string",
            field=name,
            value=value,
        )
    return value


def parse_server_time(records: Sequence[dict[str, Any]]) -> int:
    first = records[0] if records else None
    stamp = first.get("ts") if isinstance(first, dict) else None
    if not (isinstance(stamp, str) and stamp.isascii() and stamp.isdigit() and len(stamp) <= 15):
        raise DataError(
            f"public_time: expected [{{'ts': '<epoch ms>'}}], got {list(records)!r:.80}",
            field="ts",
            value=stamp,
        )
    return int(stamp)


def parse_size(value: object, *, field: str, inst_id: str, source: str) -> Decimal | None:
    """One size from a pushed record (the watcher's records come one by one, not as a
    frame): "" is unknown (None), never 0; anything but a plain decimal string is a
    DataError naming the field and the instrument."""
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not is_plain_finite(value):
        raise DataError(
            f"{source}: field {field!r} of {inst_id} has value {value!r:.40}; expected a "
            "decimal string",
            field=field,
            value=value,
            inst_id=inst_id,
        )
    return Decimal(value)


def parse_epoch_ms(value: object, *, field: str, inst_id: str, source: str) -> int | None:
    """One OKX time (epoch ms as a string) from a pushed record; "" or absent is unknown."""
    if value is None or value == "":
        return None
    if not (isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 15):
        raise DataError(
            f"{source}: field {field!r} of {inst_id} has value {value!r:.40}; expected epoch "
            "milliseconds as a string",
            field=field,
            value=value,
            inst_id=inst_id,
        )
    return int(value)
