"""The leverage policy: volatility in, a target leverage and an action out (pure).

target = clamp(target_vol / max(vol, vol_floor), min_lever, upper) rounded down to a whole
leverage, where upper = min(configured max, the instrument's max, the max of the position
tier its current size falls in). Exchange limits win over `min_lever`. A target within the
hysteresis band of the current leverage is kept, so small volatility moves do not churn.
Missing volatility keeps the current leverage; unknown current leverage is skipped.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from posguard.leverage.volatility import Volatility

PLAN_COLUMNS = [
    "instId",
    "posSide",
    "mgnMode",
    "size",
    "lever",
    "lever_source",
    "volatility",
    "volatility_text",
    "target",
    "upper",
    "bound",
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


def tier_max(
    tiers: pd.DataFrame | None, inst_family: str | None, mgn_mode: str, size: float
) -> float | None:
    """The maxLever of the tier that holds `size` contracts, or None when unknown."""
    if tiers is None or tiers.empty or not inst_family:
        return None
    rows = tiers[tiers["instFamily"] == inst_family]
    if "tdMode" in rows.columns:
        rows = rows[rows["tdMode"] == mgn_mode]
    holding = rows[(rows["minSz"].fillna(0) <= size) & (rows["maxSz"].fillna(np.inf) >= size)]
    if holding.empty:
        return None
    return float(holding["maxLever"].min())


def plan(
    positions: pd.DataFrame,
    volatility: Mapping[str, Volatility],
    instruments: pd.DataFrame,
    tiers: pd.DataFrame | None,
    policy: LeveragePolicy,
    *,
    instrument_overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> pd.DataFrame:
    """One row per open position: current lever, volatility, target, bound, action, why."""
    specs: dict[str, dict[str, Any]] = {  # the last record of an instId wins
        str(r["instId"]): {str(k): v for k, v in r.items()} for r in instruments.to_dict("records")
    }
    rows: list[dict[str, Any]] = []
    open_positions = positions[positions["is_open"]]
    for raw in open_positions.to_dict("records"):
        record = {str(k): v for k, v in raw.items()}
        inst_id = str(record["instId"])
        rule = policy.with_overrides((instrument_overrides or {}).get(inst_id))
        vol = volatility.get(inst_id) or Volatility(None, "realized", 0, "no candles fetched")
        current = _finite_positive(record.get("lever"))
        spec = specs.get(inst_id, {})
        size = float(record.get("size") or 0.0)
        family = spec.get("instFamily")
        bounds: dict[str, float | None] = {
            "instrument": _finite_positive(spec.get("maxLever")),
            "tier": tier_max(
                tiers, family if isinstance(family, str) else None, str(record["mgnMode"]), size
            ),
        }
        target, upper, bound = target_leverage(vol.value, rule, bounds)
        action, reason = _decide(record, current, target, vol, rule, upper, bound)
        rows.append(
            {
                "instId": inst_id,
                "posSide": record["posSide"],
                "mgnMode": record["mgnMode"],
                "size": size,
                "lever": current,
                "lever_source": record.get("lever_source") or "position",
                "volatility": vol.value,
                "volatility_text": vol.text,
                "target": target,
                "upper": upper if math.isfinite(upper) else None,
                "bound": bound,
                "action": action,
                "reason": reason,
            }
        )
    return pd.DataFrame(rows, columns=PLAN_COLUMNS)


def _decide(
    record: Mapping[str, Any],
    current: float | None,
    target: float | None,
    vol: Volatility,
    policy: LeveragePolicy,
    upper: float,
    bound: str,
) -> tuple[str, str]:
    if current is None:
        why = record.get("lever_reason") or "current leverage unknown"
        return "skip", f"{why}; a leverage that cannot be read is not changed"
    if target is None:
        return "keep", f"volatility N/A ({vol.reason}); keeping the current {current:g}x"
    if current > upper:
        return "lower", f"current {current:g}x is above the {bound} limit {upper:g}x"
    if target == current:
        return "keep", f"target {target:g}x equals the current leverage"
    change = abs(target - current) / current
    if change <= policy.hysteresis:
        return "keep", (
            f"target {target:g}x is within {policy.hysteresis:.0%} of the current "
            f"{current:g}x (hysteresis)"
        )
    limit = f", capped by the {bound} limit {upper:g}x" if bound not in ("none", "min") else ""
    direction = "raise" if target > current else "lower"
    return direction, (f"volatility {vol.text}/day targets {target:g}x (from {current:g}x){limit}")
