"""OKX v5 private WebSocket, as messages: login, subscribe, and the frames the venue sends
(okx-ws-and-prefect-triggers.md part 1). Pure: the connection lives in posguard.watch.

Login signs `timestamp + "GET" + "/users/self/verify"` with the account's secret, the
timestamp in epoch seconds (OKX refuses it 30 s after that moment: 60006). Keepalive is the
text frame "ping", answered by the text "pong"; OKX closes a connection that sent nothing for
30 s (close code 4004).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from posguard.errors import AuthError
from posguard.okx.codes import code_info
from posguard.okx.signing import sign

PRIVATE_PATH = "/ws/v5/private"
PUBLIC_PATH = "/ws/v5/public"
VERIFY_PATH = "/users/self/verify"
PING = "ping"
PONG = "pong"
# A login timestamp older than this is refused (60006), as a REST request's is (50102).
LOGIN_WINDOW_MS = 30_000
# New connections OKX accepts per second per IP.
CONNECTIONS_PER_SECOND = 3
# Login, subscribe and unsubscribe requests per connection per hour (then 60014).
OPS_PER_HOUR = 480
# Connections per channel per account; the next is acknowledged, then told this event.
CONNECTIONS_PER_CHANNEL = 30
CONN_COUNT_ERROR = "channel-conn-count-error"
# The venue's notice that it will close the connection for a service upgrade.
UPGRADE_NOTICE = "64008"


def login_message(api_key: str, secret_key: str, passphrase: str, epoch_seconds: int) -> str:
    stamp = str(epoch_seconds)
    signature = sign(secret_key, stamp, "GET", VERIFY_PATH, "")
    arg = {"apiKey": api_key, "passphrase": passphrase, "timestamp": stamp, "sign": signature}
    return json.dumps({"op": "login", "args": [arg]})


def subscribe_message(request_id: str) -> str:
    """`positions` for every instrument type (events plus OKX's regular snapshot, which
    also tells a missed push) and `balance_and_position` (the only feed naming liquidation
    and ADL as such)."""
    args = [{"channel": "positions", "instType": "ANY"}, {"channel": "balance_and_position"}]
    return json.dumps({"id": request_id, "op": "subscribe", "args": args})


@dataclass(frozen=True)
class LoggedIn:
    conn_id: str


@dataclass(frozen=True)
class Subscribed:
    channel: str


@dataclass(frozen=True)
class Refused:
    """An `error` event (or a login answer with a code other than "0")."""

    code: str
    msg: str

    @property
    def credentials(self) -> bool:
        """A refusal of the key, secret or passphrase: reconnecting cannot mend it."""
        return issubclass(code_info(self.code).error, AuthError)

    @property
    def safe_msg(self) -> str:
        """The message fit for a log: OKX's "Invalid request: ..." repeats the request,
        which for a login holds the key and passphrase."""
        if self.msg.startswith("Invalid request"):
            return "Invalid request (the request is not repeated here)"
        return self.msg[:120]

    def advice(self) -> str:
        return code_info(self.code).remedy


@dataclass(frozen=True)
class Notice:
    code: str
    msg: str


@dataclass(frozen=True)
class PositionsPush:
    """A `positions` push: `snapshot` pages (curPage, lastPage) or an `event_update`."""

    event_type: str
    records: list[dict[str, Any]]
    page: int = 1
    last_page: bool = True


@dataclass(frozen=True)
class BalancePositionPush:
    """A `balance_and_position` push; `event_type` names the cause (filled, liquidation,
    adl, ...); `records` are its posData."""

    event_type: str
    records: list[dict[str, Any]]
    p_time: str | None = None


@dataclass(frozen=True)
class Pong:
    pass


@dataclass(frozen=True)
class Other:
    """Anything else the venue says (channel-conn-count, unsubscribe acks, other channels)."""

    message: dict[str, Any] = field(default_factory=dict)


Frame = (
    LoggedIn | Subscribed | Refused | Notice | PositionsPush | BalancePositionPush | Pong | Other
)


class FrameError(ValueError):
    """A frame that is not what OKX documents; the text names what was wrong."""


def parse_frame(text: str) -> Frame:
    if text == PONG:
        return Pong()
    try:
        message = json.loads(text)
    except ValueError as exc:
        raise FrameError(f"not JSON: {text[:80]!r}") from exc
    if not isinstance(message, dict):
        raise FrameError(f"not a JSON object: {text[:80]!r}")
    event = message.get("event")
    if event == "login":
        code = str(message.get("code", ""))
        if code != "0":
            return Refused(code, str(message.get("msg", "")))
        return LoggedIn(str(message.get("connId", "")))
    if event == "error":
        return Refused(str(message.get("code", "")), str(message.get("msg", "")))
    if event == "notice":
        return Notice(str(message.get("code", "")), str(message.get("msg", "")))
    if event == "subscribe":
        arg = message.get("arg")
        return Subscribed(str(arg.get("channel", "")) if isinstance(arg, dict) else "")
    if event is not None:
        return Other(message)
    arg = message.get("arg")
    channel = arg.get("channel") if isinstance(arg, dict) else None
    data = message.get("data")
    if channel not in ("positions", "balance_and_position"):
        return Other(message)
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise FrameError(f"{channel} push: `data` is not a list of objects: {text[:120]!r}")
    if channel == "positions":
        page = message.get("curPage", 1)
        return PositionsPush(
            event_type=str(message.get("eventType") or "snapshot"),
            records=data,
            page=page if isinstance(page, int) else 1,
            last_page=message.get("lastPage", True) is not False,
        )
    records: list[dict[str, Any]] = []
    event_type = "snapshot"
    p_time = None
    for item in data:
        event_type = str(item.get("eventType") or event_type)
        p_time = str(item["pTime"]) if item.get("pTime") else p_time
        pos_data = item.get("posData") or []
        if not isinstance(pos_data, list) or not all(isinstance(r, dict) for r in pos_data):
            raise FrameError(f"balance_and_position push: `posData` is not a list: {text[:120]!r}")
        records.extend(pos_data)
    return BalancePositionPush(event_type, records, p_time)
