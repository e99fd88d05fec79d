"""The scope named in a leverage-change alert, as OKX sets leverage."""

from __future__ import annotations

import pytest

from tasks.publish import leverage_scope


@pytest.mark.parametrize(
    ("mgn_mode", "pos_side", "scope"),
    [
        ("cross", "net", "cross"),
        ("cross", "long", "cross"),  # one leverage for both legs of the instrument
        ("isolated", "net", "isolated"),
        ("isolated", "long", "isolated long"),  # per leg in long/short mode
        ("isolated", "short", "isolated short"),
    ],
)
def test_leverage_scope(mgn_mode: str, pos_side: str, scope: str) -> None:
    assert leverage_scope(mgn_mode, pos_side) == scope
