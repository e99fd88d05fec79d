"""Leverage resolution: position lever -> leverage-info (own mgnMode/posSide) -> unknown."""

from __future__ import annotations

from typing import Any

import pandas as pd

from posguard.frames import parse_leverage_info, parse_positions
from posguard.leverage import resolve_leverage


def pos(inst: str, lever: str, mgn: str = "cross", side: str = "net", size: str = "1") -> Any:
    return {
        "instType": "SWAP",
        "instId": inst,
        "mgnMode": mgn,
        "posSide": side,
        "pos": size,
        "lever": lever,
    }


def info(inst: str, lever: str, mgn: str = "cross", side: str = "net") -> Any:
    return {"instId": inst, "mgnMode": mgn, "posSide": side, "lever": lever}


def test_sources_in_order() -> None:
    positions = parse_positions([pos("A", "5"), pos("B", ""), pos("C", ""), pos("D", "", size="0")])
    resolved = resolve_leverage(positions, parse_leverage_info([info("B", "3.00000000")]))
    assert resolved["lever_source"].tolist() == ["position", "leverage_info", "unknown", "unknown"]
    assert resolved["lever"].tolist()[:2] == [5.0, 3.0]
    assert pd.isna(resolved["lever"].iloc[2])
    assert "no row" in resolved["lever_reason"].iloc[2]
    assert "zero-size" in resolved["lever_reason"].iloc[3]


def test_leverage_info_of_the_other_margin_mode_is_not_used() -> None:
    positions = parse_positions([pos("A", "", mgn="isolated")])
    resolved = resolve_leverage(positions, parse_leverage_info([info("A", "20", mgn="cross")]))
    assert resolved["lever_source"].tolist() == ["unknown"]


def test_long_short_mode_uses_the_position_side() -> None:
    positions = parse_positions(
        [pos("A", "", mgn="isolated", side="long"), pos("A", "", mgn="isolated", side="short")]
    )
    rows = [info("A", "10", "isolated", "long"), info("A", "3", "isolated", "short")]
    resolved = resolve_leverage(positions, parse_leverage_info(rows))
    assert resolved["lever"].tolist() == [10.0, 3.0]


def test_portfolio_margin_and_failures_keep_their_reason() -> None:
    positions = parse_positions([pos("A", ""), pos("B", "", mgn="isolated")])
    resolved = resolve_leverage(
        positions,
        parse_leverage_info([]),
        portfolio_margin=True,
        failures={("B", "isolated"): "leverage-info failed for B (isolated): 51000"},
    )
    assert "59111" in resolved["lever_reason"].iloc[0]
    assert "51000" in resolved["lever_reason"].iloc[1]


def test_config_default_is_labelled() -> None:
    resolved = resolve_leverage(
        parse_positions([pos("A", "")]), parse_leverage_info([]), config_default=5.0
    )
    assert resolved["lever"].tolist() == [5.0]
    assert resolved["lever_source"].tolist() == ["config"]


def test_zero_leverage_is_never_taken_as_known() -> None:
    resolved = resolve_leverage(
        parse_positions([pos("A", "0")]), parse_leverage_info([info("A", "0")])
    )
    assert resolved["lever_source"].tolist() == ["unknown"]
