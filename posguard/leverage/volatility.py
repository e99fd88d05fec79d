"""Volatility from candles: realized volatility of log returns, or ATR as a fraction of price.

Both are scaled to one day (x sqrt(bars per day)) so a target volatility reads the same for any
bar. Only confirmed (closed) candles count. Too little history, a gap in the window, or any
value that is not a positive finite price gives `value=None` with the reason: never an
exception, so a missing estimate can only ever mean "keep the current leverage".
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from posguard.bars import BAR_MS

Method = Literal["realized", "atr"]

DAY_MS = 86_400_000


@dataclass(frozen=True)
class Volatility:
    value: float | None  # daily fraction (0.04 = 4% a day); None when it cannot be estimated
    method: str
    bars: int
    reason: str = ""

    @property
    def text(self) -> str:
        """For logs and tables: "N/A" when unknown (never a format error)."""
        return "N/A" if self.value is None else f"{self.value:.4f}"


def not_available(method: str, reason: str, bars: int = 0) -> Volatility:
    return Volatility(None, method, bars, reason)


def estimate(
    candles: pd.DataFrame | None,
    *,
    bar: str = "1m",
    window: int = 60,
    method: Method = "realized",
) -> Volatility:
    """Volatility over the last `window` confirmed bars of `candles` (oldest first)."""
    try:
        return _estimate(candles, bar=bar, window=window, method=method)
    except (ArithmeticError, KeyError, TypeError, ValueError) as exc:
        return not_available(method, f"candles unusable ({type(exc).__name__})")


def _estimate(candles: pd.DataFrame | None, *, bar: str, window: int, method: str) -> Volatility:
    if bar not in BAR_MS:
        return not_available(method, f"unknown bar {bar!r}")
    if window < 2:
        return not_available(method, "window must be at least 2 bars")
    if candles is None or candles.empty:
        return not_available(method, "no candles")
    closed = candles[candles["confirm"].fillna(1) != 0].sort_values("ts")
    needed = window + 1  # window returns need one close more
    if len(closed) < needed:
        return not_available(
            method, f"only {len(closed)} closed candles, {needed} needed", len(closed)
        )
    recent = closed.iloc[-needed:]
    stamps = recent["ts"].to_numpy(dtype="float64")
    if not np.all(np.diff(stamps) == BAR_MS[bar]):
        return not_available(method, f"a gap in the last {needed} {bar} candles", len(recent))
    closes = recent["c"].to_numpy(dtype="float64")
    if not np.all(np.isfinite(closes)) or np.any(closes <= 0):
        return not_available(method, "a close that is not a positive price", len(recent))
    per_day = math.sqrt(DAY_MS / BAR_MS[bar])
    if method == "atr":
        high = recent["h"].to_numpy(dtype="float64")[1:]
        low = recent["l"].to_numpy(dtype="float64")[1:]
        previous = closes[:-1]
        true_range = np.maximum.reduce(
            [high - low, np.abs(high - previous), np.abs(low - previous)]
        )
        value = float(np.mean(true_range / closes[1:])) * per_day
    else:
        returns = np.diff(np.log(closes))
        value = float(np.std(returns, ddof=1)) * per_day
    if not math.isfinite(value):
        return not_available(method, "the estimate is not finite", len(recent))
    return Volatility(value, method, len(recent))
