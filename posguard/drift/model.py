"""The drift vocabulary (shared/docs/replay-format.md) and the engine's memory."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

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
Key = tuple[str, str, str]  # (instId, posSide, mgnMode): one position of one account

KINDS: tuple[str, ...] = ("DRIFT_ADD", "DRIFT_REMOVE", "DRIFT_SIZE", "DRIFT_SIDE", "DRIFT_LEVER")
STATUSES: tuple[str, ...] = ("suspected", "confirmed", "resolved", "healed")
CAUSES: tuple[str, ...] = (
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
)


def iso_ms(epoch_ms: int) -> str:
    moment = datetime.fromtimestamp(epoch_ms / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{epoch_ms % 1000:03d}Z"


@dataclass(frozen=True)
class DriftSettings:
    """The engine's knobs (design.md, reconciliation rules 4, 5 and 7)."""

    confirm_after: int = 2  # consecutive observations that confirm a discrepancy
    grace_seconds: float = 5.0  # registry writes this close to a snapshot make a key skip
    lookback_seconds: float = 3600.0  # how far back history and fills count as evidence
    escalate_after: int = 10  # cycles a confirmed discrepancy may stay before escalating
    heal: Literal["report", "heal"] = "report"

    def __post_init__(self) -> None:
        if self.confirm_after < 1:
            raise ValueError("confirm_after must be at least 1")
        if self.grace_seconds < 0 or self.lookback_seconds < 0:
            raise ValueError("grace_seconds and lookback_seconds must not be negative")
        if self.escalate_after < 1:
            raise ValueError("escalate_after must be at least 1")
        if self.heal not in ("report", "heal"):
            raise ValueError("heal must be 'report' or 'heal'")


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
        salt: str = "",
    ) -> DriftEvent:
        """An event whose id depends only on what it says: replays give the same ids."""
        inst_id, pos_side, mgn_mode = key
        digest = hashlib.sha256(
            "|".join(
                (account, inst_id, pos_side, mgn_mode, kind, status, cause, str(at_ms), salt)
            ).encode()
        ).hexdigest()[:24]
        return DriftEvent(
            at_ms,
            account,
            inst_id,
            pos_side,
            mgn_mode,
            kind,
            status,
            cause,
            evidence,
            f"drift-{digest}",
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

    kind: str
    cause: str
    first_ms: int
    count: int
    confirmed: bool = False
    escalated: bool = False
    # The life of the position when it was last seen (posId, cTime), for REMOVE.
    pos_id: str | None = None
    c_time: int | None = None


@dataclass
class EngineMemory:
    """What the engine remembers between cycles; JSON-serializable so flows can persist it."""

    last_snapshot_ms: int | None = None
    pending: dict[str, Pending] = field(default_factory=dict)
    # Last seen life of every open position: key -> [posId, cTime].
    identities: dict[str, list[Any]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "last_snapshot_ms": self.last_snapshot_ms,
            "pending": {k: asdict(v) for k, v in self.pending.items()},
            "identities": self.identities,
        }

    @staticmethod
    def from_json(document: dict[str, Any] | None) -> EngineMemory:
        if not document:
            return EngineMemory()
        return EngineMemory(
            last_snapshot_ms=document.get("last_snapshot_ms"),
            pending={k: Pending(**v) for k, v in (document.get("pending") or {}).items()},
            identities=dict(document.get("identities") or {}),
        )


def key_text(key: Key) -> str:
    return "|".join(key)


def key_of(text: str) -> Key:
    inst_id, pos_side, mgn_mode = text.split("|")
    return (inst_id, pos_side, mgn_mode)


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
