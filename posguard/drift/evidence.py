"""Reading positions-history and fills as evidence for what happened to one position."""

from __future__ import annotations

from typing import Any

import pandas as pd

# positions-history `type`: the latest close type of a position's life.
HISTORY_CAUSE = {
    1: "size_changed",
    2: "closed",
    3: "liquidated",
    4: "liquidated",
    5: "adl",
    6: "adl",
}
FULL_CLOSE_TYPES = {2, 3, 6}
# fills `subType`.
FILL_CAUSE = {
    5: "closed",
    6: "closed",
    112: "closed",
    113: "closed",
    208: "closed",
    209: "closed",
    274: "closed",
    275: "closed",
    328: "closed",
    329: "closed",
    100: "liquidated",
    101: "liquidated",
    104: "liquidated",
    105: "liquidated",
    110: "liquidated",
    111: "liquidated",
    125: "adl",
    126: "adl",
}
OPEN_FILLS = {3, 4}


def _plain(value: Any) -> Any:
    if value is None:
        return None
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    if hasattr(value, "item"):
        return value.item()
    return value


def latest_history(
    history: pd.DataFrame | None,
    inst_id: str,
    mgn_mode: str,
    pos_side: str,
    *,
    since_ms: int,
    until_ms: int,
    pos_id: str | None = None,
) -> dict[str, Any] | None:
    """The newest positions-history record of this position within the window."""
    if history is None or history.empty:
        return None
    rows = history[
        (history["instId"] == inst_id)
        & (history["mgnMode"] == mgn_mode)
        & (history["uTime"] >= since_ms)
        & (history["uTime"] <= until_ms)
    ]
    if pos_side in ("long", "short"):
        rows = rows[rows["posSide"] == pos_side]
    if pos_id is not None and rows["posId"].notna().any():
        matching = rows[rows["posId"] == pos_id]
        rows = matching if not matching.empty else rows
    if rows.empty:
        return None
    record = rows.sort_values("uTime").iloc[-1]
    fields = (
        "instId",
        "posId",
        "type",
        "cTime",
        "uTime",
        "openMaxPos",
        "closeTotalPos",
        "closeAvgPx",
        "triggerPx",
        "direction",
    )
    return {name: _plain(record.get(name)) for name in fields}


def fills_of(
    fills: pd.DataFrame | None,
    inst_id: str,
    pos_side: str,
    *,
    since_ms: int,
    until_ms: int,
) -> pd.DataFrame:
    if fills is None or fills.empty:
        return pd.DataFrame()
    stamp = fills["fillTime"].fillna(fills["ts"])
    rows = fills[(fills["instId"] == inst_id) & (stamp >= since_ms) & (stamp <= until_ms)]
    if pos_side in ("long", "short"):
        rows = rows[rows["posSide"] == pos_side]
    return rows


def fill_cause(rows: pd.DataFrame) -> tuple[str | None, list[int]]:
    """The cause the newest closing fill points to, and the subTypes seen."""
    if rows.empty:
        return None, []
    sub_types = [int(s) for s in rows["subType"].dropna().tolist()]
    causes = [FILL_CAUSE[s] for s in sub_types if s in FILL_CAUSE]
    for preferred in ("liquidated", "adl", "closed"):
        if preferred in causes:
            return preferred, sub_types
    return None, sub_types


def has_opening_fills(rows: pd.DataFrame) -> bool:
    if rows.empty:
        return False
    return bool(rows["subType"].isin(list(OPEN_FILLS)).any())
