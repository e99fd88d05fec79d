"""The plan has one row per OKX leverage scope (pure policy over parsed frames)."""

from __future__ import annotations

from typing import Any

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from posguard.frames import (
    parse_instruments,
    parse_leverage_info,
    parse_position_tiers,
    parse_positions,
)
from posguard.leverage import resolve_leverage
from posguard.leverage.policy import LeveragePolicy, plan
from posguard.leverage.volatility import Volatility

CALM = Volatility(0.005, "realized", 60)  # asks for 50x at target_vol 0.25
POLICY = LeveragePolicy(max_lever=100.0)
# XRP-like tiers in contracts: 50x up to 259.1, 25x up to 1036.3, ... 2x up to 259067.4.
XRP_TIERS = [
    ("259.1", "50"),
    ("1036.3", "25"),
    ("5181.3", "10"),
    ("25906.7", "5"),
    ("259067.4", "2"),
]


def position(inst: str, side: str, size: str, lever: str = "5", mgn: str = "cross") -> Any:
    signed = f"-{size}" if side == "net_short" else size
    return {
        "instType": "SWAP",
        "instId": inst,
        "mgnMode": mgn,
        "posSide": "net" if side.startswith("net") else side,
        "pos": signed,
        "lever": lever,
    }


def instrument(inst: str, family: str, max_lever: str = "50") -> Any:
    return {"instType": "SWAP", "instId": inst, "instFamily": family, "lever": max_lever}


def tiers(family: str, rows: list[tuple[str, str]], modes: tuple[str, ...] = ("cross",)) -> Any:
    frames = []
    for mode in modes:
        low = "0"
        records = []
        for number, (max_sz, max_lever) in enumerate(rows, start=1):
            records.append(
                {
                    "instFamily": family,
                    "tier": str(number),
                    "minSz": low,
                    "maxSz": max_sz,
                    "maxLever": max_lever,
                }
            )
            low = max_sz
        frame = parse_position_tiers(records)
        frame["tdMode"] = mode
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def make_plan(
    records: list[Any],
    *,
    tier_frame: pd.DataFrame | None,
    instruments: list[Any] | None = None,
    vol: Volatility = CALM,
    policy: LeveragePolicy = POLICY,
) -> pd.DataFrame:
    positions = resolve_leverage(parse_positions(records), parse_leverage_info([]))
    specs = parse_instruments(instruments or [instrument("XRP-USDT-SWAP", "XRP-USDT")])
    volatility = {r["instId"]: vol for r in records}
    return plan(positions, volatility, specs, tier_frame, policy)


def test_cross_legs_in_long_short_mode_are_one_scope_bounded_by_the_large_leg() -> None:
    rows = make_plan(
        [
            position("XRP-USDT-SWAP", "long", "600"),  # tier 2: 25x
            position("XRP-USDT-SWAP", "short", "5"),  # tier 1: 50x on its own
        ],
        tier_frame=tiers("XRP-USDT", XRP_TIERS),
    )
    assert len(rows) == 1
    row = rows.iloc[0]
    assert (row["instId"], row["mgnMode"], row["posSide"]) == (
        "XRP-USDT-SWAP",
        "cross",
        "long+short",
    )
    assert [(leg["posSide"], leg["size"], leg["tier_max"]) for leg in row["legs"]] == [
        ("long", 600.0, 25.0),
        ("short", 5.0, 50.0),
    ]
    assert row["size"] == 600.0
    assert (row["upper"], row["bound"]) == (25.0, "tier")
    assert "long leg" in row["bound_detail"]
    assert (row["target"], row["action"]) == (25.0, "raise")
    assert "capped by the tier limit 25x" in row["reason"]


def test_isolated_legs_in_long_short_mode_are_a_scope_each() -> None:
    rows = make_plan(
        [
            position("XRP-USDT-SWAP", "long", "600", mgn="isolated"),
            position("XRP-USDT-SWAP", "short", "5", mgn="isolated"),
        ],
        tier_frame=tiers("XRP-USDT", XRP_TIERS, modes=("isolated",)),
    )
    by_side = rows.set_index("posSide")
    assert sorted(by_side.index) == ["long", "short"]
    assert by_side.loc["long", "target"] == 25.0
    assert by_side.loc["short", "target"] == 50.0  # the small leg is not bound by the large one


def test_net_mode_is_one_scope_per_instrument_and_margin_mode() -> None:
    rows = make_plan(
        [
            position("XRP-USDT-SWAP", "net", "600", mgn="cross"),
            position("XRP-USDT-SWAP", "net_short", "5", mgn="isolated"),
        ],
        tier_frame=tiers("XRP-USDT", XRP_TIERS, modes=("cross", "isolated")),
    )
    assert sorted(zip(rows["mgnMode"], rows["posSide"], strict=True)) == [
        ("cross", "net"),
        ("isolated", "net"),
    ]
    assert sorted(rows["target"]) == [25.0, 50.0]


def test_a_size_past_the_last_tier_keeps_the_leverage_and_says_why() -> None:
    rows = make_plan(
        [position("XRP-USDT-SWAP", "long", "300000", lever="2")],
        tier_frame=tiers("XRP-USDT", XRP_TIERS),
    )
    row = rows.iloc[0]
    assert row["action"] == "keep"
    assert row["bound"] == "unknown"
    assert pd.isna(row["upper"])
    assert pd.isna(row["target"])
    assert "past the last position tier" in row["reason"]
    assert "259067" in row["reason"]


def test_unknown_tiers_keep_the_leverage_and_say_why() -> None:
    for tier_frame in (
        None,
        tiers("OTHER-USDT", XRP_TIERS),
        tiers("XRP-USDT", XRP_TIERS, ("isolated",)),
    ):
        row = make_plan([position("XRP-USDT-SWAP", "net", "10")], tier_frame=tier_frame).iloc[0]
        assert row["action"] == "keep", row["reason"]
        assert "no position tiers of XRP-USDT (cross)" in row["reason"]


def test_legs_of_one_cross_scope_that_disagree_are_skipped() -> None:
    rows = make_plan(
        [
            position("XRP-USDT-SWAP", "long", "10", lever="5"),
            position("XRP-USDT-SWAP", "short", "10", lever="3"),
        ],
        tier_frame=tiers("XRP-USDT", XRP_TIERS),
    )
    assert len(rows) == 1
    assert rows.iloc[0]["action"] == "skip"
    assert "long 5x" in rows.iloc[0]["reason"]
    assert "short 3x" in rows.iloc[0]["reason"]


def test_one_readable_leg_gives_the_shared_scope_its_leverage() -> None:
    rows = make_plan(
        [
            position("XRP-USDT-SWAP", "long", "10", lever="5"),
            position("XRP-USDT-SWAP", "short", "10", lever=""),
        ],
        tier_frame=tiers("XRP-USDT", XRP_TIERS),
    )
    row = rows.iloc[0]
    assert (row["lever"], row["lever_source"], row["action"]) == (5.0, "position", "raise")


def test_a_lever_above_the_shared_tier_is_lowered_to_it() -> None:
    rows = make_plan(
        [
            position("XRP-USDT-SWAP", "long", "600", lever="40"),
            position("XRP-USDT-SWAP", "short", "5", lever="40"),
        ],
        tier_frame=tiers("XRP-USDT", XRP_TIERS),
    )
    row = rows.iloc[0]
    assert (row["action"], row["target"]) == ("lower", 25.0)
    assert "above the tier limit 25x" in row["reason"]


sizes = st.decimals(min_value="0.1", max_value="300000", places=1).map(str)
legs = st.lists(
    st.tuples(
        st.sampled_from(["XRP-USDT-SWAP", "DOGE-USDT-SWAP"]),
        st.sampled_from(["cross", "isolated"]),
        st.sampled_from(["long", "short"]),
        sizes,
        st.sampled_from(["1", "3", "20", "50", ""]),
    ),
    min_size=1,
    max_size=8,
    unique_by=lambda leg: (leg[0], leg[1], leg[2]),
)
BOTH = ("cross", "isolated")
DOGE_TIERS = [("333.3", "50"), ("1333.3", "25"), ("333333.3", "2")]
TWO_FAMILIES = pd.concat(
    [tiers("XRP-USDT", XRP_TIERS, BOTH), tiers("DOGE-USDT", DOGE_TIERS, BOTH)], ignore_index=True
)
TWO_INSTRUMENTS = [
    instrument("XRP-USDT-SWAP", "XRP-USDT"),
    instrument("DOGE-USDT-SWAP", "DOGE-USDT"),
]


@settings(max_examples=100, deadline=None)
@given(
    legs=legs,
    vol=st.floats(min_value=0.001, max_value=1.0),
    max_lever=st.sampled_from([5.0, 20.0, 100.0]),
)
def test_one_row_per_scope_and_every_target_within_each_legs_tier(
    legs: list[tuple[str, str, str, str, str]], vol: float, max_lever: float
) -> None:
    records = [position(inst, side, size, lever, mgn) for inst, mgn, side, size, lever in legs]
    rows = make_plan(
        records,
        tier_frame=TWO_FAMILIES,
        instruments=TWO_INSTRUMENTS,
        vol=Volatility(vol, "realized", 60),
        policy=LeveragePolicy(max_lever=max_lever),
    )
    keys = list(zip(rows["instId"], rows["mgnMode"], rows["posSide"], strict=True))
    assert len(keys) == len(set(keys))
    covered = sorted(
        (row["instId"], row["mgnMode"], leg["posSide"])
        for row in rows.to_dict("records")
        for leg in row["legs"]
    )
    assert covered == sorted((inst, mgn, side) for inst, mgn, side, _, _ in legs)
    for row in rows.to_dict("records"):
        if row["action"] not in ("raise", "lower"):
            continue
        for leg in row["legs"]:
            assert leg["tier_max"] is not None
            assert row["target"] <= leg["tier_max"]
        assert row["target"] <= max_lever
