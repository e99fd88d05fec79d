"""OKX error codes posguard knows, with the error class each becomes and what to do about it.

Source: shared/docs/okx-facts.md section 1.4 (the OKX error-code pages, with ccxt's mapping).
A code not listed here is a `RejectedError` (not retried): guessing "transient" for an unknown
code could hammer the exchange with a request it will never accept.
"""

from __future__ import annotations

from dataclasses import dataclass

from posguard.errors import (
    AuthError,
    ClockSkewError,
    ExchangeError,
    ExchangeTimeoutError,
    RateLimitedError,
    RejectedError,
    TransientExchangeError,
)


@dataclass(frozen=True)
class CodeInfo:
    error: type[ExchangeError]
    remedy: str
    # set-leverage refused the change for a reason of the account (orders, margin, limits):
    # an outcome recorded on the plan with its reason, not an error, and never retried.
    leverage_refusal: bool = False


_RETRY_LATER = "posguard retries it with backoff; if it persists, check OKX's status page"
_CHECK_KEY = (
    "check the API key, secret and passphrase of this account in posguard's settings, "
    "and that the key belongs to the configured environment (demo or production)"
)

OKX_CODES: dict[str, CodeInfo] = {
    "1": CodeInfo(RejectedError, "the operation failed; see the per-item sCode/sMsg"),
    "2": CodeInfo(RejectedError, "the bulk operation partially succeeded; see sCode/sMsg"),
    "50001": CodeInfo(TransientExchangeError, _RETRY_LATER),
    "50004": CodeInfo(
        ExchangeTimeoutError,
        "the outcome is unknown: reads are retried, writes are re-read before any retry",
    ),
    "50011": CodeInfo(RateLimitedError, "posguard backs off; lower the schedule's frequency"),
    "50013": CodeInfo(TransientExchangeError, _RETRY_LATER),
    "50014": CodeInfo(RejectedError, "a required parameter was empty: this is a posguard bug"),
    "50026": CodeInfo(TransientExchangeError, _RETRY_LATER),
    "50030": CodeInfo(AuthError, "give the API key the permission this endpoint needs"),
    "50040": CodeInfo(RateLimitedError, "posguard backs off; lower the schedule's frequency"),
    "50061": CodeInfo(RateLimitedError, "the sub-account order rate limit was reached"),
    "50101": CodeInfo(
        AuthError,
        "the key does not match the environment: set demo = true for a demo-trading key, "
        "false for a production key",
    ),
    "50102": CodeInfo(ClockSkewError, "check the machine's clock (NTP); posguard re-syncs once"),
    "50103": CodeInfo(AuthError, _CHECK_KEY),
    "50104": CodeInfo(AuthError, _CHECK_KEY),
    "50105": CodeInfo(AuthError, "the passphrase is wrong: " + _CHECK_KEY),
    "50106": CodeInfo(AuthError, _CHECK_KEY),
    "50107": CodeInfo(AuthError, _CHECK_KEY),
    "50110": CodeInfo(AuthError, "add this machine's IP address to the API key's whitelist"),
    "50111": CodeInfo(AuthError, "the API key is unknown: " + _CHECK_KEY),
    "50112": CodeInfo(AuthError, "the timestamp format was refused: this is a posguard bug"),
    "50113": CodeInfo(
        AuthError, "the signature was refused (usually a wrong secret): " + _CHECK_KEY
    ),
    "50114": CodeInfo(AuthError, _CHECK_KEY),
    "51000": CodeInfo(RejectedError, "a parameter was refused; see the message"),
    "51001": CodeInfo(RejectedError, "the instrument does not exist (delisted or renamed?)"),
    "51010": CodeInfo(RejectedError, "the account mode (acctLv) does not support this endpoint"),
    "58001": CodeInfo(RejectedError, "the trade password is wrong"),
    "59000": CodeInfo(
        RejectedError,
        "close open positions and orders before changing settings",
        leverage_refusal=True,
    ),
    "59100": CodeInfo(
        RejectedError, "open positions block this leverage change", leverage_refusal=True
    ),
    "59101": CodeInfo(
        RejectedError, "cancel pending isolated-margin orders, or skip", leverage_refusal=True
    ),
    "59102": CodeInfo(
        RejectedError, "the leverage exceeds the maximum: clamp it", leverage_refusal=True
    ),
    "59103": CodeInfo(
        RejectedError, "margin is insufficient for a lower leverage", leverage_refusal=True
    ),
    "59104": CodeInfo(
        RejectedError, "the position tier caps this leverage: lower it", leverage_refusal=True
    ),
    "59105": CodeInfo(RejectedError, "the leverage is below the minimum", leverage_refusal=True),
    "59106": CodeInfo(
        RejectedError, "the order tier's maximum margin was exceeded", leverage_refusal=True
    ),
    "59107": CodeInfo(
        RejectedError, "cancel pending cross-margin orders, or skip", leverage_refusal=True
    ),
    "59108": CodeInfo(
        RejectedError, "leverage too low for the margin: raise it", leverage_refusal=True
    ),
    "59109": CodeInfo(
        RejectedError, "equity is below the margin needed after the change", leverage_refusal=True
    ),
    "59111": CodeInfo(
        RejectedError,
        "portfolio-margin accounts cannot query or set this leverage",
        leverage_refusal=True,
    ),
    "59112": CodeInfo(
        RejectedError,
        "cancel pending orders before changing leverage, or skip",
        leverage_refusal=True,
    ),
    "59216": CodeInfo(RejectedError, "the position does not exist"),
    # The private WebSocket's answers to a login or a subscription
    # (okx-ws-and-prefect-triggers.md 1.3).
    "60004": CodeInfo(ClockSkewError, "the login timestamp was refused: check the clock (NTP)"),
    "60005": CodeInfo(AuthError, "the API key is unknown to OKX: " + _CHECK_KEY),
    "60006": CodeInfo(
        ClockSkewError, "the login expired on arrival: the clock is off by over 30 s (NTP)"
    ),
    "60007": CodeInfo(AuthError, "the signature was refused: check secret_key of this account"),
    "60009": CodeInfo(AuthError, "OKX refused the login: " + _CHECK_KEY),
    "60011": CodeInfo(RejectedError, "a subscription before the login: this is a posguard bug"),
    "60012": CodeInfo(RejectedError, "the request was invalid: this is a posguard bug"),
    "60013": CodeInfo(RejectedError, "the subscription's arguments were refused"),
    "60014": CodeInfo(
        RateLimitedError, "over 480 logins and subscriptions per connection per hour"
    ),
    "60018": CodeInfo(RejectedError, "no such channel at this URL: check ws_url (/ws/v5/private)"),
    "60024": CodeInfo(AuthError, "the passphrase is wrong: " + _CHECK_KEY),
    "60026": CodeInfo(AuthError, _CHECK_KEY),
    "60031": CodeInfo(RejectedError, "a second login on one connection: this is a posguard bug"),
    "60032": CodeInfo(AuthError, "the API key does not exist in this region: check region"),
    "63999": CodeInfo(TransientExchangeError, _RETRY_LATER),
    "64008": CodeInfo(
        TransientExchangeError, "OKX closes the connection for a service upgrade: reconnect"
    ),
}


# Codes whose failure says nothing about the request itself: the same request can succeed
# later. (50004, a timeout, is not among them: a write's outcome is then unknown.)
RETRYABLE_CODES = frozenset(
    code
    for code, info in OKX_CODES.items()
    if issubclass(info.error, TransientExchangeError)
    and not issubclass(info.error, ExchangeTimeoutError)
)
LEVERAGE_REFUSALS = frozenset(code for code, info in OKX_CODES.items() if info.leverage_refusal)


def code_info(code: str | None) -> CodeInfo:
    """What a code means; unknown codes are refusals, never silently retried."""
    if code is not None and code in OKX_CODES:
        return OKX_CODES[code]
    return CodeInfo(RejectedError, "an OKX error posguard does not know; see the message")
