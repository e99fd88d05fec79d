"""The four incident failures, caught from OKX-shaped data by the GX suites."""

from __future__ import annotations

from typing import Any

import pytest

from expectations.report import ValidationReport
from expectations.runner import ExpectationsRunner, shared_runner
from posguard.frames import parse_instruments, parse_leverage_info, parse_positions
from posguard.frames.contract import instruments_frame, positions_frame
from posguard.leverage import resolve_leverage
from posguard.okx.saved import load_records
from tests.conftest import SAMPLES
from tests.helpers import xrp_position as xrp

INSTRUMENTS = parse_instruments(load_records(SAMPLES / "instruments_swap_ccxt_markets_info.json"))


@pytest.fixture(scope="module")
def runner() -> ExpectationsRunner:
    return shared_runner()


def validate(
    runner: ExpectationsRunner,
    records: list[dict[str, Any]],
    leverage: list[dict[str, Any]] | None = None,
) -> ValidationReport:
    positions = resolve_leverage(parse_positions(records), parse_leverage_info(leverage or []))
    return runner.validate(
        positions_frame(positions, INSTRUMENTS), instruments_frame(INSTRUMENTS), pos_mode="net_mode"
    )


def rule(report: ValidationReport, name: str) -> Any:
    return next(r for r in report.results if r.expectation == name)


def test_correct_xrp_108_contracts_passes(runner: ExpectationsRunner) -> None:
    report = validate(runner, [xrp()])
    assert report.success, [r.to_dict() for r in report.failed]


def test_empty_lever_resolved_from_leverage_info_passes(runner: ExpectationsRunner) -> None:
    report = validate(
        runner,
        [xrp(lever="")],
        leverage=[
            {"instId": "XRP-USDT-SWAP", "mgnMode": "cross", "posSide": "net", "lever": "5.00000000"}
        ],
    )
    assert report.success
    positions = resolve_leverage(
        parse_positions([xrp(lever="")]),
        parse_leverage_info(
            [{"instId": "XRP-USDT-SWAP", "mgnMode": "cross", "posSide": "net", "lever": "5"}]
        ),
    )
    assert positions["lever_source"].tolist() == ["leverage_info"]


def test_empty_lever_with_nothing_to_resolve_fails_naming_the_instrument(
    runner: ExpectationsRunner,
) -> None:
    report = validate(
        runner, [xrp(lever=""), xrp(instId="LTC-USDT-SWAP", notionalUsd="0", pos="0")]
    )
    lever = rule(report, "lever > 0")
    assert not lever.success
    assert [f.inst_id for f in lever.failing] == ["XRP-USDT-SWAP"]  # zero-size record skipped
    assert "unknown" in lever.failing[0].detail
    assert not report.success


def test_notional_without_ct_val_is_contracts_used_as_coins(runner: ExpectationsRunner) -> None:
    # The bot's value: 108 contracts x 1.93 = 208.44, 100x too small.
    report = validate(runner, [xrp(notionalUsd="208.44")])
    consistency = rule(report, "notional consistent with ctVal")
    assert not consistency.success
    assert consistency.failing[0].inst_id == "XRP-USDT-SWAP"
    assert "contracts used as coins" in consistency.failing[0].detail
    assert not rule(report, "contracts used as coins").success


def test_lever_above_the_instrument_max(runner: ExpectationsRunner) -> None:
    failing = rule(validate(runner, [xrp(lever="75")]), "lever <= instrument max lever")
    assert [f.inst_id for f in failing.failing] == ["XRP-USDT-SWAP"]
    assert "50" in failing.failing[0].detail


@pytest.mark.parametrize(
    ("fields", "name"),
    [
        ({"posSide": "both"}, "posSide in {long, short, net}"),
        ({"posSide": "long"}, "posSide consistent with posMode"),
        ({"mgnMode": "portfolio"}, "mgnMode in {cross, isolated}"),
        ({"markPx": "0"}, "markPx > 0 on open positions"),
        ({"avgPx": ""}, "avgPx > 0 on open positions"),
        ({"liqPx": "2.5"}, "liqPx on the losing side of markPx"),
        ({"pos": "108.05"}, "pos a multiple of lotSz"),
        ({"instId": "NEW-USDT-SWAP"}, "instId present in instruments"),
    ],
)
def test_each_position_rule_fails_on_its_own(
    runner: ExpectationsRunner, fields: dict[str, str], name: str
) -> None:
    report = validate(runner, [xrp(**fields)])
    assert not rule(report, name).success
    assert rule(report, name).failing[0].detail


def test_duplicate_position_keys(runner: ExpectationsRunner) -> None:
    failing = rule(validate(runner, [xrp(), xrp()]), "(instId, posSide, mgnMode) unique")
    assert len(failing.failing) == 2


def test_instrument_rules(runner: ExpectationsRunner) -> None:
    broken = INSTRUMENTS.copy()
    broken.loc[broken["instId"] == "XRP-USDT-SWAP", ["ctVal", "state"]] = [0.0, "halted"]
    report = runner.validate(
        positions_frame(
            resolve_leverage(parse_positions([xrp()]), parse_leverage_info([])), broken
        ),
        instruments_frame(broken),
    )
    assert [f.inst_id for f in rule(report, "ctVal > 0").failing] == ["XRP-USDT-SWAP"]
    assert not rule(report, "state known").success


def test_the_json_shape(runner: ExpectationsRunner) -> None:
    document = validate(runner, [xrp(lever="")]).to_json()
    assert set(document) == {"success", "results"}
    entry = next(r for r in document["results"] if not r["success"])
    assert set(entry) == {"expectation", "success", "failing"}
    assert set(entry["failing"][0]) == {"instId", "posSide", "mgnMode", "detail"}


def test_the_context_is_built_once_per_process() -> None:
    assert shared_runner() is shared_runner()
