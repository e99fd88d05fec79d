"""What the stream has shown of one account's positions, and what changed (pure).

A change is a position whose size, life (posId, cTime) or leverage differs from what the
stream showed before: a new position, a size change, a close (pushed once with pos "0"), a
new life on a known key. Mark prices and PnL move with every regular push and are no change.
OKX's regular snapshot carries every open position, so a complete snapshot also tells what a
missed push or a cut connection hid: keys the book holds and the snapshot lacks were closed.
The first snapshot of a watcher only fills the book: what happened before it started is the
scheduled reconcile's to find.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from posguard.errors import DataError
from posguard.frames.parse import parse_epoch_ms, parse_size

Key = tuple[str, str, str]  # instId, posSide, mgnMode: one position of an account
Source = Literal["event_update", "snapshot", "balance_and_position"]


@dataclass(frozen=True)
class Seen:
    pos: str  # normalized decimal text; "" unknown
    pos_id: str
    c_time: str
    lever: str


@dataclass(frozen=True)
class Change:
    """One position that changed, as the venue said it: `venue_ms` is the record's uTime (or
    the push time), the moment OKX stamped, not when posguard read it."""

    inst_id: str
    pos_side: str
    mgn_mode: str
    before: str | None  # size before; None: not open as far as the stream knew
    after: str  # size now; "0": closed
    pos_id: str
    c_time: str
    venue_ms: int | None
    source: Source
    lever: str = ""  # the leverage now; "" unknown

    @property
    def key(self) -> Key:
        return (self.inst_id, self.pos_side, self.mgn_mode)

    def to_json(self) -> dict[str, Any]:
        return {
            "instId": self.inst_id,
            "posSide": self.pos_side,
            "mgnMode": self.mgn_mode,
            "before": self.before,
            "after": self.after,
            "posId": self.pos_id,
            "cTime": self.c_time,
            "venue_ms": self.venue_ms,
            "source": self.source,
            "lever": self.lever,
        }


def _text(record: dict[str, Any], name: str) -> str:
    value = record.get(name)
    return value if isinstance(value, str) else ""


def key_of(record: dict[str, Any]) -> Key:
    inst_id = _text(record, "instId") or "unknown"
    return (inst_id, _text(record, "posSide") or "net", _text(record, "mgnMode"))


def _venue_ms(record: dict[str, Any], source: str) -> int | None:
    """The later of uTime and pTime: the position's last adjustment may not move uTime (a
    leverage change does not, on the simulator), and the push is never older than what it
    reports. The run waits the grace window from it, and the engine takes the pushed state
    as held since it."""
    inst_id = _text(record, "instId") or "unknown"
    u_time = parse_epoch_ms(record.get("uTime"), field="uTime", inst_id=inst_id, source=source)
    try:
        p_time = parse_epoch_ms(record.get("pTime"), field="pTime", inst_id=inst_id, source=source)
    except DataError:
        p_time = None  # the push's own time unreadable costs a lag figure, not the push
    known = [m for m in (u_time, p_time) if m is not None]
    return max(known) if known else None


def _seen(record: dict[str, Any], source: str) -> tuple[Key, Seen, int | None]:
    key = key_of(record)
    size = parse_size(record.get("pos"), field="pos", inst_id=key[0], source=source)
    pos = "" if size is None else f"{size.normalize():f}"
    seen = Seen(pos, _text(record, "posId"), _text(record, "cTime"), _text(record, "lever"))
    return key, seen, _venue_ms(record, source)


class ObservedBook:
    """One account's positions as the stream showed them."""

    def __init__(self) -> None:
        self.positions: dict[Key, Seen] = {}
        self.complete = False  # a whole snapshot has been read since the watcher started
        self._pages: list[dict[str, Any]] = []

    def update(self, records: list[dict[str, Any]], source: Source) -> list[Change]:
        """Records that say "this position is now so" (event pushes, balance_and_position)."""
        changes: list[Change] = []
        for record in records:
            key, seen, venue_ms = _seen(record, f"{source} push")
            change = self._apply(key, seen, venue_ms, source)
            if change is not None:
                changes.append(change)
        return changes

    def snapshot_page(
        self, records: list[dict[str, Any]], page: int, last_page: bool
    ) -> list[Change]:
        """A page of a snapshot; the changes come with its last page (a snapshot is every
        open position, so what it lacks is closed)."""
        if page <= 1:
            self._pages = []
        self._pages.extend(records)
        if not last_page:
            return []
        records, self._pages = self._pages, []
        current: dict[Key, Seen] = {}
        venue: dict[Key, int | None] = {}
        for record in records:
            key, seen, venue_ms = _seen(record, "positions snapshot")
            current[key], venue[key] = seen, venue_ms
        if not self.complete:
            self.positions = {k: s for k, s in current.items() if not _closed(s)}
            self.complete = True
            return []
        changes: list[Change] = []
        for key, seen in current.items():
            change = self._apply(key, seen, venue.get(key), "snapshot")
            if change is not None:
                changes.append(change)
        for key in [k for k in self.positions if k not in current]:
            gone = self.positions.pop(key)
            changes.append(
                Change(*key, gone.pos, "0", gone.pos_id, gone.c_time, None, "snapshot", gone.lever)
            )
        return changes

    def _apply(self, key: Key, seen: Seen, venue_ms: int | None, source: Source) -> Change | None:
        before = self.positions.get(key)
        if before is not None:
            # What a record does not say ("", or absent: balance_and_position's posData has no
            # lever nor cTime; an unknown size) is as before, not a change.
            seen = Seen(
                seen.pos or before.pos,
                seen.pos_id or before.pos_id,
                seen.c_time or before.c_time,
                seen.lever or before.lever,
            )
        if _closed(seen):
            if before is None:
                return None  # a close the book already knew, or a key never open
            del self.positions[key]
            pos_id, c_time = seen.pos_id or before.pos_id, seen.c_time or before.c_time
            return Change(*key, before.pos, "0", pos_id, c_time, venue_ms, source, seen.lever)
        self.positions[key] = seen
        if before == seen:
            return None
        return Change(
            *key,
            None if before is None else before.pos,
            seen.pos,
            seen.pos_id,
            seen.c_time,
            venue_ms,
            source,
            seen.lever,
        )


def _closed(seen: Seen) -> bool:
    return seen.pos in ("0", "-0")
