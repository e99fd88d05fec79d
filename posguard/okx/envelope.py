"""Checking OKX's response envelope: `code != "0"` is an error even on HTTP 200.

Everything the exchange can answer becomes either the `data` array or one `ExchangeError`
subclass whose message names the call, the account, OKX's code and message, and the remedy.
"""

from __future__ import annotations

import json
import reprlib
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
    if not isinstance(data, list):
        # OKX documents an array for every endpoint posguard calls: anything else is not
        # "no records", it is an answer that says nothing (a cycle has not observed the account).
        meaning = (
            "whether the change was made is unknown: read the state back before deciding"
            if ctx.method == "POST"
            else "the answer says nothing, so it counts as a failed call"
        )
        raise MalformedResponseError(
            f"{ctx.describe()} answered code 0 {_describe_data(payload)}, not the 'data' array "
            f"OKX documents; {meaning}. If it persists, check base_url in settings (another "
            f"service may be answering)",
            endpoint=ctx.path,
            method=ctx.method,
            account=ctx.account,
            http_status=http_status,
            code=code,
        )
    # A code-0 answer of a write endpoint can still refuse single items.
    _raise_item_errors(data, ctx, http_status)
    return data


def _why_unreadable(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} at character {exc.pos}"
    if isinstance(exc, UnicodeDecodeError):
        return f"not UTF-8 at byte {exc.start}"
    return str(exc).split(";")[0]


def _describe_data(payload: dict[str, Any]) -> str:
    if "data" not in payload:
        return "without a 'data' member"
    data = payload["data"]
    if data is None:
        return "with 'data' null"
    kind = {dict: "an object", str: "a string", bool: "a boolean"}.get(type(data), "a number")
    # reprlib: bounded however large or deep the value is.
    return f"with 'data' {kind} ({reprlib.repr(data)})"


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
    except (ValueError, RecursionError) as exc:
        # ValueError covers JSONDecodeError, UnicodeDecodeError and integers too long for
        # Python to read; RecursionError is JSON nested deeper than the interpreter's stack.
        if http_status == 429:
            raise error_for(ctx, http_status=429, code=None, okx_msg="Too Many Requests") from exc
        if http_status >= 500:
            raise error_for(ctx, http_status=http_status, code=None, okx_msg=_snippet(raw)) from exc
        raise MalformedResponseError(
            f"{ctx.describe()} answered HTTP {http_status} with a body that is not JSON "
            f"posguard can read ({_why_unreadable(exc)}; starts {_snippet(raw)!r}); "
            f"if it persists, check base_url in settings",
            endpoint=ctx.path,
            method=ctx.method,
            account=ctx.account,
            http_status=http_status,
        ) from exc
    return unwrap(payload, ctx, http_status=http_status)
