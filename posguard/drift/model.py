"""The drift vocabulary (shared/docs/replay-format.md), the engine's settings and its memory.

A *life* of a position is (posId, cTime): OKX reuses a posId for 30 days, so only the pair
names one life. A *discrepancy* is one stretch of time during which the registry and the
exchange disagree in one way (one kind) on one key; it gets one id when the engine first
sees it, and every event about it (suspected, confirmed, escalated, healed, resolved) is
derived from that id, so a retried or racing cycle can only ever store the same events.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import UTC, datetime
from typing import Any, Literal, NamedTuple, get_args

Kind = Literal["DRIFT_ADD", "DRIFT_REMOVE", "DRIFT_SIZE", "DRIFT_SIDE", "DRIFT_LEVER"]
Status = Literal["suspected", "confirmed", "resolved", "healed"]
Cause = Literal[
    "closed",
    "liquidated",
    "adl",
    "reopened",
    "registry_lag",
    "external",
    "partial_fill",
    "size_changed",
    "leverage_changed",
    "spurious",
    "unknown",
]
HealPolicy = Literal["report", "heal"]
Key = tuple[str, str, str]  # (instId, posSide, mgnMode): one position of one account
Life = tuple[str | None, int]  # (posId, cTime)

KINDS: tuple[str, ...] = get_args(Kind)
STATUSES: tuple[str, ...] = get_args(Status)
CAUSES: tuple[str, ...] = get_args(Cause)


def iso_ms(epoch_ms: int) -> str:
    moment = datetime.fromtimestamp(epoch_ms / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{epoch_ms % 1000:03d}Z"


@dataclass(frozen=True)
class DriftSettings:
    """The engine's knobs (design.md, reconciliation rules 4, 5 and 7)."""

    confirm_after: int = 2  # distinct observations that confirm a discrepancy
    # Observations closer together than this are one observation: an on-demand run right
    # after a scheduled one must not confirm a blip.
    confirm_interval_seconds: float = 20.0
    # A registry write this close to a snapshot makes its key skip the cycle (the bot is
    # acting on it), and evidence newer than this cannot confirm yet (the bot may still be
    # recording what it did).
    grace_seconds: float = 5.0
    lookback_seconds: float = 3600.0  # how far back history and fills count as evidence
    escalate_after: int = 10  # observations a confirmed discrepancy may stay before escalating
    heal: HealPolicy = "report"

    def __post_init__(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            numeric = isinstance(value, float | int) and not isinstance(value, bool)
            if numeric and not math.isfinite(value):
                raise ValueError(f"{item.name} must be a finite number, got {value!r}")
        if self.confirm_after < 1:
            raise ValueError("confirm_after must be at least 1")
        if self.confirm_interval_seconds < 0:
            raise ValueError("confirm_interval_seconds must not be negative")
        if self.grace_seconds < 0 or self.lookback_seconds < 0:
            raise ValueError("grace_seconds and lookback_seconds must not be negative")
        if self.escalate_after < 1:
            raise ValueError("escalate_after must be at least 1")
        if self.heal not in get_args(HealPolicy):
            raise ValueError("heal must be 'report' or 'heal'")


def _escape(part: str) -> str:
    if "%" not in part and "|" not in part:
        return part
    return part.replace("%", "%25").replace("|", "%7C")


def _unescape(part: str) -> str:
    return part.replace("%7C", "|").replace("%25", "%")


def key_text(key: Key) -> str:
    """A key as text for JSON maps: "instId|posSide|mgnMode", with "%" and "|" escaped so
    that any instId an answer may carry reads back as itself."""
    return "|".join(_escape(part) for part in key)


def key_of(text: str) -> Key:
    parts = text.split("|")
    if len(parts) != 3:
        raise ValueError(f"{text!r} is not an engine key (instId|posSide|mgnMode)")
    inst_id, pos_side, mgn_mode = (_unescape(p) for p in parts)
    return (inst_id, pos_side, mgn_mode)


def digest(*parts: object) -> str:
    return hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).hexdigest()[:24]


@dataclass(frozen=True)
class DriftEvent:
    at_ms: int
    account: str
    inst_id: str
    pos_side: str
    mgn_mode: str
    kind: str
    status: str
    cause: str
    evidence: dict[str, Any] = field(default_factory=dict, compare=False)
    id: str = ""

    @staticmethod
    def make(
        at_ms: int,
        account: str,
        key: Key,
        kind: str,
        status: str,
        cause: str,
        evidence: dict[str, Any],
        *,
        discrepancy: str,
        occurrence: str = "",
    ) -> DriftEvent:
        """An event whose id depends only on the discrepancy and what happened to it.

        `occurrence` tells apart events of one status that may repeat (none do today)."""
        inst_id, pos_side, mgn_mode = key
        ident = f"drift-{digest(discrepancy, status, occurrence)}"
        return DriftEvent(
            at_ms, account, inst_id, pos_side, mgn_mode, kind, status, cause, evidence, ident
        )

    @property
    def key(self) -> Key:
        return (self.inst_id, self.pos_side, self.mgn_mode)

    def to_json(self) -> dict[str, Any]:
        return {
            "at": iso_ms(self.at_ms),
            "account": self.account,
            "instId": self.inst_id,
            "posSide": self.pos_side,
            "mgnMode": self.mgn_mode,
            "kind": self.kind,
            "status": self.status,
            "cause": self.cause,
            "id": self.id,
            "evidence": self.evidence,
        }


@dataclass
class Pending:
    """A discrepancy the engine is watching for one key."""

    id: str  # the discrepancy's id: every event about it derives from it
    kind: str
    cause: str
    first_ms: int  # snapshot time of the first observation
    last_ms: int  # snapshot time of the last observation that counted
    count: int  # distinct observations so far
    confirmed: bool = False
    escalated: bool = False
    # The registry row's version when the discrepancy began, and the lives involved.
    registry_version: int | None = None
    registry_life: list[Any] | None = None
    exchange_life: list[Any] | None = None
    # OKX's time of the pushed record that counted as an observation (one push at most).
    pushed_ms: int | None = None
    # History was read whole up to this snapshot: lives that ended since are still to see.
    history_ms: int | None = None


# The fields each structure had when the memory's format was 2: written where older code reads
# them, the rest beside them, so that a rollback (or a team host not yet upgraded) still reads
# the memory of a newer one.
_PENDING_V2 = (
    "id",
    "kind",
    "cause",
    "first_ms",
    "last_ms",
    "count",
    "confirmed",
    "escalated",
    "registry_version",
    "registry_life",
    "exchange_life",
)
_SEEN_V2 = 4


@dataclass(frozen=True)
class Pushed:
    """What OKX's private stream last pushed for one key before a run started by the push
    (`posguard watch`): the venue's own record of the position since `venue_ms`.

    A push is an observation with the venue's time, but never the only one: it counts only
    beside a snapshot that shows the same position at least the grace window later (the
    engine, `_Cycle._pushed`), which proves the discrepancy lasted that long."""

    key: Key
    open: bool
    pos: float  # signed in net mode, as OKX's pos; 0.0 when closed
    life: Life | None  # (posId, cTime); None when the push did not say
    lever: float | None  # None: not said
    venue_ms: int


class Seen(NamedTuple):
    """What the engine last saw of one key on the exchange (stored as a JSON list: one per
    open position, so it is kept small)."""

    pos_id: str | None  # the last open life seen: (posId, cTime)
    c_time: int
    seen_ms: int  # snapshot time it was last seen open
    # The registry row version last seen agreeing with that life: that row describes it.
    bound_version: int | None
    pos: float | None = None  # its size then (None in memory written before it was kept)

    @property
    def life(self) -> Life:
        return (self.pos_id, self.c_time)


@dataclass
class EngineMemory:
    """What the engine remembers between cycles; JSON-serializable so flows can persist it."""

    last_snapshot_ms: int | None = None
    pending: dict[str, Pending] = field(default_factory=dict)
    seen: dict[str, Seen] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        pending = {k: asdict(v) for k, v in self.pending.items()}
        return {
            "format": 2,
            "last_snapshot_ms": self.last_snapshot_ms,
            "pending": {k: {f: v[f] for f in _PENDING_V2} for k, v in pending.items()},
            "pending_more": {
                k: {f: x for f, x in v.items() if f not in _PENDING_V2} for k, v in pending.items()
            },
            "seen": {k: list(v)[:_SEEN_V2] for k, v in self.seen.items()},
            "seen_pos": {k: v.pos for k, v in self.seen.items() if v.pos is not None},
        }

    @staticmethod
    def from_json(document: dict[str, Any] | None) -> EngineMemory:
        if not document:
            return EngineMemory()
        if document.get("format") != 2:
            return _from_first_format(document)
        known = {f.name for f in fields(Pending)}
        more = document.get("pending_more") or {}
        sizes = document.get("seen_pos") or {}
        return EngineMemory(
            last_snapshot_ms=document.get("last_snapshot_ms"),
            # What a newer version added and this one does not know is left out.
            pending={
                k: Pending(**{f: x for f, x in {**v, **more.get(k, {})}.items() if f in known})
                for k, v in (document.get("pending") or {}).items()
            },
            seen={
                k: Seen(*v[:_SEEN_V2])._replace(pos=sizes.get(k))
                for k, v in (document.get("seen") or {}).items()
            },
        )

    def copy(self) -> EngineMemory:
        return EngineMemory(
            self.last_snapshot_ms,
            {k: replace(v) for k, v in self.pending.items()},
            dict(self.seen),
        )


def _from_first_format(document: dict[str, Any]) -> EngineMemory:
    """Memory written before discrepancies had ids: keep what still means the same."""
    pending: dict[str, Pending] = {}
    for text, old in (document.get("pending") or {}).items():
        key = key_of(text)
        first = int(old.get("first_ms") or 0)
        life = [old.get("pos_id"), old.get("c_time")] if old.get("c_time") else None
        pending[key_text(key)] = Pending(
            id=digest("migrated", *key, old.get("kind"), first),
            kind=str(old.get("kind")),
            cause=str(old.get("cause")),
            first_ms=first,
            last_ms=first,
            count=int(old.get("count") or 1),
            confirmed=bool(old.get("confirmed")),
            escalated=bool(old.get("escalated")),
            registry_life=life,
        )
    last = document.get("last_snapshot_ms") or 0
    seen = {
        key_text(key_of(text)): Seen(value[0], int(value[1]), int(last), None)
        for text, value in (document.get("identities") or {}).items()
        if isinstance(value, list) and len(value) == 2 and value[1] is not None
    }
    return EngineMemory(document.get("last_snapshot_ms"), pending, seen)


@dataclass(frozen=True)
class HealAction:
    """A compare-and-set write the `heal` policy asks of the registry."""

    account: str
    key: Key
    expected_version: int | None  # None: the key has no registry row yet
    pos: str  # "0" closes the registry's position
    avg_px: str | None
    lever: str | None
    pos_id: str | None
    c_time: int | None
    event: DriftEvent  # the confirmed event being healed
