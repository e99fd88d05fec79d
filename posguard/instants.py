"""Instants as timelines and scenarios write them: ISO-8601 UTC, or an offset from the start.

Neutral ground: the simulator's scenarios and `posguard replay`'s timelines share the notation.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

_RELATIVE = re.compile(r"^\+(?:(\d+)h)?(?:(\d+)m(?!s))?(?:(\d+(?:\.\d+)?)s)?(?:(\d+)ms)?$")


def parse_instant(value: str, start_ms: int) -> int:
    """ISO-8601 UTC, or "+1h2m3s" relative to the scenario's start, as epoch ms."""
    text = value.strip()
    match = _RELATIVE.match(text)
    if match and text != "+":
        hours, minutes, seconds, millis = match.groups()
        offset = (
            int(hours or 0) * 3_600_000
            + int(minutes or 0) * 60_000
            + int(float(seconds or 0) * 1000)
            + int(millis or 0)
        )
        return start_ms + offset
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{value!r} is neither ISO-8601 UTC nor '+<n>h<n>m<n>s'") from None
    if moment.tzinfo is None:
        raise ValueError(f"{value!r} has no time zone; write it in UTC with a trailing Z")
    return int(moment.astimezone(UTC).timestamp() * 1000)
