"""Leverage scopes: what one set-leverage call changes on OKX (okx-facts.md, 5.2).

- net mode: (instId, mgnMode), the one net position;
- long/short mode, cross: (instId, cross), one leverage shared by both legs;
- long/short mode, isolated: (instId, isolated, posSide), each leg on its own.

A position's `posSide` says which mode it lives in ("net" in net mode, long/short otherwise),
so the scopes follow from the positions alone. OKX sets FUTURES cross leverage per underlying;
posguard plans SWAP positions only, where cross is per instrument.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

# The posSide of a cross scope in long/short mode: one leverage for the long and the short leg.
SHARED = "long+short"

# Which reading of a leg's leverage to prefer when legs of one scope were resolved differently.
_SOURCE_RANK = {"position": 0, "leverage_info": 1, "config": 2}


def scope_side(mgn_mode: str, pos_side: str) -> str:
    """The posSide of the scope a position belongs to: net, long, short or long+short."""
    if pos_side in ("long", "short"):
        return pos_side if mgn_mode == "isolated" else SHARED
    return "net"


@dataclass(frozen=True)
class Leg:
    """One open position of a scope, as the plan needs it."""

    pos_side: str
    size: float  # contracts, |pos|
    lever: float | None
    lever_source: str
    lever_reason: str

    def to_json(self) -> dict[str, Any]:
        return {
            "posSide": self.pos_side,
            "size": self.size,
            "lever": self.lever,
            "lever_source": self.lever_source,
        }


@dataclass(frozen=True)
class Scope:
    inst_id: str
    mgn_mode: str
    pos_side: str  # net | long | short | long+short
    legs: tuple[Leg, ...]

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.inst_id, self.mgn_mode, self.pos_side)

    @property
    def request_pos_side(self) -> str | None:
        """The posSide set-leverage needs: only for an isolated leg in long/short mode."""
        return self.pos_side if self.pos_side in ("long", "short") else None

    @property
    def read_sides(self) -> frozenset[str]:
        """The posSide values leverage-info answers for this scope."""
        if self.pos_side == SHARED:
            return frozenset({"long", "short"})
        return frozenset({self.pos_side})

    @property
    def largest(self) -> Leg:
        return max(self.legs, key=lambda leg: leg.size)


def _positive(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and number > 0 else None


def scopes_of(positions: pd.DataFrame) -> list[Scope]:
    """The open positions grouped by leverage scope, in a stable order (instId, mode, side)."""
    grouped: dict[tuple[str, str, str], list[Leg]] = {}
    open_positions = positions[positions["is_open"]]
    for raw in open_positions.to_dict("records"):
        record: Mapping[str, Any] = {str(k): v for k, v in raw.items()}
        inst_id, mgn_mode = str(record["instId"]), str(record["mgnMode"])
        pos_side = str(record["posSide"])
        size = _positive(record.get("size")) or 0.0
        reason = record.get("lever_reason")
        leg = Leg(
            pos_side=pos_side,
            size=size,
            lever=_positive(record.get("lever")),
            lever_source=str(record.get("lever_source") or "position"),
            lever_reason=reason if isinstance(reason, str) else "",
        )
        grouped.setdefault((inst_id, mgn_mode, scope_side(mgn_mode, pos_side)), []).append(leg)
    return [
        Scope(key[0], key[1], key[2], tuple(sorted(legs, key=lambda leg: leg.pos_side)))
        for key, legs in sorted(grouped.items())
    ]


@dataclass(frozen=True)
class CurrentLeverage:
    lever: float | None
    source: str  # position | leverage_info | config | unknown
    problem: str  # why the lever is None


def current_leverage(scope: Scope) -> CurrentLeverage:
    """The scope's leverage from its legs: they must agree, since OKX keeps one per scope."""
    known = [leg for leg in scope.legs if leg.lever is not None and leg.lever_source != "unknown"]
    # A configured default stands in for an unreadable leverage; a leg that was read wins.
    read = [leg for leg in known if leg.lever_source != "config"] or known
    if not read:
        reasons = sorted({leg.lever_reason for leg in scope.legs if leg.lever_reason})
        return CurrentLeverage(None, "unknown", "; ".join(reasons) or "current leverage unknown")
    levers = [leg.lever for leg in read if leg.lever is not None]
    if max(levers) - min(levers) > 1e-9 * max(levers):
        each = ", ".join(f"{leg.pos_side} {leg.lever:g}x ({leg.lever_source})" for leg in read)
        return CurrentLeverage(
            None,
            "unknown",
            f"the legs of one {scope.mgn_mode} scope report different leverage ({each})",
        )
    best = min(read, key=lambda leg: _SOURCE_RANK.get(leg.lever_source, len(_SOURCE_RANK)))
    return CurrentLeverage(best.lever, best.lever_source, "")
