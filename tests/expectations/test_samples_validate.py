"""Every real position sample validated with its environment's instruments, outcome asserted."""

from __future__ import annotations

import pytest

from expectations.runner import shared_runner
from posguard.frames import parse_instruments, parse_leverage_info, parse_positions
from posguard.frames.contract import instruments_frame, positions_frame
from posguard.leverage import resolve_leverage
from posguard.okx.saved import load_records
from tests.conftest import SAMPLES

PROD = parse_instruments(load_records(SAMPLES / "instruments_swap_ccxt_markets_info.json"))
SPOT = parse_instruments(load_records(SAMPLES / "instruments_spot_okxdocs.json"))


def demo() -> object:
    # The ccxt LTC captures come from a demo account whose LTC-USDT-SWAP ctVal is 0.001.
    frame = PROD.copy()
    frame.loc[frame["instId"] == "LTC-USDT-SWAP", "ctVal"] = 0.001
    return frame


# sample -> (instruments, the rules that fail; an empty set means every rule passes)
CASES = {
    "positions_ws_ccxt_docstring_xrp.json": (PROD, set()),
    "positions_ccxt_3_inverse_cross.json": (PROD, set()),
    "positions_ccxt_4_inverse_isolated.json": (PROD, set()),
    "positions_ccxt_1.json": (demo(), set()),
    "positions_ccxt_2.json": (demo(), set()),
    # The same demo captures against production specs: ctVal 1 vs 0.001 is a mismatch, not
    # the coins fingerprint (that would be a factor of ctVal, and ctVal is 1).
    "positions_ccxt_2.json#prod": (PROD, {"notional consistent with ctVal"}),
    # ccxt's docstring record has a hand-edited markPx (SOURCES.md): notional and liqPx
    # no longer agree with it.
    "positions_ccxt_docstring_linear_swap_record.json": (
        PROD,
        {"notional consistent with ctVal", "liqPx on the losing side of markPx"},
    ),
    # A 2021 FUTURES record: the instrument expired long ago and the schema had no markPx.
    "positions_ccxt_docstring_futures_inverse.json": (
        PROD,
        {"instId present in instruments", "markPx > 0 on open positions"},
    ),
    "positions_okxdocs.json": (SPOT, set()),
}


@pytest.mark.parametrize("case", list(CASES))
def test_real_sample_outcome(case: str) -> None:
    sample = case.split("#")[0]
    instruments, expected_failures = CASES[case]
    positions = resolve_leverage(
        parse_positions(load_records(SAMPLES / sample)), parse_leverage_info([])
    )
    report = shared_runner().validate(
        positions_frame(positions, instruments), instruments_frame(instruments)
    )
    failed = {r.expectation for r in report.failed}
    assert failed == expected_failures, [r.to_dict() for r in report.failed]


def test_every_position_sample_has_a_case() -> None:
    covered = {c.split("#")[0] for c in CASES}
    assert {p.name for p in SAMPLES.glob("positions_*.json")} - {
        p.name for p in SAMPLES.glob("positions_history_*.json")
    } == covered
