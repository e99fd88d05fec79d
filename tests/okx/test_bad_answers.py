"""Answers OKX never documents stay inside the error tree: no data array, bad time, bad bodies."""

from __future__ import annotations

import gzip
import json
from typing import Any

import httpx
import pytest

from posguard.errors import MalformedResponseError, PosguardError, is_retryable
from posguard.okx.envelope import CallContext, decode
from tests.helpers import FakeOkx, answer, envelope

POSITIONS = "/api/v5/account/positions"
SET_LEVERAGE = "/api/v5/account/set-leverage"
PUBLIC_TIME = "/api/v5/public/time"

# Code "0" answers whose `data` is not the array OKX documents.
NO_DATA_ARRAY: list[tuple[str, dict[str, Any]]] = [
    ("absent", {"code": "0", "msg": ""}),
    ("null", {"code": "0", "msg": "", "data": None}),
    ("object", {"code": "0", "msg": "", "data": {}}),
    ("string", {"code": "0", "msg": "", "data": ""}),
    ("number", {"code": "0", "msg": "", "data": 0}),
]


@pytest.mark.parametrize(("shape", "payload"), NO_DATA_ARRAY, ids=[s for s, _ in NO_DATA_ARRAY])
def test_code_0_without_a_data_array_is_malformed_not_no_positions(
    shape: str, payload: dict[str, Any]
) -> None:
    fake = FakeOkx()
    fake.routes[POSITIONS] = lambda _r: answer(payload)
    with fake.client() as client, pytest.raises(MalformedResponseError) as caught:
        client.positions()
    error = caught.value
    assert error.endpoint == POSITIONS
    assert error.account == "main"
    assert POSITIONS in str(error)
    assert "'main'" in str(error)
    assert "failed call" in str(error)
    # Retried exactly like every other malformed answer (by the one predicate).
    assert is_retryable(error) is is_retryable(MalformedResponseError("x"))


def test_an_empty_data_array_is_still_no_records() -> None:
    fake = FakeOkx()
    fake.routes[POSITIONS] = lambda _r: answer(envelope([]))
    with fake.client() as client:
        assert client.positions() == []


@pytest.mark.parametrize(
    "payload",
    [{"code": "0", "msg": ""}, {"code": "0", "msg": "", "data": {}}, envelope([])],
    ids=["absent", "object", "empty"],
)
def test_set_leverage_without_its_result_item_is_not_a_success(payload: dict[str, Any]) -> None:
    fake = FakeOkx()
    fake.routes[SET_LEVERAGE] = lambda _r: answer(payload)
    with fake.client() as client, pytest.raises(MalformedResponseError) as caught:
        client.set_leverage(lever="3", mgn_mode="cross", inst_id="XRP-USDT-SWAP")
    assert caught.value.endpoint == SET_LEVERAGE
    assert caught.value.method == "POST"
    assert not is_retryable(caught.value)  # a write whose outcome is unknown is not resent


@pytest.mark.parametrize(
    "payload",
    [
        envelope([]),
        envelope([{}]),
        envelope(["1700000000000"]),
        envelope([{"ts": ""}]),
        envelope([{"ts": "soon"}]),
        envelope([{"ts": "1.7e12"}]),
        envelope([{"ts": "1_700_000_000_000"}]),
        envelope([{"ts": "\u0661\u0667" + "\u0660" * 11}]),  # Arabic-Indic digits
        envelope([{"ts": 1700000000000}]),
        envelope([{"ts": "9" * 30}]),
        {"code": "0", "msg": ""},
    ],
    ids=[
        "no-record",
        "no-ts",
        "not-a-record",
        "empty",
        "word",
        "exponent",
        "underscores",
        "arabic-indic",
        "json-number",
        "huge",
        "no-data",
    ],
)
def test_a_malformed_public_time_answer_is_a_malformed_response(payload: Any) -> None:
    fake = FakeOkx()
    fake.routes[PUBLIC_TIME] = lambda _r: answer(payload)
    fake.routes[POSITIONS] = lambda _r: answer(envelope([]))
    with fake.client() as client:
        with pytest.raises(MalformedResponseError, match="public/time"):
            client.server_time_ms()
        # A private call syncs the clock first: the same answer fails it the same way.
        with pytest.raises(MalformedResponseError, match="public/time"):
            client.positions()
    assert not fake.requests_to(POSITIONS)


def test_a_body_whose_gzip_does_not_decode_is_malformed() -> None:
    fake = FakeOkx()
    fake.routes[POSITIONS] = lambda _r: httpx.Response(
        200, content=b"this is not gzip", headers={"Content-Encoding": "gzip"}
    )
    with fake.client() as client, pytest.raises(MalformedResponseError) as caught:
        client.positions()
    assert "cannot be decoded" in str(caught.value)
    assert isinstance(caught.value.__cause__, httpx.DecodingError)


def test_a_good_gzip_body_is_read() -> None:
    fake = FakeOkx()
    body = gzip.compress(json.dumps(envelope([])).encode())
    fake.routes[POSITIONS] = lambda _r: httpx.Response(
        200, content=body, headers={"Content-Encoding": "gzip"}
    )
    with fake.client() as client:
        assert client.positions() == []


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (b'{"code":"0","data":' + b"[" * 100_000 + b"]" * 100_000 + b"}", "nested too deeply"),
        (b'{"code":"0","data":[' + b"7" * 5000 + b"]}", "Exceeds the limit"),
        (b'{"code":"0","data":[]}\xff\xfe', "not JSON"),
    ],
    ids=["deep", "long-integer", "bad-utf8"],
)
def test_bodies_json_cannot_read_stay_in_the_error_tree(raw: bytes, why: str) -> None:
    with pytest.raises(MalformedResponseError, match=why) as caught:
        decode(raw, CallContext("GET", POSITIONS, "main"), http_status=200)
    assert isinstance(caught.value, PosguardError)
    assert len(str(caught.value)) < 600  # a snippet of the body, never all of it
