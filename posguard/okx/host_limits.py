"""Rate limits shared by every process of this host: OKX counts IP-scoped limits per IP.

posguard's client keeps each endpoint under OKX's limit within one process. Under Prefect,
flow runs are processes of their own (a work pool's workers, `serve`), and OKX counts IP-scoped
limits (public endpoints: instruments, position tiers, candles, time) for all of them together:
with 20 accounts checked at once, position-tiers answered 429 until retries ran out. So an
IP-scoped key's sliding window lives in a file, locked while it is read and written, that every
process of the user on the host opens (`fcntl.flock`: POSIX hosts).

These windows were once Prefect rate limits (global concurrency limits with slot decay) on the
server. Each request then cost a server write, whose read-then-write transaction SQLite refuses
when another write lands in between: 13 of 31 refused in the stream latency benchmark, each
retried by Prefect's client after 2, 4, 8... s, which made the alert of a pushed change late
by seconds, once a minute. The IP is the host's, not the server's: in team mode a
server-wide limit also held each host to a share of its own budget.

Account-scoped keys stay in the process's `RateLimiter`: one account's runs are serialized.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from posguard.errors import ConfigError
from posguard.okx.ratelimit import RateLimiter

logger = logging.getLogger(__name__)

IP_PREFIX = "ip:"


def default_folder() -> Path:
    """One folder per user of this host (every posguard process of that user shares it)."""
    return Path(tempfile.gettempdir()) / f"posguard-{os.getuid()}-rate-limits"


def window_file(folder: Path, key: str) -> Path:
    """A stable file name for a limiter key like `ip:host:port:/api/v5/public/time`."""
    readable = re.sub(r"[^A-Za-z0-9]+", "-", key.rsplit("/", 1)[-1]).strip("-")[:40]
    digest = hashlib.sha1(key.encode(), usedforsecurity=False).hexdigest()[:12]
    return folder / f"{readable or 'key'}-{digest}.json"


class HostWindows:
    """Sliding windows in files under `folder`, one per key.

    Times are wall-clock seconds, the clock every process shares. A stamp ahead of now (the
    clock was set back) is dropped rather than waited for, and a file that does not parse (a
    process killed while writing it) counts as empty: a limiter must not stop the flows; the
    exchange's 429 and the client's backoff remain the last word.
    """

    def __init__(
        self,
        folder: Path | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._folder = folder
        self._checked = False
        self._clock = clock
        self._sleep = sleep

    @property
    def folder(self) -> Path:
        if self._folder is None:
            self._folder = default_folder()
        return self._folder

    def _ready_folder(self) -> Path:
        """The folder, made private to this user on first use; one that another user owns
        (the system's temporary directory is everyone's) is refused, not written through."""
        folder = self.folder
        if not self._checked:
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            owner = folder.stat().st_uid
            if owner != os.getuid():
                raise ConfigError(
                    f"the rate-limit folder {folder} belongs to user {owner}, not to this one "
                    f"({os.getuid()}): remove it, or give this process a folder of its own "
                    f"(TMPDIR)"
                )
            self._checked = True
        return folder

    def acquire(self, key: str, limit: int, window_seconds: float) -> float:
        """Wait until one more request under `key` stays within `limit` per window, counting
        every process's requests. Returns the seconds waited."""
        waited = 0.0
        while True:
            with self._window(key) as window:
                now = self._clock()
                sent = sorted(t for t in window.sent if now - window_seconds < t <= now)
                blocked = window.blocked_until
                # Further ahead than a window: a clock set back, not a penalty still running.
                wait = blocked - now if now < blocked <= now + window_seconds else 0.0
                if wait == 0.0 and len(sent) < limit:
                    window.sent = [*sent, now]
                    window.changed = True
                    return waited
                if wait == 0.0:
                    wait = sent[len(sent) - limit] + window_seconds - now
            self._sleep(wait)
            waited += wait

    def penalize(self, key: str, seconds: float) -> None:
        """Block `key` for `seconds` in every process, after the exchange said too fast."""
        with self._window(key) as window:
            window.blocked_until = max(window.blocked_until, self._clock() + seconds)
            window.changed = True

    @contextlib.contextmanager
    def _window(self, key: str) -> Iterator[_Window]:
        """The key's window, read and (when changed) written back under the file's lock."""
        path = window_file(self._ready_folder(), key)
        # A fresh open per use: flock is per open file, so threads of one process exclude
        # each other as processes do.
        with path.open("a+", encoding="utf-8") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                handle.seek(0)
                window = _Window.parse(handle.read(), path)
                yield window
                if window.changed:
                    handle.seek(0)
                    handle.truncate()
                    handle.write(window.dumps())
                    handle.flush()
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


@dataclass
class _Window:
    sent: list[float] = field(default_factory=list)
    blocked_until: float = 0.0
    changed: bool = False

    @classmethod
    def parse(cls, text: str, path: Path) -> _Window:
        if not text:
            return cls()
        try:
            raw = json.loads(text)
            return cls([float(t) for t in raw["sent"]], float(raw["blocked_until"]))
        except (ValueError, KeyError, TypeError) as exc:
            logger.warning("rate-limit window %s does not parse (%s); counting it empty", path, exc)
            return cls()

    def dumps(self) -> str:
        return json.dumps({"sent": self.sent, "blocked_until": self.blocked_until})


class HostRateLimiter(RateLimiter):
    """The process's limiter for account-scoped keys, the host's windows for IP-scoped ones."""

    def __init__(self, windows: HostWindows | None = None) -> None:
        super().__init__()
        self.windows = windows or HostWindows()

    def acquire(self, key: str, limit: int, window_seconds: float) -> float:
        if key.startswith(IP_PREFIX):
            return self.windows.acquire(key, limit, window_seconds)
        return super().acquire(key, limit, window_seconds)

    def penalize(self, key: str, seconds: float) -> None:
        if key.startswith(IP_PREFIX):
            self.windows.penalize(key, seconds)
        else:
            super().penalize(key, seconds)


# The flows' clients all use this one (tasks.context.okx).
HOST_LIMITER = HostRateLimiter()
