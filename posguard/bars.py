"""Candle bars OKX serves (market/candles `bar`), with their length in milliseconds.

Neutral ground: the client, the simulator, the volatility estimate and the settings all name
bars, and none of them should import another for it.
"""

from __future__ import annotations

from typing import Literal

Bar = Literal["1m", "3m", "5m", "15m", "30m", "1H", "2H", "4H", "6Hutc", "12Hutc", "1Dutc"]

BAR_MS: dict[str, int] = {
    "1m": 60_000,
    "3m": 180_000,
    "5m": 300_000,
    "15m": 900_000,
    "30m": 1_800_000,
    "1H": 3_600_000,
    "2H": 7_200_000,
    "4H": 14_400_000,
    "6Hutc": 21_600_000,
    "12Hutc": 43_200_000,
    "1Dutc": 86_400_000,
}
