"""The diff's first step: registry rows and open positions side by side, one row per key.

The union of both sides' keys (closed registry rows included), and the helpers that read a
joined row's values back as Python numbers and text.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from posguard.drift.model import key_text

KEY = ["instId", "posSide", "mgnMode"]
REGISTRY_COLUMNS = [
    *KEY,
    "pos",
    "avgPx",
    "lever",
    "version",
    "updated_at_ms",
    "recorded_at_ms",
    "posId",
    "cTime",
]
EXCHANGE_COLUMNS = [*KEY, "pos", "lever", "posId", "cTime", "uTime", "avgPx"]


def empty_registry() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "instId": pd.Series([], dtype="str"),
            "posSide": pd.Series([], dtype="str"),
            "mgnMode": pd.Series([], dtype="str"),
            "pos": pd.Series([], dtype="float64"),
            "avgPx": pd.Series([], dtype="float64"),
            "lever": pd.Series([], dtype="float64"),
            "version": pd.Series([], dtype="int64"),
            "updated_at_ms": pd.Series([], dtype="int64"),
            "recorded_at_ms": pd.Series([], dtype="int64"),
            "posId": pd.Series([], dtype="str"),
            "cTime": pd.Series([], dtype="Int64"),
        }
    )


def key_texts(frame: pd.DataFrame) -> list[str]:
    """`key_text` for every row at once."""
    return [
        key_text((str(inst_id), str(pos_side), str(mgn_mode)))
        for inst_id, pos_side, mgn_mode in zip(
            frame["instId"].tolist(),
            frame["posSide"].tolist(),
            frame["mgnMode"].tolist(),
            strict=True,
        )
    ]


def _taken(values: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """values[positions], with NaN (numbers) or None (anything else) where positions is -1."""
    if values.dtype.kind in "fiu":
        out = np.full(len(positions), np.nan)
        present = positions >= 0
        out[present] = values[positions[present]].astype("float64")
        return out
    picked = np.empty(len(positions), dtype=object)
    present = positions >= 0
    picked[present] = values[positions[present]]
    return picked


def _column_values(frame: pd.DataFrame, name: str) -> np.ndarray:
    column = frame[name]
    if column.dtype.kind in "fiu" or str(column.dtype) in ("Int64", "Float64"):
        return column.to_numpy(dtype="float64", na_value=np.nan)
    return column.to_numpy(dtype=object)


def outer_join(exchange: pd.DataFrame, registry: pd.DataFrame) -> pd.DataFrame:
    """The union of both sides' keys, one row per key (keys are unique on each side), with
    the other columns suffixed `_ex`/`_reg` and `_merge` saying where each row came from.

    What `DataFrame.merge(how="outer", indicator=True)` gives, without its fixed cost, which
    dominates a cycle of a few positions."""
    ex_keys = pd.Index(key_texts(exchange), dtype=object)
    reg_keys = pd.Index(key_texts(registry), dtype=object)
    keys = ex_keys.union(reg_keys, sort=False)
    on_ex = ex_keys.get_indexer(keys)
    on_reg = reg_keys.get_indexer(keys)
    columns: dict[str, Any] = {}
    for name in KEY:
        from_ex = _taken(exchange[name].to_numpy(dtype=object), on_ex)
        from_reg = _taken(registry[name].to_numpy(dtype=object), on_reg)
        columns[name] = np.where(on_ex >= 0, from_ex, from_reg)
    shared = (set(exchange.columns) & set(registry.columns)) - set(KEY)
    for side, frame, positions in (("_ex", exchange, on_ex), ("_reg", registry, on_reg)):
        for name in frame.columns:
            if name in KEY:
                continue
            label = f"{name}{side}" if name in shared else name
            columns[label] = _taken(_column_values(frame, name), positions)
    where = np.where(on_ex >= 0, np.where(on_reg >= 0, "both", "left_only"), "right_only")
    columns["_merge"] = where.astype(object)
    columns["key"] = np.asarray(keys, dtype=object)
    return pd.DataFrame(columns)


def number(value: Any) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if np.isnan(number) else number


def text(value: Any) -> str | None:
    amount = number(value)
    if amount is None:
        return None
    return format(amount, ".12g")


def whole(value: Any) -> int | None:
    amount = number(value)
    return None if amount is None else int(amount)


def pos_id(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
