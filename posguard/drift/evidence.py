"""Reading positions-history and fills as evidence of what happened to one life of a position.

Evidence explains a discrepancy only when it is about the life the registry describes:
OKX reuses a posId for 30 days, so a close of an earlier life on the same key (same posId,
older cTime) says nothing about the current one (the 2025-12-20 false alarm, again).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from posguard.drift.model import Key, Life

# positions-history `type`: the latest close type of a position's life.
HISTORY_CAUSE = {
    1: "size_changed",
    2: "closed",
    3: "liquidated",
    4: "liquidated",
    5: "adl",
    6: "adl",
}
FULL_CLOSE_TYPES = frozenset({2, 3, 6})
PARTIAL_CLOSE_TYPES = frozenset({1, 4, 5})
# fills `subType` that close (part of) a position, and what closed it.
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
# fills `subType` that open (or add to) a position of each direction.
OPENS = {"long": 3, "short": 4}
OPEN_FILLS = frozenset(OPENS.values())
HISTORY_FIELDS = (
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


def plain(value: Any) -> Any:
    """A JSON-safe scalar: NA becomes None, numpy scalars become Python ones."""
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


def _side_matches(frame: pd.DataFrame, pos_side: str) -> pd.Series:
    # Net-mode records carry "net" (some captures leave it empty).
    sides = frame["posSide"].fillna("")
    if pos_side == "net":
        return sides.isin(["net", ""])
    return sides == pos_side


@dataclass(frozen=True)
class Evidence:
    """One cycle's positions-history and fills, and how far back each is complete."""

    history: pd.DataFrame | None
    fills: pd.DataFrame | None
    since_ms: int  # the lookback window's start
    until_ms: int  # the snapshot time: later records are not evidence for this snapshot
    # Pages cut short: older records than this may exist but were not read (None: complete).
    history_covers_from_ms: int | None = None
    fills_covers_from_ms: int | None = None

    def history_of(self, key: Key) -> pd.DataFrame:
        history = self.history
        if history is None or history.empty:
            return pd.DataFrame(columns=list(HISTORY_FIELDS))
        inst_id, pos_side, mgn_mode = key
        rows = history[
            (history["instId"] == inst_id)
            & (history["mgnMode"].fillna(mgn_mode) == mgn_mode)
            & (history["uTime"] >= self.since_ms)
            & (history["uTime"] <= self.until_ms)
        ]
        return rows[_side_matches(rows, pos_side)]

    def fills_of(self, key: Key) -> pd.DataFrame:
        fills = self.fills
        if fills is None or fills.empty:
            return pd.DataFrame(columns=["subType", "stamp"])
        inst_id, pos_side, _ = key
        stamp = fills["fillTime"].fillna(fills["ts"])
        rows = fills.assign(stamp=stamp)
        rows = rows[
            (rows["instId"] == inst_id)
            & (rows["stamp"] >= self.since_ms)
            & (rows["stamp"] <= self.until_ms)
        ]
        return rows[_side_matches(rows, pos_side)]

    def history_complete_since(self, moment_ms: int) -> bool:
        """Were all history records from `moment_ms` on read?"""
        covers = self.history_covers_from_ms
        return covers is None or covers <= max(moment_ms, self.since_ms)

    def fills_complete_since(self, moment_ms: int) -> bool:
        covers = self.fills_covers_from_ms
        return covers is None or covers <= max(moment_ms, self.since_ms)

    def complete_since(self, moment_ms: int) -> bool:
        """History and fills both read whole from `moment_ms` on."""
        return self.history_complete_since(moment_ms) and self.fills_complete_since(moment_ms)


def record(row: pd.Series) -> dict[str, Any]:
    return {name: plain(row.get(name)) for name in HISTORY_FIELDS}


def lives(history: pd.DataFrame) -> list[tuple[Life, dict[str, Any]]]:
    """Each life in these history rows with its newest record, oldest life first."""
    if history.empty:
        return []
    newest = history.sort_values("uTime").groupby(["posId", "cTime"], dropna=False).tail(1)
    found: list[tuple[Life, dict[str, Any]]] = []
    for _, row in newest.sort_values("cTime").iterrows():
        pos_id = row["posId"] if isinstance(row["posId"], str) and row["posId"] else None
        found.append(((pos_id, int(row["cTime"])), record(row)))
    return found


def same_life(a: Life | None, b: Life | None) -> bool:
    if a is None or b is None:
        return False
    if a[1] != b[1]:
        return False
    return a[0] is None or b[0] is None or a[0] == b[0]


def newest_record_of(history: pd.DataFrame, life: Life) -> dict[str, Any] | None:
    found: list[tuple[Life, dict[str, Any]]] = lives(history)
    for candidate, newest in reversed(found):
        if same_life(candidate, life):
            return dict(newest)
    return None


def fill_cause(rows: pd.DataFrame) -> tuple[str | None, list[int]]:
    """The cause the closing fills point to, and the subTypes seen."""
    if rows.empty:
        return None, []
    sub_types = [int(s) for s in rows["subType"].dropna().tolist()]
    causes = [FILL_CAUSE[s] for s in sub_types if s in FILL_CAUSE]
    for preferred in ("liquidated", "adl", "closed"):
        if preferred in causes:
            return preferred, sub_types
    return None, sub_types


def closing_fills(rows: pd.DataFrame) -> pd.DataFrame:
    if rows.empty:
        return rows
    return rows[rows["subType"].isin(list(FILL_CAUSE))]


def opening_fills(rows: pd.DataFrame) -> pd.DataFrame:
    if rows.empty:
        return rows
    return rows[rows["subType"].isin(list(OPEN_FILLS))]
