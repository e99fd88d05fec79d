"""OKX v5 request signing, exactly as documented (okx-facts.md section 1.2).

prehash = timestamp + METHOD + requestPath(with query for GET) + body, where body is the exact
string sent; sign = base64(HMAC-SHA256(secret, prehash)).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime


def okx_timestamp(epoch_ms: int) -> str:
    """ISO-8601 UTC with milliseconds, e.g. 2020-12-08T09:08:57.715Z."""
    moment = datetime.fromtimestamp(epoch_ms / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{epoch_ms % 1000:03d}Z"


def prehash(timestamp: str, method: str, request_path: str, body: str) -> str:
    return f"{timestamp}{method.upper()}{request_path}{body}"


def sign(secret: str, timestamp: str, method: str, request_path: str, body: str) -> str:
    digest = hmac.new(
        secret.encode("utf-8"),
        prehash(timestamp, method, request_path, body).encode("utf-8"),
        hashlib.sha256,
    ).digest()
    return base64.b64encode(digest).decode("ascii")


def verify(
    secret: str, signature: str, timestamp: str, method: str, request_path: str, body: str
) -> bool:
    """Constant-time check of a signature (used by the simulator)."""
    expected = sign(secret, timestamp, method, request_path, body)
    return hmac.compare_digest(expected, signature)
