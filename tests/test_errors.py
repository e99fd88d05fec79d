"""The retry predicate, table-tested over every code in okx-facts.md section 1.4."""

from __future__ import annotations

import math

import pytest

from posguard.errors import (
    AuthError,
    ClockSkewError,
    ConfigError,
    DataError,
    ExchangeError,
    ExchangeTimeoutError,
    RateLimitedError,
    RejectedError,
    TransientExchangeError,
    is_retryable,
)
from posguard.okx.codes import OKX_CODES
from posguard.okx.envelope import CallContext, error_for

CTX = CallContext("GET", "/api/v5/account/positions", "main")

# (code, HTTP status OKX documents, error class, retryable): one row per code of the table.
TABLE = [
    ("1", 200, RejectedError, False),
    ("2", 200, RejectedError, False),
    ("50001", 503, TransientExchangeError, True),
    ("50004", 400, ExchangeTimeoutError, True),  # a read; writes: see the test below
    ("50011", 200, RateLimitedError, True),
    ("50011", 429, RateLimitedError, True),
    ("50013", 429, RateLimitedError, True),
    ("50014", 400, RejectedError, False),
    ("50026", 500, TransientExchangeError, True),
    ("50030", 200, AuthError, False),
    ("50040", 200, RateLimitedError, True),
    ("50061", 200, RateLimitedError, True),
    ("50101", 401, AuthError, False),
    ("50102", 401, ClockSkewError, True),
    ("50103", 401, AuthError, False),
    ("50104", 401, AuthError, False),
    ("50105", 401, AuthError, False),
    ("50106", 401, AuthError, False),
    ("50107", 401, AuthError, False),
    ("50110", 401, AuthError, False),
    ("50111", 401, AuthError, False),
    ("50112", 401, AuthError, False),
    ("50113", 401, AuthError, False),
    ("50114", 401, AuthError, False),
    ("51000", 400, RejectedError, False),
    ("51001", 200, RejectedError, False),
    ("51010", 200, RejectedError, False),
    ("58001", 200, RejectedError, False),
    ("59000", 200, RejectedError, False),
    ("59100", 200, RejectedError, False),
    ("59101", 200, RejectedError, False),
    ("59102", 200, RejectedError, False),
    ("59103", 200, RejectedError, False),
    ("59104", 200, RejectedError, False),
    ("59105", 400, RejectedError, False),
    ("59106", 200, RejectedError, False),
    ("59107", 200, RejectedError, False),
    ("59108", 200, RejectedError, False),
    ("59109", 200, RejectedError, False),
    ("59111", 200, RejectedError, False),
    ("59112", 200, RejectedError, False),
    ("59216", 200, RejectedError, False),
    # The private WebSocket's login and subscription answers.
    ("60004", 200, ClockSkewError, True),
    ("60005", 200, AuthError, False),
    ("60006", 200, ClockSkewError, True),
    ("60007", 200, AuthError, False),
    ("60009", 200, AuthError, False),
    ("60011", 200, RejectedError, False),
    ("60012", 200, RejectedError, False),
    ("60013", 200, RejectedError, False),
    ("60014", 200, RateLimitedError, True),
    ("60018", 200, RejectedError, False),
    ("60024", 200, AuthError, False),
    ("60026", 200, AuthError, False),
    ("60031", 200, RejectedError, False),
    ("60032", 200, AuthError, False),
    ("63999", 200, TransientExchangeError, True),
    ("64008", 200, TransientExchangeError, True),
]


@pytest.mark.parametrize(("code", "status", "error", "retryable"), TABLE)
def test_every_documented_code(code: str, status: int, error: type, retryable: bool) -> None:
    exc = error_for(CTX, http_status=status, code=code, okx_msg="from the docs")
    assert type(exc) is error
    assert is_retryable(exc) is retryable
    assert code in str(exc)


def test_the_table_covers_every_known_code() -> None:
    assert {row[0] for row in TABLE} == set(OKX_CODES)


def test_unknown_codes_are_not_retried() -> None:
    exc = error_for(CTX, http_status=200, code="99999", okx_msg="new")
    assert isinstance(exc, RejectedError)
    assert not is_retryable(exc)


def test_50004_on_a_write_is_not_retried_blindly() -> None:
    ctx = CallContext("POST", "/api/v5/account/set-leverage", "main")
    exc = error_for(ctx, http_status=400, code="50004", okx_msg="timeout")
    assert isinstance(exc, ExchangeTimeoutError)
    assert not is_retryable(exc)


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_any_5xx_is_retryable(status: int) -> None:
    assert is_retryable(error_for(CTX, http_status=status, code=None, okx_msg=None))


def test_foreign_and_non_exchange_errors_are_not_retried() -> None:
    assert not is_retryable(ValueError("x"))
    assert not is_retryable(DataError("bad", field="lever", value=""))
    assert not is_retryable(ConfigError("no account"))
    assert not is_retryable(ExchangeError("plain", code="51000"))
    assert is_retryable(ExchangeError("plain", http_status=503))


@pytest.mark.parametrize("value", [None, "", math.nan])
def test_messages_never_raise_on_missing_values(value: object) -> None:
    ctx = CallContext("GET", "/api/v5/account/positions", value)  # type: ignore[arg-type]
    exc = error_for(ctx, http_status=None, code=value, okx_msg=value, inst_id=value)  # type: ignore[arg-type]
    assert "OKX GET /api/v5/account/positions" in str(exc)
    assert isinstance(exc.to_dict(), dict)
    data = DataError(f"field lever is {value!r}", field="lever", value=value, inst_id=None)
    assert "lever" in str(data)


def test_a_bare_exchange_error_is_retried_by_the_code_table() -> None:
    """An ExchangeError built without the table's class (a code read from a per-item sCode)
    still retries exactly the codes the table calls transient."""
    from posguard.errors import ExchangeError
    from posguard.okx.codes import LEVERAGE_REFUSALS, RETRYABLE_CODES

    for code in OKX_CODES:
        bare = ExchangeError("refused", endpoint=CTX.path, code=code)
        assert is_retryable(bare) is (code in RETRYABLE_CODES), code
    assert "50004" not in RETRYABLE_CODES
    assert "50011" in RETRYABLE_CODES
    assert {c[:2] for c in LEVERAGE_REFUSALS} == {"59"}
