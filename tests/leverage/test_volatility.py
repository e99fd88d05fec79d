"""Volatility from candles: closed bars only; gaps and short history are N/A."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from posguard.frames import parse_candles
from posguard.leverage.volatility import estimate
from posguard.okx.saved import load_records
from tests.conftest import SAMPLES


def candles(closes: list[float], *, step: int = 60_000, confirm_last: int = 0) -> pd.DataFrame:
    count = len(closes)
    return pd.DataFrame(
        {
            "ts": [step * i for i in range(count)],
            "o": closes,
            "h": [c * 1.001 for c in closes],
            "l": [c * 0.999 for c in closes],
            "c": closes,
            "confirm": [1] * (count - 1) + [confirm_last],
        }
    )


def test_realized_volatility_is_the_daily_scaled_stdev_of_log_returns() -> None:
    rng = np.random.default_rng(1)
    closes = list(100 * np.exp(np.cumsum(rng.normal(0, 0.001, 62))))
    result = estimate(candles(closes), window=60)
    expected = np.std(np.diff(np.log(closes[-62:-1]))[-60:], ddof=1) * math.sqrt(1440)
    assert result.value == pytest.approx(expected)
    assert result.bars == 61


def test_atr_method() -> None:
    result = estimate(candles([100.0 + (i % 2) for i in range(70)]), window=60, method="atr")
    assert result.value is not None
    assert result.value > 0


def test_the_bar_still_forming_is_ignored() -> None:
    closes = [100.0] * 61 + [500.0]
    assert estimate(candles(closes, confirm_last=0), window=60).value == 0.0


def test_too_short_history_is_na_with_a_reason() -> None:
    result = estimate(candles([1.0, 1.1, 1.2]), window=60)
    assert result.value is None
    assert result.text == "N/A"
    assert "61 needed" in result.reason


def test_a_gap_is_na() -> None:
    frame = candles([1.0 + i / 100 for i in range(70)])
    frame = frame.drop(index=40).reset_index(drop=True)
    result = estimate(frame, window=60)
    assert result.value is None
    assert "gap" in result.reason


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan")])
def test_non_positive_prices_are_na(bad: float) -> None:
    closes = [1.0] * 70
    closes[-5] = bad
    assert estimate(candles(closes), window=60).value is None


def test_real_candle_samples_are_too_short_but_never_fail() -> None:
    for path in SAMPLES.glob("*candles*.json"):
        frame = parse_candles(load_records(path), inst_id="X")
        assert estimate(frame, window=60).value is None
        assert estimate(frame, window=2, bar="1m").text  # N/A or a number, never an error
