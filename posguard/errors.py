"""The one exception tree of posguard, and the retry predicate Prefect uses.

```
PosguardError
├── ExchangeError                   an OKX call failed (endpoint, account, HTTP status, code)
│   ├── TransientExchangeError      retrying later can help: 5xx, 50001/50013/50026, timeouts
│   │   ├── RateLimitedError        429, 50011, 50040, 50061
│   │   └── ExchangeTimeoutError    no answer in time (or 50004 on a read)
│   │       └── OutcomeUnknownError a write got no complete answer (timeout, reset, ...)
│   ├── ClockSkewError              50102: the client re-syncs its clock once, then gives up
│   ├── AuthError                   401 and 501xx credential/permission codes: fix the settings
│   ├── RejectedError               OKX understood and refused (51xxx, 59xxx, 4xx, unknown path)
│   └── MalformedResponseError      the body is not a usable OKX envelope: not JSON (or too
│                                   deep, or undecodable), no `code`, or a code-0 answer whose
│                                   `data` is not the documented array
├── DataError                       a value cannot be parsed (names field, value, instId)
├── RegistryError
│   └── ConflictError               a compare-and-set lost against a concurrent writer
└── ConfigError                     settings are missing or invalid
```

`is_retryable(exc)` is the single place that decides whether a retry can help; Prefect tasks
use it as their `retry_condition_fn`, and nothing else in posguard retries.
"""

from __future__ import annotations

from typing import Any


class PosguardError(Exception):
    """Base of every error posguard raises on purpose."""


class ExchangeError(PosguardError):
    """An OKX request failed. The message names the call, the account and what to do."""

    def __init__(
        self,
        message: str,
        *,
        endpoint: str = "",
        method: str = "GET",
        account: str | None = None,
        http_status: int | None = None,
        code: str | None = None,
        okx_msg: str | None = None,
        inst_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.endpoint = endpoint
        self.method = method
        self.account = account
        self.http_status = http_status
        self.code = code
        self.okx_msg = okx_msg
        self.inst_id = inst_id

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe summary for artifacts, events and replay output (never holds secrets)."""
        return {
            "error": type(self).__name__,
            "message": str(self),
            "endpoint": self.endpoint,
            "account": self.account,
            "http": self.http_status,
            "code": self.code,
            "instId": self.inst_id,
        }


class TransientExchangeError(ExchangeError):
    """The exchange is busy, down or slow; the same request may succeed later."""


class RateLimitedError(TransientExchangeError):
    """OKX refused the request for its rate: back off before the next one."""


class ExchangeTimeoutError(TransientExchangeError):
    """No (complete) answer in time; for writes the outcome is unknown."""


class OutcomeUnknownError(ExchangeTimeoutError):
    """A write (POST) got no complete answer: timed out, connection reset, body cut short.

    It may or may not have taken effect on the exchange, so it is never resent blindly: the
    caller reads the state back and records what it finds.
    """


class ClockSkewError(ExchangeError):
    """50102: the request timestamp was outside OKX's window even after a clock re-sync."""


class AuthError(ExchangeError):
    """The credentials, passphrase, environment or key permissions are wrong."""


class RejectedError(ExchangeError):
    """OKX understood the request and refused it (business rule, bad parameter, unknown path)."""


class MalformedResponseError(ExchangeError):
    """The response body is not a usable OKX envelope.

    Not JSON, not decodable, no `code`, or code "0" without the `data` array OKX documents for
    every endpoint posguard calls. Such an answer says nothing about the account: a cycle that
    gets one has not observed it (never "no positions"), and a write that gets one has an
    unknown outcome.
    """


class DataError(PosguardError):
    """A value in an OKX payload (or a file) cannot be turned into what posguard needs."""

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        value: object = None,
        inst_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.field = field
        self.value = value
        self.inst_id = inst_id


class RegistryError(PosguardError):
    """The position registry cannot be read or written."""


class ConflictError(RegistryError):
    """A compare-and-set write lost: someone changed the row since it was read."""


class ConfigError(PosguardError):
    """posguard's settings are missing or invalid."""


def is_retryable(exc: BaseException) -> bool:
    """Whether retrying the same call can help, by error class, HTTP status and OKX code.

    Reads are safe to repeat after a timeout; a write that timed out (or got 50004) has an
    unknown outcome, so it is not retried blindly: the caller re-reads state first.
    """
    if isinstance(exc, ExchangeTimeoutError):
        return exc.method == "GET"
    if isinstance(exc, TransientExchangeError):
        return True
    if isinstance(exc, ClockSkewError):
        # The client already re-synced once; a later attempt re-syncs again.
        return True
    if isinstance(exc, ExchangeError) and not isinstance(
        exc, AuthError | RejectedError | MalformedResponseError
    ):
        if exc.http_status is not None and exc.http_status >= 500:
            return True
        # The code table of the OKX edge is the one place that says which codes are transient
        # (imported here: it builds on these classes).
        from posguard.okx.codes import RETRYABLE_CODES

        return exc.code in RETRYABLE_CODES
    return False
