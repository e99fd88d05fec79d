"""The leverage policy: volatility in, a target leverage and an action per scope out (pure).

OKX sets leverage per scope (posguard.leverage.scope), so the plan has one row per scope.
target = clamp(target_vol / max(vol, vol_floor), min_lever, upper) rounded down to a whole
leverage, where upper = min(configured max, the instrument's max, the tightest position tier
of the scope's legs) (posguard.leverage.bounds). Exchange limits win over `min_lever`. A target
within the hysteresis band of the current leverage is kept, so small volatility moves do not
churn. Missing volatility, or a tier bound that cannot be known (a size past the last tier,
tiers not read), keeps the current leverage; an unknown current leverage is skipped.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import pandas as pd

from posguard.leverage.bounds import ScopeBound, TierTable, scope_bound
from posguard.leverage.scope import CurrentLeverage, current_leverage, scopes_of
from posguard.leverage.volatility import Volatility

PLAN_COLUMNS = [
    "instId",
    "mgnMode",
    "posSide",  # the scope's: net | long | short (isolated) | long+short (cross, both legs)
    "legs",  # the open positions the scope covers: posSide, size, lever, tier_max each
    "size",  # contracts of the largest leg
    "lever",
    "lever_source",
    "volatility",
    "volatility_text",
    "target",
    "upper",  # the bound on the target; None when it cannot be known (then: keep)
    "bound",  # where the bound comes from: config | instrument | tier | unknown
    "bound_detail",
    "capped",  # which bound (or "min") moved the target; "none" when none did
    "action",
    "reason",
]


@dataclass(frozen=True)
class LeveragePolicy:
    target_vol: float = 0.25  # daily volatility wanted on the margin (lever x asset vol)
    vol_floor: float = 0.005  # never divide by less than this
    min_lever: float = 1.0
    max_lever: float = 20.0  # the configured ceiling
    hysteresis: float = 0.15  # relative band around the current leverage that is kept

    def with_overrides(self, overrides: Mapping[str, Any] | None) -> LeveragePolicy:
        if not overrides:
            return self
        known = {k: v for k, v in overrides.items() if v is not None}
        return replace(self, **known)


def _finite_positive(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and number > 0 else None


def target_leverage(
    volatility: float | None, policy: LeveragePolicy, upper_bounds: Mapping[str, float | None]
) -> tuple[float | None, float, str]:
    """(target, upper, bound) for one position; target None when volatility is unusable.

    `upper_bounds` maps a bound's name (config, instrument, tier) to its value; unknown
    bounds (None, NaN, <= 0) are ignored.
    """
    bounds = {"config": policy.max_lever, **upper_bounds}
    usable = {
        k: v for k, v in ((k, _finite_positive(v)) for k, v in bounds.items()) if v is not None
    }
    bound_name = min(usable, key=lambda k: usable[k]) if usable else "none"
    upper = usable.get(bound_name, math.inf)
    vol = _finite_positive(volatility)
    if vol is None:
        return None, upper, "none"
    raw = policy.target_vol / max(vol, policy.vol_floor)
    lower = min(policy.min_lever, upper)
    clamped = min(max(raw, lower), upper)
    # Whole leverage is what OKX surely accepts (fractional acceptance is unconfirmed); when
    # no whole number fits between the bounds, the bound itself is the target.
    whole = math.floor(clamped)
    target = float(whole) if whole >= max(lower, 1) else clamped
    applied = bound_name if raw >= upper else ("min" if raw <= lower else "none")
    return float(target), upper, applied


def plan(
    positions: pd.DataFrame,
    volatility: Mapping[str, Volatility],
    instruments: pd.DataFrame,
    tiers: pd.DataFrame | None,
    policy: LeveragePolicy,
    *,
    instrument_overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> pd.DataFrame:
    """One row per leverage scope of the open positions (never two rows for one scope).

    Each row: the legs it covers, the current leverage and its source, the volatility, the
    bound and where it comes from, the target, the action and why.
    """
    specs: dict[str, dict[str, Any]] = {  # the last record of an instId wins
        str(r["instId"]): {str(k): v for k, v in r.items()} for r in instruments.to_dict("records")
    }
    tier_table = TierTable(tiers)
    rows: list[dict[str, Any]] = []
    for scope in scopes_of(positions):
        rule = policy.with_overrides((instrument_overrides or {}).get(scope.inst_id))
        vol = volatility.get(scope.inst_id) or Volatility(None, "realized", 0, "no candles fetched")
        spec = specs.get(scope.inst_id, {})
        family = spec.get("instFamily")
        bound = scope_bound(
            scope,
            config_max=rule.max_lever,
            instrument_max=spec.get("maxLever"),
            inst_family=family if isinstance(family, str) else None,
            tiers=tier_table,
        )
        current = current_leverage(scope)
        target: float | None = None
        capped = "none"
        if bound.upper is not None:
            target, _, capped = target_leverage(
                vol.value, rule, {"instrument": bound.instrument_max, "tier": bound.tier_max}
            )
        action, reason = _decide(current, target, vol, rule, bound, capped)
        rows.append(
            {
                "instId": scope.inst_id,
                "mgnMode": scope.mgn_mode,
                "posSide": scope.pos_side,
                "legs": [
                    {**leg.to_json(), "tier_max": tier.max_lever} for leg, tier in bound.leg_tiers
                ],
                "size": scope.largest.size,
                "lever": current.lever,
                "lever_source": current.source,
                "volatility": vol.value,
                "volatility_text": vol.text,
                "target": target,
                "upper": bound.upper,
                "bound": bound.source,
                "bound_detail": bound.detail,
                "capped": capped,
                "action": action,
                "reason": reason,
            }
        )
    return pd.DataFrame(rows, columns=PLAN_COLUMNS)


def _same(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


def _decide(
    current: CurrentLeverage,
    target: float | None,
    vol: Volatility,
    policy: LeveragePolicy,
    bound: ScopeBound,
    capped: str,
) -> tuple[str, str]:
    if current.lever is None:
        return "skip", f"{current.problem}; a leverage that cannot be read is not changed"
    lever = current.lever
    if bound.upper is None:
        return "keep", f"{bound.detail}; keeping the current {lever:g}x"
    if target is None:
        return "keep", f"volatility N/A ({vol.reason}); keeping the current {lever:g}x"
    upper = bound.upper
    if lever > upper and not _same(lever, upper):
        return "lower", (
            f"current {lever:g}x is above the {bound.source} limit {upper:g}x ({bound.detail})"
        )
    if _same(target, lever):
        return "keep", f"target {target:g}x equals the current leverage"
    change = abs(target - lever) / lever
    if change <= policy.hysteresis:
        return "keep", (
            f"target {target:g}x is within {policy.hysteresis:.0%} of the current "
            f"{lever:g}x (hysteresis)"
        )
    limit = f", capped by the {bound.source} limit {upper:g}x" if capped == bound.source else ""
    direction = "raise" if target > lever else "lower"
    return direction, f"volatility {vol.text}/day targets {target:g}x (from {lever:g}x){limit}"
