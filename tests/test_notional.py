"""The one notional formula, proven on every real sample whose numbers allow it."""

from __future__ import annotations

import pandas as pd
import pytest

from posguard.frames import parse_instruments, parse_positions
from posguard.notional import (
    classify_notional,
    contract_notional,
    position_notional,
    relative_error,
)
from posguard.okx.saved import load_records
from tests.conftest import SAMPLES

PROD_SWAPS = parse_instruments(load_records(SAMPLES / "instruments_swap_ccxt_markets_info.json"))


def demo_ltc() -> pd.DataFrame:
    # ccxt's LTC captures come from a demo account whose LTC-USDT-SWAP ctVal is 0.001
    # (okx-facts.md 4.4); production's is 1.
    frame = PROD_SWAPS[PROD_SWAPS["instId"] == "LTC-USDT-SWAP"].copy()
    frame["ctVal"] = 0.001
    return frame


@pytest.mark.parametrize(
    ("sample", "instruments", "expected"),
    [
        ("positions_ws_ccxt_docstring_xrp.json", PROD_SWAPS, 52.692),  # 1 x 100 x 0.52692
        ("positions_ccxt_3_inverse_cross.json", PROD_SWAPS, 100.0),  # 1 x 100 USD
        ("positions_ccxt_4_inverse_isolated.json", PROD_SWAPS, 100.0),
        ("positions_ccxt_1.json", demo_ltc(), 0.06824),  # 1 x 0.001 x 68.24
        ("positions_ccxt_2.json", demo_ltc(), None),
    ],
)
def test_real_samples_match_okx_notional_usd(
    sample: str, instruments: pd.DataFrame, expected: float | None
) -> None:
    frame = position_notional(parse_positions(load_records(SAMPLES / sample)), instruments)
    if expected is not None:
        assert frame["notional"].iloc[0] == pytest.approx(expected, rel=1e-9)
    assert relative_error(frame["notionalUsd"], frame["notional"]).iloc[0] < 0.001
    verdict = classify_notional(frame["notionalUsd"], frame["notional"], frame["ctVal"])
    assert verdict.tolist() == ["ok"]


def test_okx_docs_margin_sample_uses_base_size_times_price() -> None:
    frame = parse_positions(load_records(SAMPLES / "positions_okxdocs.json"))
    spot = parse_instruments(load_records(SAMPLES / "instruments_spot_okxdocs.json"))
    merged = position_notional(frame, spot)
    assert merged["size_unit"].iloc[0] in {"base", "quote"}
    assert relative_error(merged["notionalUsd"], merged["notional"]).iloc[0] < 0.01


def test_incident_xrp_108_contracts() -> None:
    size = pd.Series([108.0])
    value = contract_notional(
        size, pd.Series([100.0]), pd.Series([1.0]), pd.Series([1.93]), pd.Series(["linear"])
    )
    assert value.iloc[0] == pytest.approx(20_844.0)


def test_contracts_used_as_coins_is_recognised_both_ways() -> None:
    computed = pd.Series([20_844.0, 1_000.0, 20_844.0, 20_844.0])
    reported = pd.Series([208.44, 100_000.0, 20_900.0, 30_000.0])
    ct_val = pd.Series([100.0, 0.01, 100.0, 100.0])
    verdict = classify_notional(reported, computed, ct_val)
    assert verdict.tolist() == ["contracts_as_coins", "contracts_as_coins", "ok", "mismatch"]


def test_unknown_inputs_give_na_never_zero() -> None:
    value = contract_notional(
        pd.Series([3.0, 3.0]),
        pd.Series([float("nan"), 1.0]),
        pd.Series([1.0, 1.0]),
        pd.Series([2.0, float("nan")]),
        pd.Series(["linear", "linear"]),
    )
    assert value.isna().all()
    verdict = classify_notional(pd.Series([float("nan")]), pd.Series([1.0]), pd.Series([1.0]))
    assert verdict.tolist() == ["unknown"]


def test_unknown_instrument_has_no_notional() -> None:
    frame = parse_positions(
        [
            {
                "instType": "SWAP",
                "instId": "NEW-USDT-SWAP",
                "mgnMode": "cross",
                "posSide": "net",
                "pos": "1",
                "markPx": "2",
            }
        ]
    )
    merged = position_notional(frame, PROD_SWAPS)
    assert not merged["instrument_known"].iloc[0]
    assert pd.isna(merged["notional"].iloc[0])
