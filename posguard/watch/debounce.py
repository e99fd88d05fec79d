"""A burst of changes on one account becomes one notice (pure; the clock is given).

OKX aggregates event pushes about every 50 ms and a close often arrives as a positions push,
a balance_and_position push and the next regular snapshot. Each notice starts a reconcile run,
so a burst must give one: a notice goes out once the account has been quiet for
`quiet_seconds`, or `max_seconds` after its first change if it never goes quiet.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from posguard.watch.observed import Change, Key


@dataclass
class Pending:
    first: float
    last: float
    changes: dict[Key, Change] = field(default_factory=dict)
    causes: dict[Key, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Notice:
    """What changed on one account since its last notice: the latest change per position,
    and the venue's cause where balance_and_position named one (liquidation, adl, ...)."""

    account: str
    changes: tuple[Change, ...]
    causes: dict[Key, str]


class Debouncer:
    def __init__(self, quiet_seconds: float, max_seconds: float) -> None:
        if quiet_seconds <= 0 or max_seconds < quiet_seconds:
            raise ValueError("need 0 < quiet_seconds <= max_seconds")
        self.quiet = quiet_seconds
        self.max = max_seconds
        self._pending: dict[str, Pending] = {}

    def add(self, account: str, changes: list[Change], now: float) -> None:
        if not changes:
            return
        pending = self._pending.setdefault(account, Pending(now, now))
        pending.last = now
        for change in changes:
            pending.changes[change.key] = change

    def note_cause(self, account: str, key: Key, cause: str, now: float) -> None:
        """A cause for a change that is pending, or comes within the quiet time."""
        pending = self._pending.setdefault(account, Pending(now, now))
        pending.causes[key] = cause

    def due(self, now: float) -> list[Notice]:
        ready: list[Notice] = []
        for account, pending in list(self._pending.items()):
            if now - pending.last < self.quiet and now - pending.first < self.max:
                continue
            del self._pending[account]
            if pending.changes:  # a cause alone (its change was already known) is no news
                changes = tuple(pending.changes.values())
                causes = {k: v for k, v in pending.causes.items() if k in pending.changes}
                ready.append(Notice(account, changes, causes))
        return ready

    def next_due(self) -> float | None:
        """When the next notice may be ready (None: nothing pending)."""
        if not self._pending:
            return None
        return min(min(p.last + self.quiet, p.first + self.max) for p in self._pending.values())
