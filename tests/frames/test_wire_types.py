"""Only what OKX sends parses: JSON strings of ASCII decimals; every other type is a DataError."""

from __future__ import annotations

import json
from typing import Any

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
    parse_server_time,
)
from tests.frames.test_parse import position

# Values Python's json and float() accept that OKX never sends in a numeric field.
NOT_OKX_NUMBERS: list[tuple[str, Any]] = [
    ("json-true", True),
    ("json-false", False),
    ("json-array", [1, 2]),
    ("json-empty-array", []),
    ("json-object", {"value": "1"}),
    ("json-number", 108),
    ("json-float", 1.93),
    ("bare-nan", json.loads("NaN")),
    ("bare-infinity", json.loads("Infinity")),
    ("underscores", "1_000"),
    ("arabic-indic-digits", "\u0661\u0660\u0668"),
    ("fullwidth-digits", "\uff11\uff10\uff18"),
    ("padded", " 108 "),
    ("newline", "108\n"),
    ("nan-text", "NaN"),
    ("infinity-text", "Infinity"),
    ("overflow", "1e400"),
]


@pytest.mark.parametrize(
    ("field", "value"),
    [(f, v) for f in ("pos", "lever", "markPx") for _, v in NOT_OKX_NUMBERS],
    ids=[f"{f}-{name}" for f in ("pos", "lever", "markPx") for name, _ in NOT_OKX_NUMBERS],
)
def test_a_numeric_field_takes_only_an_okx_decimal_string(field: str, value: Any) -> None:
    with pytest.raises(DataError) as caught:
        parse_positions([position(), position(instId="BTC-USDT-SWAP", **{field: value})])
    error = caught.value
    assert error.field == field
    assert error.inst_id == "BTC-USDT-SWAP"
    assert error.value is value
    message = str(error)
    assert repr(field) in message
    assert "BTC-USDT-SWAP" in message
    assert "record 1" in message


def test_a_json_true_lever_is_not_1() -> None:
    with pytest.raises(DataError, match=r"'lever' has value True \(a JSON boolean\)"):
        parse_positions([position(lever=True)])


def test_an_array_in_a_numeric_field_is_a_data_error_not_a_pandas_error() -> None:
    with pytest.raises(DataError, match=r"a JSON array"):
        parse_positions([position(pos=["108"])])


@pytest.mark.parametrize(
    "value",
    ["9223372036854775808", "99999999999999999999", "-9223372036854775809", 10**20, "1e19"],
)
def test_times_beyond_int64_are_a_data_error(value: Any) -> None:
    with pytest.raises(DataError, match="cTime") as caught:
        parse_positions([position(cTime=value)])
    assert caught.value.inst_id == "XRP-USDT-SWAP"


def test_times_that_would_lose_digits_in_a_float_are_refused() -> None:
    # 2**53 + 1 is read as 2**53 by a float64: a wrong time is worse than none.
    with pytest.raises(DataError, match="below 2\\*\\*53"):
        parse_positions_history(
            [
                {
                    "instType": "SWAP",
                    "instId": "XRP-USDT-SWAP",
                    "cTime": "1",
                    "uTime": str(2**53 + 1),
                }
            ]
        )


def test_epoch_ms_and_negative_numbers_still_parse() -> None:
    frame = parse_positions([position(cTime="1766188800000", upl="-0.5", pos="-3")])
    assert frame["cTime"].iloc[0] == 1766188800000
    assert frame["upl"].iloc[0] == -0.5
    assert frame["pos"].iloc[0] == -3


@pytest.mark.parametrize("value", [True, 7, ["XRP-USDT-SWAP"], {"id": "x"}])
def test_a_text_field_takes_only_a_string(value: Any) -> None:
    with pytest.raises(DataError, match=r"'mgnMode' has value .* expected a string"):
        parse_positions([position(mgnMode=value)])


def test_a_non_string_inst_id_is_named_as_unknown() -> None:
    with pytest.raises(DataError, match="'instId'") as caught:
        parse_positions([position(instId=12345)])
    assert caught.value.inst_id == "unknown"


@pytest.mark.parametrize(
    ("parse", "record", "field"),
    [
        (
            parse_instruments,
            {"instType": "SWAP", "instId": "XRP-USDT-SWAP", "ctVal": True},
            "ctVal",
        ),
        (
            parse_leverage_info,
            {"instId": "XRP-USDT-SWAP", "mgnMode": "cross", "lever": [5]},
            "lever",
        ),
        (
            parse_positions_history,
            {"instType": "SWAP", "instId": "XRP-USDT-SWAP", "cTime": "1", "uTime": "1", "type": 2},
            "type",
        ),
        (
            parse_fills,
            {"instId": "XRP-USDT-SWAP", "fillSz": "\u0661"},
            "fillSz",
        ),
    ],
)
def test_every_entity_refuses_wrong_types(parse: Any, record: dict[str, Any], field: str) -> None:
    with pytest.raises(DataError) as caught:
        parse([record])
    assert caught.value.field == field
    assert caught.value.inst_id == "XRP-USDT-SWAP"


def test_candle_members_are_strings_too() -> None:
    with pytest.raises(DataError, match="'c'") as caught:
        parse_candles([["1", "1", "1", "1", True]], inst_id="XRP-USDT-SWAP")
    assert caught.value.inst_id == "XRP-USDT-SWAP"


def test_an_empty_ct_mult_is_unknown_not_1() -> None:
    frame = parse_instruments([{"instType": "SWAP", "instId": "XRP-USDT-SWAP", "ctMult": ""}])
    assert pd.isna(frame["ctMult"].iloc[0])


@pytest.mark.parametrize(
    "ts",
    ["", "soon", "1_700_000_000_000", "\u0661\u0667\u0660\u0660", 1700000000000, True, "9" * 30],
)
def test_server_time_takes_epoch_ms_digits_only(ts: Any) -> None:
    with pytest.raises(DataError, match="public_time"):
        parse_server_time([{"ts": ts}])


def test_server_time() -> None:
    assert parse_server_time([{"ts": "1597026383085"}]) == 1597026383085


@pytest.mark.parametrize("acct_lv", [True, 2, "\u0662", "2.0", "two"])
def test_account_level_is_a_digit_string(acct_lv: Any) -> None:
    with pytest.raises(DataError, match="acctLv"):
        parse_account_config([{"acctLv": acct_lv, "posMode": "net_mode"}])


def test_account_pos_mode_must_be_text() -> None:
    with pytest.raises(DataError, match="posMode"):
        parse_account_config([{"acctLv": "2", "posMode": ["net_mode"]}])
    assert parse_account_config([{"acctLv": "2"}]).acct_lv == 2
