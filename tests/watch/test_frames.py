"""OKX's private WebSocket messages: login signing and the frames posguard reads."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest

from posguard.okx.stream import (
    BalancePositionPush,
    FrameError,
    LoggedIn,
    Notice,
    Other,
    Pong,
    PositionsPush,
    Refused,
    Subscribed,
    login_message,
    parse_frame,
)


def test_login_signs_timestamp_get_and_the_verify_path() -> None:
    message = json.loads(login_message("key", "secret", "phrase", 1538054050))
    (arg,) = message["args"]
    expected = base64.b64encode(
        hmac.new(b"secret", b"1538054050GET/users/self/verify", hashlib.sha256).digest()
    ).decode()
    assert message["op"] == "login"
    assert arg == {
        "apiKey": "key",
        "passphrase": "phrase",
        "timestamp": "1538054050",
        "sign": expected,
    }


def test_the_documented_answers_parse() -> None:
    assert parse_frame('{"event":"login","code":"0","msg":"","connId":"a4d3ae55"}') == LoggedIn(
        "a4d3ae55"
    )
    refused = parse_frame('{"event":"error","code":"60009","msg":"Login failed.","connId":"x"}')
    assert refused == Refused("60009", "Login failed.")
    assert isinstance(refused, Refused)
    assert refused.credentials
    assert "check" in refused.advice()
    assert parse_frame("pong") == Pong()
    ack = '{"id":"1512","event":"subscribe","arg":{"channel":"positions","instType":"ANY"}}'
    assert parse_frame(ack) == Subscribed("positions")
    count = '{"event":"channel-conn-count","channel":"positions","connCount":"1","connId":"x"}'
    assert isinstance(parse_frame(count), Other)
    notice = '{"event":"notice","code":"64008","msg":"The connection will soon be closed"}'
    assert parse_frame(notice) == Notice("64008", "The connection will soon be closed")


def test_positions_pushes_keep_their_paging_and_kind() -> None:
    # The real capture of ccxt#21565: the first push when flat has no eventType.
    flat = '{"arg":{"channel":"positions","instType":"ANY","uid":"5"},"data":[]}'
    assert parse_frame(flat) == PositionsPush("snapshot", [], 1, True)
    page = json.dumps(
        {
            "arg": {"channel": "positions", "instType": "ANY"},
            "eventType": "snapshot",
            "curPage": 2,
            "lastPage": False,
            "data": [{"instId": "XRP-USDT-SWAP", "pos": "1"}],
        }
    )
    assert parse_frame(page) == PositionsPush(
        "snapshot", [{"instId": "XRP-USDT-SWAP", "pos": "1"}], 2, False
    )


def test_balance_and_position_names_its_cause() -> None:
    push = json.dumps(
        {
            "arg": {"channel": "balance_and_position", "uid": "5"},
            "data": [
                {
                    "pTime": "1700",
                    "eventType": "liquidation",
                    "balData": [],
                    "posData": [{"instId": "XRP-USDT-SWAP", "pos": "0"}],
                    "trades": [],
                }
            ],
        }
    )
    assert parse_frame(push) == BalancePositionPush(
        "liquidation", [{"instId": "XRP-USDT-SWAP", "pos": "0"}], "1700"
    )


@pytest.mark.parametrize(
    "text",
    [
        "{not json",
        "[1, 2]",
        '{"arg":{"channel":"positions"},"data":{"pos":"1"}}',
        '{"arg":{"channel":"positions"},"data":["x"]}',
        '{"arg":{"channel":"balance_and_position"},"data":[{"posData":"x"}]}',
    ],
)
def test_frames_that_are_not_what_okx_documents_are_refused_with_a_reason(text: str) -> None:
    with pytest.raises(FrameError):
        parse_frame(text)


def test_a_refusal_is_said_without_repeating_the_request() -> None:
    login = '{"op":"login","args":[{"apiKey":"the-key","passphrase":"the-phrase"}]}'
    echoed = Refused("60012", f"Invalid request: {login}")
    assert "the-key" not in echoed.safe_msg
    assert "the-phrase" not in echoed.safe_msg
    missing = Refused("60018", "Wrong URL or channel:positions,instId:X doesn't exist")
    assert missing.safe_msg == missing.msg  # a colon alone hides nothing
