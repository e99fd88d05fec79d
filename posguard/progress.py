"""Progress of long commands, as log lines of the `posguard.progress` logger.

Library code and flows report through `Progress` and never decide where it goes; a command
that wants it shown wraps its work in `progress_on_stderr()`. Progress goes to stderr only,
so a command's stdout (`--json`: one object) stays clean, and lines rather than a redrawn bar
keep it readable in CI logs and log files.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import TextIO

LOGGER = "posguard.progress"
logger = logging.getLogger(LOGGER)


class Progress:
    """Counts work done out of `total`; reports at most every `interval` seconds, and at the
    end. `what` names the work ("registry import: rows written")."""

    def __init__(self, what: str, total: int, *, interval: float = 2.0) -> None:
        self.what = what
        self.total = total
        self.interval = interval
        self.done = 0
        self._started = time.monotonic()
        self._reported_at: float | None = None

    def update(self, done: int) -> None:
        """Set the count of finished items (it only moves forward)."""
        self.done = max(self.done, done)
        now = time.monotonic()
        finished = self.done >= self.total
        if finished or self._reported_at is None or now - self._reported_at >= self.interval:
            self._reported_at = now
            logger.info(
                "%s: %s/%s (%s%%) after %.1f s",
                self.what,
                self.done,
                self.total,
                100 * self.done // self.total if self.total else 100,
                now - self._started,
            )

    def advance(self, count: int = 1) -> None:
        self.update(self.done + count)


def progress_on_stderr(stream: TextIO | None = None) -> AbstractContextManager[None]:
    """Show `posguard.progress` lines on stderr (or `stream`) while the block runs."""
    return lines_on_stderr(logger.name, stream=stream)


@contextmanager
def lines_on_stderr(
    name: str, fmt: str = "%(message)s", stream: TextIO | None = None
) -> Iterator[None]:
    """Show the INFO lines of logger `name` on stderr (or `stream`) while the block runs."""
    shown = logging.getLogger(name)
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(logging.Formatter(fmt))
    previous = (shown.level, shown.propagate)
    shown.addHandler(handler)
    shown.setLevel(logging.INFO)
    # Shown here once; the root logger's handlers (Prefect's console) would repeat it.
    shown.propagate = False
    try:
        yield
    finally:
        shown.removeHandler(handler)
        shown.setLevel(previous[0])
        shown.propagate = previous[1]
