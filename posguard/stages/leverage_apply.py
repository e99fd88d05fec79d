"""Applying a leverage plan: one set-leverage call per scope that must change, then read back.

Dry-run by default. OKX's refusals (pending orders 59101/59107/59112, limits and margin
59102-59109, portfolio margin 59111) are outcomes recorded with their reason, not errors:
retrying them cannot help.

A write whose answer is lost (timeout, connection reset, 5xx, 50004, a garbled body) may or may
not have taken effect, so it is never resent: leverage-info is read back and the outcome is
recorded as what it shows, `applied` or `not_applied`, or `unknown` when even the read-back
fails. The next run plans from the exchange's state again. Every outcome but a dry run is
written to the registry's leverage-change table, one row per position the scope covers.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any, Literal

import pandas as pd

from posguard import frames
from posguard.errors import (
    DataError,
    ExchangeError,
    ExchangeTimeoutError,
    MalformedResponseError,
    RejectedError,
    TransientExchangeError,
)
from posguard.leverage.scope import SHARED
from posguard.okx import OkxClient
from posguard.okx.codes import LEVERAGE_REFUSALS
from posguard.registry import Registry

logger = logging.getLogger("posguard.leverage")


# Failures of a write that say nothing about whether it took effect.
UNKNOWN_OUTCOME = (ExchangeTimeoutError, TransientExchangeError, MalformedResponseError)


# A run asked to apply on a host whose configuration does not allow it.
REFUSED_BY_CONFIGURATION = (
    "refused by configuration: this host's posguard.toml does not allow runs to change "
    "leverage (set [leverage] apply = true on the worker's host to allow it)"
)

Outcome = Literal[
    "applied", "not_applied", "unknown", "refused", "mismatch", "dry_run", "blocked", "duplicate"
]
# A change asked for and not known to have taken effect: `leverage apply` exits non-zero.
NOT_TAKEN_EFFECT: frozenset[Outcome] = frozenset({"not_applied", "unknown", "mismatch"})


@dataclass(frozen=True)
class ChangeOutcome:
    instId: str
    posSide: str  # the scope's: net | long | short | long+short
    mgnMode: str
    from_lever: float | None
    to_lever: float | None
    outcome: Outcome
    code: str | None
    reason: str
    legs: tuple[str, ...] = ()  # posSide of each open position the scope covers

    def to_json(self) -> dict[str, Any]:
        return {
            "instId": self.instId,
            "posSide": self.posSide,
            "mgnMode": self.mgnMode,
            "legs": list(self.legs),
            "from_lever": self.from_lever,
            "to_lever": self.to_lever,
            "outcome": self.outcome,
            "code": self.code,
            "reason": self.reason,
        }


def _lever_text(value: float | None) -> str | None:
    if value is None or not math.isfinite(value):
        return None
    return f"{value:g}"


def _same(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


@dataclass(frozen=True)
class ScopeChange:
    """One plan row that asks for a change: the scope and the leverage it should get."""

    inst_id: str
    mgn_mode: str
    pos_side: str
    legs: tuple[str, ...]
    from_lever: float | None
    target: float

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.inst_id, self.mgn_mode, self.pos_side)

    def outcome(self, outcome: Outcome, reason: str, code: str | None = None) -> ChangeOutcome:
        return ChangeOutcome(
            instId=self.inst_id,
            posSide=self.pos_side,
            mgnMode=self.mgn_mode,
            from_lever=self.from_lever,
            to_lever=self.target,
            outcome=outcome,
            code=code,
            reason=reason,
            legs=self.legs,
        )


def _changes(plan: pd.DataFrame) -> list[ScopeChange]:
    changes: list[ScopeChange] = []
    for row in plan[plan["action"].isin(["raise", "lower"])].to_dict("records"):
        target = _finite(row["target"])
        if target is None:
            continue
        changes.append(
            ScopeChange(
                inst_id=str(row["instId"]),
                mgn_mode=str(row["mgnMode"]),
                pos_side=str(row["posSide"]),
                legs=tuple(str(leg["posSide"]) for leg in row.get("legs") or ()),
                from_lever=_finite(row["lever"]),
                target=target,
            )
        )
    return changes


def apply_plan(
    client: OkxClient,
    plan: pd.DataFrame,
    *,
    registry: Registry | None,
    account: str,
    dry_run: bool = True,
    kill_switch: bool = False,
    host_allows: bool = True,
    run_id: str | None = None,
) -> list[ChangeOutcome]:
    outcomes: list[ChangeOutcome] = []
    seen: set[tuple[str, str, str]] = set()
    for change in _changes(plan):
        if change.key in seen:
            # OKX keeps one leverage per scope: a second call would overwrite the first.
            outcome = change.outcome(
                "duplicate", "this scope already has a row in this plan; not sent twice"
            )
        elif dry_run:
            outcome = change.outcome("dry_run", f"dry run: would set {change.target:g}x")
        elif kill_switch:
            outcome = change.outcome("blocked", "the leverage kill switch forbids applying")
        elif not host_allows:
            outcome = change.outcome("blocked", REFUSED_BY_CONFIGURATION)
        else:
            outcome = _apply(client, change)
        seen.add(change.key)
        outcomes.append(outcome)
        if not dry_run:
            _record(registry, account, outcome, run_id)
    return outcomes


def _apply(client: OkxClient, change: ScopeChange) -> ChangeOutcome:
    """One set-leverage call for the scope, and what leverage-info says afterwards."""
    target = change.target
    try:
        client.set_leverage(
            lever=_lever_text(target) or "",
            mgn_mode=change.mgn_mode,
            inst_id=change.inst_id,
            pos_side=change.pos_side if change.pos_side in ("long", "short") else None,
        )
    except RejectedError as exc:
        if exc.code not in LEVERAGE_REFUSALS:
            raise
        logger.warning(
            "leverage of %s %s %s not changed: %s %s",
            change.inst_id,
            change.mgn_mode,
            change.pos_side,
            exc.code,
            exc.okx_msg,
        )
        return change.outcome("refused", exc.okx_msg or str(exc), exc.code)
    except UNKNOWN_OUTCOME as exc:
        outcome = _after_lost_answer(client, change, exc)
        logger.warning(
            "leverage of %s %s %s: %s: %s",
            change.inst_id,
            change.mgn_mode,
            change.pos_side,
            outcome.outcome,
            outcome.reason,
        )
        return outcome
    read_back, why = read_scope_leverage(client, change.inst_id, change.mgn_mode, change.pos_side)
    if read_back is None:
        return change.outcome("unknown", f"set {target:g}x, but the read-back failed ({why})")
    if _same(read_back, target):
        return change.outcome("applied", f"set {target:g}x and read back {read_back:g}x")
    return change.outcome("mismatch", f"set {target:g}x but leverage-info reads {read_back:g}x")


def _after_lost_answer(client: OkxClient, change: ScopeChange, exc: ExchangeError) -> ChangeOutcome:
    """The write may or may not have happened: what leverage-info shows decides, no resend."""
    lost = f"set-leverage to {change.target:g}x got no usable answer ({_what_went_wrong(exc)})"
    read_back, why = read_scope_leverage(client, change.inst_id, change.mgn_mode, change.pos_side)
    if read_back is None:
        reason = (
            f"{lost} and the read-back failed ({why}): the leverage is unknown until the next "
            f"run reads it"
        )
        return change.outcome("unknown", reason, exc.code)
    if _same(read_back, change.target):
        return change.outcome("applied", f"{lost}; leverage-info reads {read_back:g}x", exc.code)
    reason = (
        f"{lost}; leverage-info still reads {read_back:g}x: not applied and not resent (the "
        f"next run plans again)"
    )
    return change.outcome("not_applied", reason, exc.code)


def _what_went_wrong(exc: ExchangeError) -> str:
    cause = exc.__cause__
    if cause is not None:  # the transport's own words: "ReadTimeout: timed out"
        return f"{type(cause).__name__}: {cause}"
    parts = [
        type(exc).__name__,
        f"HTTP {exc.http_status}" if exc.http_status else "",
        exc.code or "",
        exc.okx_msg or "",
    ]
    return " ".join(p for p in parts if p)


def _finite(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def read_scope_leverage(
    client: OkxClient, inst_id: str, mgn_mode: str, pos_side: str
) -> tuple[float | None, str]:
    """The scope's leverage as leverage-info reads it now, or None and why it cannot be told."""
    try:
        rows = frames.parse_leverage_info(client.leverage_info(mgn_mode, [inst_id]))
    except (ExchangeError, DataError) as exc:
        return None, str(exc)
    sides = {"long", "short"} if pos_side == SHARED else {pos_side}
    mine = rows[
        (rows["instId"] == inst_id) & (rows["mgnMode"] == mgn_mode) & rows["posSide"].isin(sides)
    ]
    levers = mine["lever"].dropna().astype("float64").tolist()
    if not levers or len(levers) < len(mine):
        return None, f"leverage-info has no lever for {inst_id} {mgn_mode} {'/'.join(sides)}"
    if any(not _same(lever, levers[0]) for lever in levers):
        return None, f"leverage-info reads different levers for one scope: {levers}"
    return float(levers[0]), ""


def _record(
    registry: Registry | None, account: str, outcome: ChangeOutcome, run_id: str | None
) -> None:
    if registry is None:
        return
    # A shared cross scope changes the leverage of each of its legs: one row per position, so
    # the table keeps speaking of positions (account, instId, mgnMode, posSide).
    for leg in outcome.legs or (outcome.posSide,):
        registry.record_leverage_change(
            account=account,
            inst_id=outcome.instId,
            mgn_mode=outcome.mgnMode,
            pos_side=leg,
            from_lever=_lever_text(outcome.from_lever),
            to_lever=_lever_text(outcome.to_lever),
            outcome=outcome.outcome,
            code=outcome.code,
            reason=outcome.reason,
            run_id=run_id,
        )
