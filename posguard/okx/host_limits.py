"""Rate limits shared by the processes of this host: OKX counts IP-scoped limits per IP.

posguard's client keeps each endpoint under OKX's limit within one process. Under Prefect,
flow runs are processes of their own (a work pool's workers, `serve`), and OKX counts IP-scoped
limits (public endpoints: instruments, position tiers, candles, time) for all of them together:
with 20 accounts checked at once, position-tiers answered 429 until retries ran out. So an
IP-scoped key's sliding window lives in a file, locked while it is read and written, that the
flows' clients of every process of the user on the host open (`fcntl.flock`: POSIX hosts).
Servers set up before keep their `okx-ip-*` limits, unused (`prefect gcl delete NAME`).

These windows were once Prefect rate limits (global concurrency limits with slot decay) on the
server. Each request then cost a server write, whose read-then-write transaction SQLite refuses
when another write lands in between: 13 of 31 refused in the stream latency benchmark, each
retried by Prefect's client after 2, 4, 8... s, which made the alert of a pushed change late
by seconds in a third of the runs. The IP is the host's, not the server's: in team mode a
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
import stat
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from posguard.errors import ConfigError
from posguard.okx.ratelimit import RateLimiter, slot_wait

logger = logging.getLogger(__name__)

IP_PREFIX = "ip:"


def default_folder() -> Path:
    """One folder per user of this host and temporary directory (`tempfile.gettempdir()`:
    TMPDIR, else /tmp): the posguard processes of that user that see it share it."""
    return Path(tempfile.gettempdir()) / f"posguard-{os.getuid()}-rate-limits"


def window_file(folder: Path, key: str) -> Path:
    """A stable file name for a limiter key like `ip:host:port:/api/v5/public/time`."""
    readable = re.sub(r"[^A-Za-z0-9]+", "-", key.rsplit("/", 1)[-1]).strip("-")[:40]
    digest = hashlib.sha1(key.encode(), usedforsecurity=False).hexdigest()[:12]
    return folder / f"{readable or 'key'}-{digest}.json"


class HostWindows:
    """Sliding windows in files under `folder`, one per key.

    Times are wall-clock seconds, the clock every process shares. A stamp ahead of now, or a
    penalty set at a moment ahead of now (the clock was set back), is dropped rather than
    waited for, and a file that does not parse (a process killed while writing it) counts
    as empty. The exchange's 429 and the client's backoff remain the last word.

    Each window counts one request less than OKX allows: a request is stamped when it is let
    go, and OKX counts it when it arrives, so two processes' requests can arrive in another
    order than they were stamped.
    """

    def __init__(
        self,
        folder: Path | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        user: int | None = None,
    ) -> None:
        self._folder = folder
        self._clock = clock
        self._sleep = sleep
        self._user = os.getuid() if user is None else user

    @property
    def folder(self) -> Path:
        if self._folder is None:
            self._folder = default_folder()
        return self._folder

    def _ready_folder(self) -> Path:
        """The folder, made (again, if something removed it) and kept private to this user.
        One that another user owns, or a link, is refused: the system's temporary directory
        is everyone's."""
        folder = self.folder
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        status = folder.lstat()
        if stat.S_ISLNK(status.st_mode) or not stat.S_ISDIR(status.st_mode):
            raise ConfigError(
                f"the rate-limit folder {folder} is a link or not a folder: remove it, or "
                f"give posguard a temporary directory of its own (TMPDIR)"
            )
        if status.st_uid != self._user:
            raise ConfigError(
                f"the rate-limit folder {folder} belongs to user {status.st_uid}, not to this "
                f"one ({self._user}): remove it, or give posguard a temporary directory of its "
                f"own (TMPDIR)"
            )
        if status.st_mode & 0o077:
            folder.chmod(0o700)
        return folder

    def acquire(self, key: str, limit: int, window_seconds: float) -> float:
        """Wait until one more request under `key` stays within the limit per window,
        counting every process's requests. Returns the seconds waited."""
        allowed = max(1, limit - 1)
        waited = 0.0
        while True:
            with self._window(key) as window:
                now = self._clock()
                sent = sorted(t for t in window.sent if now - window_seconds < t <= now)
                wait = window.penalty_left(now)
                if wait == 0.0:
                    wait = slot_wait(sent, now, allowed, window_seconds)
                if wait == 0.0:
                    window.sent = [*sent, now]
                    window.changed = True
                    return waited
            self._sleep(wait)
            waited += wait

    def penalize(self, key: str, seconds: float) -> None:
        """Block `key` for `seconds` in every process, after the exchange said too fast."""
        with self._window(key) as window:
            now = self._clock()
            if window.penalty_left(now) < seconds:
                window.blocked_from, window.blocked_until = now, now + seconds
                window.changed = True

    @contextlib.contextmanager
    def _window(self, key: str) -> Iterator[_Window]:
        """The key's window, read and (when changed) written back under the file's lock."""
        path = window_file(self._ready_folder(), key)
        # A fresh open per use: flock is per open file, so threads of one process exclude
        # each other as processes do. No following a link planted in the folder.
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        with os.fdopen(descriptor, "r+", encoding="utf-8") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
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
    blocked_from: float = 0.0
    blocked_until: float = 0.0
    changed: bool = False

    def penalty_left(self, now: float) -> float:
        """Seconds of the last penalty still to wait (0.0 for one set at a moment still to
        come: the clock was set back since)."""
        if self.blocked_from <= now < self.blocked_until:
            return self.blocked_until - now
        return 0.0

    @classmethod
    def parse(cls, text: str, path: Path) -> _Window:
        if not text:
            return cls()
        try:
            raw = json.loads(text)
            return cls(
                [float(t) for t in raw["sent"]],
                float(raw["blocked_from"]),
                float(raw["blocked_until"]),
            )
        except (ValueError, KeyError, TypeError) as exc:
            logger.warning("rate-limit window %s does not parse (%s); counting it empty", path, exc)
            return cls()

    def dumps(self) -> str:
        return json.dumps(
            {
                "sent": self.sent,
                "blocked_from": self.blocked_from,
                "blocked_until": self.blocked_until,
            }
        )


class HostRateLimiter(RateLimiter):
    """The process's limiter for account-scoped keys, the host's windows for IP-scoped ones.

    When the windows cannot be used (the folder refused, a full disk, a read-only temporary
    directory), IP-scoped keys fall back to this process's own windows, with a warning that
    names the cause once per cause: a limiter must not stop the flows.
    """

    def __init__(
        self,
        windows: HostWindows | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(clock, sleep)
        self.windows = windows or HostWindows()
        self._warned: set[str] = set()

    def acquire(self, key: str, limit: int, window_seconds: float) -> float:
        if key.startswith(IP_PREFIX):
            try:
                return self.windows.acquire(key, limit, window_seconds)
            except (OSError, ConfigError) as exc:
                self._fall_back(exc)
        return super().acquire(key, limit, window_seconds)

    def penalize(self, key: str, seconds: float) -> None:
        if key.startswith(IP_PREFIX):
            try:
                self.windows.penalize(key, seconds)
            except (OSError, ConfigError) as exc:
                self._fall_back(exc)
            else:
                return
        super().penalize(key, seconds)

    def _fall_back(self, exc: OSError | ConfigError) -> None:
        reason = f"{type(exc).__name__}: {exc}"
        if reason not in self._warned:
            self._warned.add(reason)
            logger.warning(
                "the host's rate-limit windows in %s cannot be used (%s): this process counts "
                "IP-scoped requests alone, and other processes' requests may meet OKX's 429",
                self.windows.folder,
                reason,
            )


# The flows' clients all use this one (tasks.context.okx).
HOST_LIMITER = HostRateLimiter()
