"""The pushed changes a run was started for, read back as observations (pure).

`posguard watch` puts each change it saw on OKX's private stream into the event's payload
(`posguard.watch.observed.Change.to_json`); the change trigger passes them to the run as its
`pushed` parameter. Here they become `Pushed` observations for the engine. A change without
OKX's time says nothing about how long a state lasted and is left out; a malformed one is left
out with a problem naming the field and the instrument: a push only ever adds to what a
snapshot shows, so losing one costs speed, never truth.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from posguard.drift.model import Key, Life, Pushed
from posguard.errors import DataError
from posguard.frames.parse import parse_epoch_ms, parse_size

SOURCE = "pushed change"


def _text(change: Mapping[str, Any], name: str) -> str:
    value = change.get(name)
    return value if isinstance(value, str) else ""


def pushed_one(change: Mapping[str, Any]) -> Pushed | None:
    """One change as an observation; None when it has no venue time. Raises DataError."""
    inst_id = _text(change, "instId")
    if not inst_id:
        raise DataError(f"{SOURCE}: field 'instId' is missing or not text", field="instId")
    key: Key = (inst_id, _text(change, "posSide") or "net", _text(change, "mgnMode"))
    if key[2] not in ("cross", "isolated"):
        raise DataError(
            f"{SOURCE}: field 'mgnMode' of {inst_id} is {change.get('mgnMode')!r:.40}; "
            "expected cross or isolated",
            field="mgnMode",
            inst_id=inst_id,
        )
    venue_ms = change.get("venue_ms")
    if venue_ms is None:
        return None
    if isinstance(venue_ms, bool) or not isinstance(venue_ms, int) or venue_ms <= 0:
        raise DataError(
            f"{SOURCE}: field 'venue_ms' of {inst_id} is {venue_ms!r:.40}; expected OKX's "
            "time in epoch milliseconds",
            field="venue_ms",
            value=venue_ms,
            inst_id=inst_id,
        )
    after = parse_size(change.get("after"), field="after", inst_id=inst_id, source=SOURCE)
    if after is None:
        return None  # the size is unknown: nothing to compare with a snapshot
    lever = parse_size(change.get("lever"), field="lever", inst_id=inst_id, source=SOURCE)
    c_time = parse_epoch_ms(change.get("cTime"), field="cTime", inst_id=inst_id, source=SOURCE)
    life: Life | None = None if c_time is None else (_text(change, "posId") or None, c_time)
    return Pushed(
        key=key,
        open=after != 0,
        pos=float(after),
        life=life,
        lever=None if lever is None or lever <= 0 else float(lever),
        venue_ms=venue_ms,
    )


def pushed_from(changes: object) -> tuple[list[Pushed], list[str]]:
    """The observations in a run's `pushed` parameter, and what was left out and why."""
    if changes is None:
        return [], []
    if not isinstance(changes, Sequence) or isinstance(changes, str | bytes):
        return [], [f"{SOURCE}s: expected a list of changes, got {type(changes).__name__}"]
    latest: dict[Key, Pushed] = {}
    problems: list[str] = []
    for index, change in enumerate(changes):
        if not isinstance(change, Mapping):
            problems.append(f"{SOURCE} [{index}]: expected an object, got {type(change).__name__}")
            continue
        try:
            push = pushed_one(change)
        except DataError as exc:
            problems.append(f"{exc}; this change is not used as an observation")
            continue
        if push is None:
            continue
        known = latest.get(push.key)
        if known is None or push.venue_ms >= known.venue_ms:
            latest[push.key] = push
    return list(latest.values()), problems
