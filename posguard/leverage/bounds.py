"""The ceiling on a scope's leverage: configured max, instrument max, position tiers (pure).

OKX's position tiers (public/position-tiers, sizes in contracts) give the highest leverage a
position of a given size may carry. A scope's tier bound is the tightest tier of its legs:
the large leg of a hedged cross scope binds the small one too. A size past the last tier, or
tiers that were not fetched, leave the bound unknown: the plan then keeps the leverage rather
than guess a ceiling OKX would refuse (59104) or, worse, accept above the tier.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from typing import Any

import pandas as pd

from posguard.leverage.scope import Leg, Scope


def _positive(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and number > 0 else None


@dataclass(frozen=True)
class TierBound:
    max_lever: float | None
    tier: int | None
    problem: str  # why max_lever is None


@dataclass
class _Ladder:
    ceilings: list[float]  # maxSz ascending (no maxSz: unbounded)
    levers: list[float | None]
    tiers: list[int | None]


class TierTable:
    """Position tiers by (instFamily, margin mode), sorted once per plan for quick lookups."""

    def __init__(self, tiers: pd.DataFrame | None) -> None:
        self._ladders: dict[tuple[str, str | None], _Ladder] = {}
        if tiers is None or tiers.empty:
            return
        frame = pd.DataFrame(
            {
                "family": tiers["instFamily"],
                "mode": tiers["tdMode"] if "tdMode" in tiers.columns else "",
                "ceiling": tiers["maxSz"].astype("float64").fillna(math.inf),
                "lever": tiers["maxLever"].astype("float64"),
                "tier": tiers["tier"],
            }
        ).sort_values(["ceiling", "tier"], kind="stable")
        for row in frame.to_dict("records"):
            mode = row["mode"] if isinstance(row["mode"], str) and row["mode"] else None
            key = (str(row["family"]), mode)
            ladder = self._ladders.setdefault(key, _Ladder([], [], []))
            ladder.ceilings.append(float(row["ceiling"]))
            ladder.levers.append(_positive(row["lever"]))
            tier = row["tier"]
            ladder.tiers.append(int(tier) if isinstance(tier, int) else None)

    def bound(self, inst_family: str | None, mgn_mode: str, size: float) -> TierBound:
        """The maxLever of the tier holding `size` contracts of `inst_family` in `mgn_mode`.

        A size between two tiers (lot rounding) belongs to the higher one, the stricter one.
        """
        if not inst_family:
            return TierBound(None, None, "the instrument's family is unknown, so are its tiers")
        ladder = self._ladders.get((inst_family, mgn_mode)) or self._ladders.get(
            (inst_family, None)
        )
        if ladder is None:
            return TierBound(
                None, None, f"no position tiers of {inst_family} ({mgn_mode}) were read"
            )
        index = bisect.bisect_left(ladder.ceilings, size)
        if index == len(ladder.ceilings):
            return TierBound(
                None,
                None,
                f"{size:.10g} contracts are past the last position tier of {inst_family} "
                f"({mgn_mode}, up to {ladder.ceilings[-1]:.10g} contracts)",
            )
        lever, tier = ladder.levers[index], ladder.tiers[index]
        if lever is None:
            return TierBound(None, tier, f"tier {tier} of {inst_family} has no usable maxLever")
        return TierBound(lever, tier, "")


@dataclass(frozen=True)
class ScopeBound:
    """The scope's ceiling and where it comes from; `upper` None when it cannot be known."""

    upper: float | None
    source: str  # config | instrument | tier | unknown
    detail: str
    instrument_max: float | None
    tier_max: float | None
    leg_tiers: tuple[tuple[Leg, TierBound], ...]


def scope_bound(
    scope: Scope,
    *,
    config_max: float,
    instrument_max: Any,
    inst_family: str | None,
    tiers: TierTable,
) -> ScopeBound:
    leg_tiers = tuple(
        (leg, tiers.bound(inst_family, scope.mgn_mode, leg.size)) for leg in scope.legs
    )
    instrument = _positive(instrument_max)
    unknown = [(leg, bound) for leg, bound in leg_tiers if bound.max_lever is None]
    if unknown:
        leg, bound = unknown[0]
        return ScopeBound(
            None,
            "unknown",
            f"tier bound unknown ({leg.pos_side} leg): {bound.problem}",
            instrument,
            None,
            leg_tiers,
        )
    # The tightest tier of the legs (the largest leg's, as tiers only tighten with size).
    leg, binding = min(leg_tiers, key=lambda item: (item[1].max_lever or math.inf, -item[0].size))
    tier_max = binding.max_lever
    if len(scope.legs) > 1:
        tier_detail = f"tier {binding.tier} for the {leg.pos_side} leg's {leg.size:g} contracts"
    else:
        tier_detail = f"tier {binding.tier} for {leg.size:g} contracts"
    candidates: list[tuple[str, float, str]] = []
    config = _positive(config_max)
    if config is not None:
        candidates.append(("config", config, "max_lever setting"))
    if instrument is not None:
        candidates.append(("instrument", instrument, "instrument maxLever"))
    if tier_max is not None:
        candidates.append(("tier", tier_max, tier_detail))
    source, upper, detail = min(candidates, key=lambda item: item[1])
    return ScopeBound(upper, source, detail, instrument, tier_max, leg_tiers)
