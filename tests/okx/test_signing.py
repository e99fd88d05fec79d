"""Signing against fixed vectors computed outside posguard (openssl dgst -sha256 -hmac)."""

from __future__ import annotations

import base64
import hashlib
import hmac

from posguard.okx.signing import okx_timestamp, prehash, sign, verify

SECRET = "posguard-test-secret"
TIMESTAMP = "2020-12-08T09:08:57.715Z"


def test_get_vector_matches_openssl() -> None:
    # printf '%s' '2020-12-08T09:08:57.715ZGET/api/v5/account/balance?ccy=BTC' |
    #   openssl dgst -sha256 -hmac posguard-test-secret -binary | base64
    expected = "D5GpwrHSW2ln6qlTY8o0M5IfjaAEeGBL4zQZYOaXx3g="
    assert sign(SECRET, TIMESTAMP, "GET", "/api/v5/account/balance?ccy=BTC", "") == expected


def test_post_vector_signs_the_body_byte_for_byte() -> None:
    body = '{"lever":"5","mgnMode":"cross","instId":"XRP-USDT-SWAP"}'
    expected = "C3H0SvOxjHka3XtAcYjvwO/8g3ED/MnrgvVR0M02fnw="
    assert sign(SECRET, TIMESTAMP, "post", "/api/v5/account/set-leverage", body) == expected
    # A different spacing of the same JSON is a different signature.
    spaced = body.replace(",", ", ")
    assert sign(SECRET, TIMESTAMP, "POST", "/api/v5/account/set-leverage", spaced) != expected


def test_sign_equals_an_independent_hmac() -> None:
    message = TIMESTAMP + "GET" + "/api/v5/account/positions?instId=XRP-USDT-SWAP"
    independent = base64.b64encode(
        hmac.new(SECRET.encode(), message.encode(), hashlib.sha256).digest()
    ).decode()
    path = "/api/v5/account/positions?instId=XRP-USDT-SWAP"
    assert sign(SECRET, TIMESTAMP, "GET", path, "") == independent
    assert verify(SECRET, independent, TIMESTAMP, "GET", path, "")
    assert not verify("other-secret", independent, TIMESTAMP, "GET", path, "")


def test_prehash_is_plain_concatenation_with_upper_method() -> None:
    assert prehash("T", "get", "/p?a=1", "") == "TGET/p?a=1"


def test_timestamp_is_iso8601_utc_with_milliseconds() -> None:
    assert okx_timestamp(1607418537715) == TIMESTAMP
    assert okx_timestamp(1607418537005).endswith(".005Z")
    assert okx_timestamp(0) == "1970-01-01T00:00:00.000Z"
