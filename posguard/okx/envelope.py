"""Checking OKX's response envelope: `code != "0"` is an error even on HTTP 200.

Everything the exchange can answer becomes either the `data` array or one `ExchangeError`
subclass whose message names the call, the account, OKX's code and message, and the remedy.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from posguard.errors import (
    AuthError,
    ClockSkewError,
    ExchangeError,
    MalformedResponseError,
    RateLimitedError,
    RejectedError,
    TransientExchangeError,
)
from posguard.okx.codes import code_info


@dataclass(frozen=True)
class CallContext:
    """What a request was, for error messages (never credentials)."""

    method: str
    path: str
    account: str | None = None

    def describe(self) -> str:
        if self.method == "FILE":
            return f"the OKX answer saved in {self.path}"
        who = f" for account {self.account!r}" if self.account else ""
        return f"OKX {self.method} {self.path}{who}"


def _snippet(raw: bytes | str, limit: int = 120) -> str:
    text = raw[:limit] if isinstance(raw, str) else raw[:limit].decode("utf-8", errors="replace")
    return text + ("..." if len(raw) > limit else "")


def error_for(
    ctx: CallContext,
    *,
    http_status: int | None,
    code: str | None,
    okx_msg: str | None,
    inst_id: str | None = None,
) -> ExchangeError:
    """The error an answer stands for, chosen by HTTP status first, then OKX code."""
    info = code_info(code)
    error_cls: type[ExchangeError] = info.error
    remedy = info.remedy
    if http_status == 429:
        error_cls, remedy = RateLimitedError, code_info("50011").remedy
    elif http_status is not None and http_status >= 500 and error_cls is RejectedError:
        error_cls, remedy = TransientExchangeError, code_info("50001").remedy
    elif http_status == 401 and error_cls not in (AuthError, ClockSkewError):
        error_cls, remedy = AuthError, code_info("50111").remedy
    elif http_status == 404 and code in (None, "404"):
        remedy = "the endpoint does not exist on this host: check base_url/region in settings"
    what = f"{code} {okx_msg!r}" if code else repr(okx_msg or "no OKX code")
    # A saved answer has no status to report: name only what was seen.
    status = f", HTTP {http_status}" if http_status is not None else ""
    item = f" (instId {inst_id})" if inst_id else ""
    message = f"{ctx.describe()} failed{item}: {what}{status}; {remedy}"
    return error_cls(
        message,
        endpoint=ctx.path,
        method=ctx.method,
        account=ctx.account,
        http_status=http_status,
        code=code,
        okx_msg=okx_msg,
        inst_id=inst_id,
    )


def _as_code(value: object) -> str | None:
    # The gateway's 404 carries a numeric code; OKX's own envelopes carry strings.
    if value is None:
        return None
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, int | str):
        return str(value)
    return None


def unwrap(payload: Any, ctx: CallContext, *, http_status: int | None = 200) -> list[Any]:
    """The `data` array of an envelope, or the error it carries (`http_status` None: the
    envelope was read from a file, with no HTTP status to judge or report)."""
    if not isinstance(payload, dict) or "code" not in payload:
        raise MalformedResponseError(
            f"{ctx.describe()} answered{_status_text(http_status)} with JSON that is not an OKX "
            f"envelope "
            f"(no 'code' member); if it persists, check base_url in settings",
            endpoint=ctx.path,
            method=ctx.method,
            account=ctx.account,
            http_status=http_status,
        )
    code = _as_code(payload.get("code"))
    msg = payload.get("msg")
    okx_msg = msg if isinstance(msg, str) else None
    data = payload.get("data")
    if code != "0" or (http_status is not None and http_status >= 400):
        # Write endpoints put the real reason per item (code "1"/"2" with sCode/sMsg).
        if isinstance(data, list):
            _raise_item_errors(data, ctx, http_status)
        raise error_for(ctx, http_status=http_status, code=code, okx_msg=okx_msg)
    if data is None:
        data = []
    if not isinstance(data, list):
        raise MalformedResponseError(
            f"{ctx.describe()} answered code 0 with 'data' of type {type(data).__name__}, "
            f"not an array; this endpoint may have changed",
            endpoint=ctx.path,
            method=ctx.method,
            account=ctx.account,
            http_status=http_status,
            code=code,
        )
    # A code-0 answer of a write endpoint can still refuse single items.
    _raise_item_errors(data, ctx, http_status)
    return data


def _status_text(http_status: int | None) -> str:
    return f" HTTP {http_status}" if http_status is not None else ""


def _raise_item_errors(data: list[Any], ctx: CallContext, http_status: int | None) -> None:
    for item in data:
        if isinstance(item, dict) and item.get("sCode") not in (None, "", "0"):
            raise error_for(
                ctx,
                http_status=http_status,
                code=_as_code(item.get("sCode")),
                okx_msg=str(item.get("sMsg") or ""),
                inst_id=item.get("instId") or None,
            )


def _trimmer(keep: Collection[str]) -> Callable[[dict[str, Any]], dict[str, Any]]:
    fields = tuple(keep)

    def trim(obj: dict[str, Any]) -> dict[str, Any]:
        # Records carry instId; the envelope and error objects do not and stay whole.
        if "instId" not in obj:
            return obj
        return {k: obj[k] for k in fields if k in obj}

    return trim


def decode(
    raw: bytes | str, ctx: CallContext, *, http_status: int, keep: Collection[str] | None = None
) -> list[Any]:
    """Parse a response body and unwrap its envelope (records trimmed to `keep`, if given)."""
    try:
        payload = json.loads(raw, object_hook=_trimmer(keep) if keep is not None else None)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        if http_status == 429:
            raise error_for(ctx, http_status=429, code=None, okx_msg="Too Many Requests") from exc
        if http_status >= 500:
            raise error_for(ctx, http_status=http_status, code=None, okx_msg=_snippet(raw)) from exc
        raise MalformedResponseError(
            f"{ctx.describe()} answered HTTP {http_status} with a body that is not JSON "
            f"({exc.__class__.__name__} at {getattr(exc, 'pos', '?')}; starts {_snippet(raw)!r}); "
            f"if it persists, check base_url in settings",
            endpoint=ctx.path,
            method=ctx.method,
            account=ctx.account,
            http_status=http_status,
        ) from exc
    return unwrap(payload, ctx, http_status=http_status)
