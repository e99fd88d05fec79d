"""Property tests of the pure policy (hypothesis)."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from posguard.leverage.policy import LeveragePolicy, target_leverage
from posguard.leverage.volatility import Volatility, estimate

volatility = st.one_of(
    st.none(),
    st.just(math.nan),
    st.just(math.inf),
    st.floats(max_value=0.0),
    st.floats(min_value=1e-9, max_value=10.0),
)
bound = st.one_of(st.none(), st.just(math.nan), st.floats(min_value=1.0, max_value=125.0))
policies = st.builds(
    LeveragePolicy,
    target_vol=st.floats(min_value=0.01, max_value=2.0),
    vol_floor=st.floats(min_value=1e-4, max_value=0.1),
    min_lever=st.floats(min_value=1.0, max_value=5.0),
    max_lever=st.floats(min_value=1.0, max_value=125.0),
    hysteresis=st.floats(min_value=0.0, max_value=0.5),
)


@settings(max_examples=300, deadline=None)
@given(vol=volatility, policy=policies, instrument=bound, tier=bound)
def test_target_is_within_every_bound(
    vol: float | None, policy: LeveragePolicy, instrument: float | None, tier: float | None
) -> None:
    target, upper, _ = target_leverage(vol, policy, {"instrument": instrument, "tier": tier})
    finite_bounds = [
        b
        for b in (policy.max_lever, instrument, tier)
        if b is not None and math.isfinite(b) and b > 0
    ]
    if target is None:
        return  # no usable volatility: the current leverage is kept
    for limit in finite_bounds:
        assert target <= limit + 1e-12
    assert target >= min(policy.min_lever, *finite_bounds) - 1e-12
    assert target > 0
    assert upper == min(finite_bounds)


@settings(max_examples=300, deadline=None)
@given(
    low=st.floats(min_value=1e-6, max_value=5.0),
    extra=st.floats(min_value=0.0, max_value=5.0),
    policy=policies,
    tier=bound,
)
def test_higher_volatility_never_gives_a_higher_target(
    low: float, extra: float, policy: LeveragePolicy, tier: float | None
) -> None:
    bounds = {"instrument": 50.0, "tier": tier}
    calm, _, _ = target_leverage(low, policy, bounds)
    wild, _, _ = target_leverage(low + extra, policy, bounds)
    assert calm is not None
    assert wild is not None
    assert wild <= calm


@settings(max_examples=200, deadline=None)
@given(vol=st.one_of(st.none(), st.just(math.nan), st.floats(max_value=0.0)), policy=policies)
def test_unusable_volatility_never_raises_and_gives_no_target(
    vol: float | None, policy: LeveragePolicy
) -> None:
    target, _, _ = target_leverage(vol, policy, {"instrument": 50.0, "tier": None})
    assert target is None


@settings(max_examples=100, deadline=None)
@given(
    closes=st.lists(
        st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.none()), max_size=80
    ),
    window=st.integers(min_value=-3, max_value=100),
)
def test_estimate_never_raises(closes: list[float | None], window: int) -> None:
    import pandas as pd

    frame = pd.DataFrame(
        {
            "ts": [60_000 * i for i in range(len(closes))],
            "o": closes,
            "h": closes,
            "l": closes,
            "c": closes,
            "confirm": [1] * len(closes),
        }
    )
    result = estimate(frame, window=window)
    assert isinstance(result, Volatility)
    if result.value is None:
        assert result.text == "N/A"
        assert result.reason
