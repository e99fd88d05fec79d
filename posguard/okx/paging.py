"""Walking OKX's `after` cursors back in time, and saying whether the walk saw everything.

positions-history, fills and candles answer at most one page (100 or 300 records) per request;
older records need another request with `after` = the oldest cursor of the page. A walk stops
at a short page (OKX has nothing older in the asked range) or at `max_pages`. Stopping at
`max_pages` is not the end of the data: the result says so (`complete` False, `oldest_ms` the
oldest time it covers), and the cut is logged once, so evidence cut short is never mistaken
for complete evidence.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

logger = logging.getLogger("posguard.okx")

T = TypeVar("T")


@dataclass(frozen=True)
class PagedRecords(Generic[T]):
    """The records of a paged walk, newest first, and how far back they reach.

    `complete`: the walk ended on a short page, so every record in the asked range (down to
    `before`/`begin`, or as far back as OKX keeps them) was read. `oldest_ms`: the oldest
    record time read (uTime, ts), None without records. When not complete, records older than
    `oldest_ms` may exist but were not read.
    """

    records: list[T] = field(default_factory=list)
    complete: bool = True
    oldest_ms: int | None = None
    pages: int = 0

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self) -> Iterator[T]:
        return iter(self.records)

    def partial_from_ms(self, fallback_ms: int) -> int | None:
        """None when complete; else the time before which records may be missing.

        `fallback_ms` (usually the snapshot time) stands in when the cut walk read no record
        with a time: then nothing is known to be covered.
        """
        if self.complete:
            return None
        return self.oldest_ms if self.oldest_ms is not None else fallback_ms


def iso_ms(ms: int | None) -> str:
    if ms is None:
        return "N/A"
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def _digits(value: object) -> int | None:
    # Cursors and times as OKX sends them: ASCII digit strings (int() would take "1_0" too).
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 20:
        return int(value)
    return None


def record_field(name: str) -> Callable[[Any], int | None]:
    """The integer value of a record's field (`uTime`, `billId`, `ts`), None when unusable."""

    def read(record: Any) -> int | None:
        return _digits(record.get(name)) if isinstance(record, dict) else None

    return read


def row_member(index: int) -> Callable[[Any], int | None]:
    """The integer value of an array row's member (a candle's ts is member 0)."""

    def read(row: Any) -> int | None:
        return _digits(row[index]) if isinstance(row, list) and len(row) > index else None

    return read


def walk_back(
    fetch_page: Callable[[str | None], list[Any]],
    *,
    first_after: str | None,
    limit: int,
    max_pages: int,
    cursor_of: Callable[[Any], int | None],
    time_of: Callable[[Any], int | None],
    describe: str,
    warn_when_cut: bool = True,
) -> PagedRecords[Any]:
    """Follow `after` cursors (records older than the cursor) until a short page.

    `fetch_page(after)` sends one request. `describe` names the call for the warning logged
    when the walk stops at `max_pages` ("positions-history for account 'main'").
    """
    rows: list[Any] = []
    after = first_after
    complete = False
    pages = 0
    oldest: int | None = None
    for _ in range(max(1, max_pages)):
        page = fetch_page(after)
        pages += 1
        rows.extend(page)
        times = [t for t in map(time_of, page) if t is not None]
        if times:
            oldest = min(times) if oldest is None else min(oldest, *times)
        if len(page) < limit:
            complete = True
            break
        cursors = [c for c in map(cursor_of, page) if c is not None]
        cursor = str(min(cursors)) if cursors else None
        # A page without cursors, or one that does not move the cursor, cannot be followed:
        # whatever is older was not read.
        if cursor is None or cursor == after:
            break
        after = cursor
    if not complete and warn_when_cut:
        logger.warning(
            "%s stopped after %s pages of %s records: records older than %s (%s) may exist "
            "but were not read; evidence from this walk is partial",
            describe,
            pages,
            limit,
            iso_ms(oldest),
            oldest,
        )
    return PagedRecords(rows, complete, oldest, pages)
