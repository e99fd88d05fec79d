"""Strings become numbers here: "" is NA, never 0; bad values name field, value and instId."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest

from posguard.errors import DataError
from posguard.frames import (
    parse_account_config,
    parse_candles,
    parse_fills,
    parse_instruments,
    parse_leverage_info,
    parse_positions,
    parse_positions_history,
)
from posguard.frames.entities import POSITIONS


def position(**fields: Any) -> dict[str, Any]:
    record = {
        "instType": "SWAP",
        "instId": "XRP-USDT-SWAP",
        "mgnMode": "cross",
        "posSide": "net",
        "pos": "108",
        "lever": "5",
        "avgPx": "1.93",
        "markPx": "1.93",
        "notionalUsd": "20844",
        "liqPx": "",
        "cTime": "1766188800000",
        "uTime": "1766188800000",
        "posId": "681423155054862336",
    }
    record.update(fields)
    return record


@pytest.mark.parametrize(
    ("raw", "expected"), [("3", 3.0), ("3.0", 3.0), ("5.00000000", 5.0), ("10", 10.0), ("2.5", 2.5)]
)
def test_lever_formats_all_parse(raw: str, expected: float) -> None:
    frame = parse_positions([position(lever=raw)])
    assert frame["lever"].iloc[0] == expected


def test_empty_lever_is_unknown_never_zero() -> None:
    frame = parse_positions([position(lever="")])
    assert pd.isna(frame["lever"].iloc[0])
    assert frame["lever"].dtype == "float64"


def test_absent_optional_fields_are_na() -> None:
    record = position()
    del record["markPx"]
    frame = parse_positions([record])
    assert pd.isna(frame["markPx"].iloc[0])


def test_unparseable_value_names_field_value_and_instid() -> None:
    with pytest.raises(DataError) as caught:
        parse_positions([position(), position(instId="BTC-USDT-SWAP", lever="5x")])
    err = caught.value
    assert (err.field, err.value, err.inst_id) == ("lever", "5x", "BTC-USDT-SWAP")
    assert "'lever'" in str(err)
    assert "'5x'" in str(err)
    assert "BTC-USDT-SWAP" in str(err)


@pytest.mark.parametrize("bad", ["NaN", "inf", "1,5", "five", "--1"])
def test_non_numbers_are_refused(bad: str) -> None:
    with pytest.raises(DataError, match="markPx"):
        parse_positions([position(markPx=bad)])


def test_missing_required_field_is_named() -> None:
    record = position()
    del record["posSide"]
    with pytest.raises(DataError, match="'posSide'") as caught:
        parse_positions([record])
    assert caught.value.inst_id == "XRP-USDT-SWAP"


def test_fractional_positions() -> None:
    frame = parse_positions([position(pos="0.37"), position(instId="BTC-USDT-SWAP", pos="-1.25")])
    assert frame["pos"].tolist() == [0.37, -1.25]
    assert frame["size"].tolist() == [0.37, 1.25]
    assert frame["side"].tolist() == ["long", "short"]


def test_net_mode_sign_and_long_short_mode_sides() -> None:
    frame = parse_positions(
        [
            position(posSide="net", pos="-3"),
            position(posSide="long", pos="2", instId="ETH-USDT-SWAP"),
            position(posSide="short", pos="4", instId="ETH-USDT-SWAP"),
        ]
    )
    assert frame["side"].tolist() == ["short", "long", "short"]
    assert frame["pos"].tolist() == [-3.0, 2.0, 4.0]


def test_negative_size_in_long_short_mode_is_refused() -> None:
    with pytest.raises(DataError, match="posSide 'short'"):
        parse_positions([position(posSide="short", pos="-4")])


def test_zero_size_records_are_kept_but_not_open() -> None:
    zero = position(pos="0", lever="", avgPx="", markPx="", notionalUsd="", adl="")
    frame = parse_positions([zero, position(instId="BTC-USDT-SWAP")])
    assert len(frame) == 2
    assert frame["is_open"].tolist() == [False, True]
    assert frame["side"].tolist() == ["flat", "long"]


def test_margin_shorts_are_in_quote_units() -> None:
    long_ = position(instType="MARGIN", instId="BTC-USDT", posCcy="BTC", pos="0.0019")
    short = position(instType="MARGIN", instId="BTC-USDT", posCcy="USDT", pos="304.08")
    frame = parse_positions([long_, short])
    assert frame["side"].tolist() == ["long", "short"]
    assert frame["size_unit"].tolist() == ["base", "quote"]


def test_account_column_and_schema_dtypes() -> None:
    frame = parse_positions([position()], account="main")
    assert frame["account"].tolist() == ["main"]
    for name, dtype in POSITIONS.dtypes().items():
        assert str(frame[name].dtype) == dtype, name


def test_empty_payload_gives_an_empty_frame_with_the_schema() -> None:
    frame = parse_positions([])
    assert len(frame) == 0
    assert "lever" in frame.columns


def test_record_that_is_not_an_object() -> None:
    with pytest.raises(DataError, match="record 0 is a str"):
        parse_positions(["oops"])  # type: ignore[list-item]


def test_instrument_lever_is_the_max_lever() -> None:
    frame = parse_instruments(
        [
            {
                "instType": "SWAP",
                "instId": "XRP-USDT-SWAP",
                "ctVal": "100",
                "ctMult": "1",
                "lotSz": "0.1",
                "tickSz": "0.0001",
                "lever": "50",
                "ctType": "linear",
                "state": "live",
                "expTime": "",
            }
        ]
    )
    assert frame["maxLever"].iloc[0] == 50
    assert frame["ctVal"].iloc[0] == 100
    assert pd.isna(frame["expTime"].iloc[0])
    assert "lever" not in frame.columns


def test_leverage_info_decimal_strings() -> None:
    frame = parse_leverage_info(
        [
            {
                "instId": "BTC-USDT-SWAP",
                "lever": "5.00000000",
                "mgnMode": "isolated",
                "posSide": "net",
            }
        ]
    )
    assert frame["lever"].iloc[0] == 5.0


def test_history_type_and_times_are_integers() -> None:
    frame = parse_positions_history(
        [
            {
                "instType": "SWAP",
                "instId": "XRP-USDT-SWAP",
                "type": "3",
                "cTime": "1708735940395",
                "uTime": "1711088748170",
                "lever": "10.0",
                "triggerPx": "",
            }
        ]
    )
    assert frame["type"].iloc[0] == 3
    assert frame["uTime"].iloc[0] == 1711088748170
    assert str(frame["uTime"].dtype) == "Int64"
    assert pd.isna(frame["triggerPx"].iloc[0])


def test_whole_number_fields_refuse_fractions() -> None:
    with pytest.raises(DataError, match="whole number"):
        parse_positions_history(
            [{"instType": "SWAP", "instId": "X", "type": "2.5", "cTime": "1", "uTime": "1"}]
        )


def test_fills_subtype_is_a_code() -> None:
    frame = parse_fills(
        [
            {
                "instId": "XRP-USDT-SWAP",
                "subType": "104",
                "fillSz": "3",
                "fillPx": "0.5",
                "ts": "1",
                "fillTime": "",
            }
        ]
    )
    assert frame["subType"].iloc[0] == 104
    assert pd.isna(frame["fillTime"].iloc[0])


def test_candles_are_sorted_oldest_first_and_short_rows_are_na() -> None:
    frame = parse_candles(
        [
            ["2", "1", "2", "0.5", "1.5", "10", "1", "15", "0"],
            ["1", "1", "1", "1", "1", "5", "0.5"],
        ],
        inst_id="XRP-USDT-SWAP",
    )
    assert frame["ts"].tolist() == [1, 2]
    assert pd.isna(frame["confirm"].iloc[0])
    assert frame["instId"].unique().tolist() == ["XRP-USDT-SWAP"]


def test_bad_candle_row_names_the_instrument() -> None:
    with pytest.raises(DataError, match="XRP-USDT-SWAP"):
        parse_candles([["1", "2"]], inst_id="XRP-USDT-SWAP")


def test_account_config() -> None:
    config = parse_account_config([{"acctLv": "4", "posMode": "net_mode", "uid": "1"}])
    assert config.portfolio_margin
    assert not config.hedged
    with pytest.raises(DataError, match="acctLv"):
        parse_account_config([{"acctLv": "four"}])


def test_parsing_is_vectorized_over_large_payloads() -> None:
    records = [
        position(instId=f"C{i}-USDT-SWAP", pos=str(i % 7), lever="" if i % 5 else "3")
        for i in range(20_000)
    ]
    frame = parse_positions(records)
    assert len(frame) == 20_000
    assert int(frame["lever"].isna().sum()) == 16_000
    assert int((~frame["is_open"]).sum()) == len([i for i in range(20_000) if i % 7 == 0])
    assert np.isfinite(frame["markPx"]).all()
    assert not math.isnan(frame["size"].sum())
