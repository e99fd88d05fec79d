"""The pure engine on frames: `posguard.drift.reconcile` called directly with parsed positions,
a registry frame and evidence, one row per rule of design.md's reconciliation section.

No simulator, no registry database, no replay: what goes in is what the flow's fetch stage and
the registry read hand it; what comes out is the events, the memory and the heals.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

from posguard.drift import DriftSettings, EngineMemory, reconcile
from posguard.drift.engine import CycleInput, empty_registry
from posguard.frames import parse_positions, parse_positions_history
from tests.helpers import xrp_position

T0 = 1_766_188_800_000  # 2025-12-20T00:00:00Z
OPENED = T0 - 600_000  # the position's life began ten minutes before
WRITTEN = T0 - 300_000  # the bot last wrote five minutes before
SETTINGS = DriftSettings(confirm_after=2, confirm_interval_seconds=20, grace_seconds=5)
LOTS = {"XRP-USDT-SWAP": 0.1}


def okx(**fields: str) -> dict[str, Any]:
    """The incident's open XRP position as OKX sends it, in the life the registry records."""
    return xrp_position(**{"posId": "p1", "cTime": str(OPENED), "uTime": str(OPENED), **fields})


def row(**fields: Any) -> dict[str, Any]:
    """The bot's registry row for it (the life recorded)."""
    values: dict[str, Any] = {
        "instId": "XRP-USDT-SWAP",
        "posSide": "net",
        "mgnMode": "cross",
        "pos": 108.0,
        "avgPx": 1.93,
        "lever": 5.0,
        "version": 1,
        "updated_at_ms": WRITTEN,
        "recorded_at_ms": WRITTEN,
        "posId": "p1",
        "cTime": OPENED,
    }
    values.update(fields)
    return values


def registry(*rows: dict[str, Any]) -> pd.DataFrame:
    empty = empty_registry()
    if not rows:
        return empty
    frame = pd.DataFrame(list(rows))
    return frame.astype({name: empty[name].dtype for name in empty.columns})


def cycle(
    positions: list[dict[str, Any]] | None,
    rows: list[dict[str, Any]],
    *,
    at_ms: int = T0,
    history: list[dict[str, Any]] | None = None,
) -> CycleInput:
    return CycleInput(
        account="main",
        at_ms=at_ms,
        positions=None if positions is None else parse_positions(positions, account="main"),
        registry=registry(*rows),
        history=parse_positions_history(history or []),
        lot_sizes=LOTS,
    )


def outcome(events: list[Any]) -> list[tuple[str, str, str]]:
    return [(e.kind, e.status, e.cause) for e in events]


CASES: dict[str, tuple[list[dict[str, Any]] | None, list[dict[str, Any]], list[Any]]] = {
    "agreement: nothing to say": ([okx()], [row()], []),
    "on the exchange only": (
        [okx()],
        [],
        [("DRIFT_ADD", "suspected", "unknown")],
    ),
    "in the registry only, no evidence": (
        [],
        [row()],
        [("DRIFT_REMOVE", "suspected", "unknown")],
    ),
    "a closed row (pos 0) and no position: agreement": ([], [row(pos=0.0)], []),
    "net mode, opposite signs": (
        [okx(pos="-108")],
        [row()],
        [("DRIFT_SIDE", "suspected", "unknown")],
    ),
    "a size differing by more than half a lot": (
        [okx(pos="50")],
        [row()],
        [("DRIFT_SIZE", "suspected", "size_changed")],
    ),
    "a size within half a lot is the same size": ([okx(pos="108.04")], [row()], []),
    "leverage differs": (
        [okx(lever="10")],
        [row()],
        [("DRIFT_LEVER", "suspected", "leverage_changed")],
    ),
    'lever "" is unknown, not a difference': ([okx(lever="")], [row()], []),
    "a newer life than the row records: reopened": (
        [okx(cTime=str(T0 - 60_000), pos="30")],
        [row()],
        # A new cTime is evidence: confirmed at first sight (once it is older than the grace).
        [("DRIFT_SIZE", "confirmed", "reopened")],
    ),
    "a row written within the grace window is skipped (the bot is acting on it)": (
        [],
        [row(recorded_at_ms=T0 - 2_000, updated_at_ms=T0 - 2_000)],
        [],
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_one_cycle(name: str) -> None:
    positions, rows, expected = CASES[name]
    result = reconcile(cycle(positions, rows), EngineMemory(), SETTINGS)
    assert result.skipped is None
    assert outcome(result.events) == expected


def test_a_failed_positions_call_is_not_observed_never_flat() -> None:
    result = reconcile(cycle(None, [row()]), EngineMemory(), SETTINGS)
    assert result.events == []
    assert result.skipped == "not observed: positions failed"


def test_a_snapshot_older_than_the_last_applied_is_dropped() -> None:
    memory = EngineMemory(last_snapshot_ms=T0 + 60_000)
    result = reconcile(cycle([], [row()]), memory, SETTINGS)
    assert result.events == []
    assert result.skipped is not None
    assert "older than the last applied" in result.skipped


def test_an_old_life_missing_is_confirmed_by_a_second_distinct_observation_only() -> None:
    """A life that began before the lookback (its end could be out of reach): two distinct
    observations confirm; two within `confirm_interval_seconds` count once."""
    old = row(cTime=T0 - 7_200_000)
    first = reconcile(cycle([], [old]), EngineMemory(), SETTINGS)
    same_moment = reconcile(cycle([], [old], at_ms=T0 + 5_000), first.memory, SETTINGS)
    later = reconcile(cycle([], [old], at_ms=T0 + 30_000), same_moment.memory, SETTINGS)
    assert outcome(first.events) == [("DRIFT_REMOVE", "suspected", "unknown")]
    assert outcome(same_moment.events) == []  # 5 s later: the same observation
    assert outcome(later.events) == [("DRIFT_REMOVE", "confirmed", "unknown")]
    assert later.events[0].evidence["observations"] == 2
    assert later.events[0].evidence["discrepancy"] == first.events[0].evidence["discrepancy"]


def test_a_recent_life_missing_without_evidence_is_held_until_the_escalation() -> None:
    """OKX records every close: a life begun within the lookback with no recorded end is not
    gone because answers lack it; only the escalation confirms it."""
    memory = EngineMemory()
    statuses: list[tuple[int, str]] = []
    confirmed = []
    for n in range(SETTINGS.escalate_after + 3):
        result = reconcile(cycle([], [row()], at_ms=T0 + n * 30_000), memory, SETTINGS)
        memory = result.memory
        statuses += [(n + 1, e.status) for e in result.events]
        confirmed += [e for e in result.events if e.status == "confirmed"]
    # One alert: the confirmation is the escalation (no "still unresolved" a cycle later).
    assert statuses == [(1, "suspected"), (SETTINGS.escalate_after, "confirmed")]
    assert confirmed[0].evidence["held_until_escalation"] is True


def test_a_recorded_liquidation_of_the_life_confirms_at_once_and_heal_writes_zero() -> None:
    liquidation = {
        "instType": "SWAP",
        "instId": "XRP-USDT-SWAP",
        "mgnMode": "cross",
        "posSide": "net",
        "type": "3",
        "posId": "p1",
        "cTime": str(OPENED),
        "uTime": str(T0 - 60_000),
        "openMaxPos": "108",
        "closeTotalPos": "108",
        "direction": "long",
    }
    heal = DriftSettings(confirm_after=2, confirm_interval_seconds=20, grace_seconds=5, heal="heal")
    result = reconcile(cycle([], [row()], history=[liquidation]), EngineMemory(), heal)
    assert outcome(result.events) == [("DRIFT_REMOVE", "confirmed", "liquidated")]
    assert [(h.key, h.pos, h.expected_version) for h in result.heals] == [
        (("XRP-USDT-SWAP", "net", "cross"), "0", 1)
    ]


def test_a_close_of_an_earlier_life_says_nothing_about_this_one() -> None:
    earlier = {
        "instType": "SWAP",
        "instId": "XRP-USDT-SWAP",
        "mgnMode": "cross",
        "posSide": "net",
        "type": "2",
        "posId": "p1",  # OKX reuses the posId for 30 days ...
        "cTime": str(OPENED - 900_000),  # ... but this life began before the recorded one
        "uTime": str(OPENED - 60_000),
        "openMaxPos": "40",
        "closeTotalPos": "40",
        "direction": "long",
    }
    result = reconcile(cycle([], [row()], history=[earlier]), EngineMemory(), SETTINGS)
    assert outcome(result.events) == [("DRIFT_REMOVE", "suspected", "unknown")]


def test_an_old_position_seen_open_a_cycle_ago_is_not_gone_because_answers_lack_it() -> None:
    """A position opened two hours ago (before the lookback) and seen open by the last cycle:
    any end since would be in the history read now. Two answers without it and no recorded
    end hold it (found in review: only lives begun within the lookback were held)."""
    old = row(cTime=T0 - 7_200_000)
    present = okx(cTime=str(T0 - 7_200_000))
    memory = reconcile(cycle([present], [old]), EngineMemory(), SETTINGS).memory
    statuses = []
    for n in (1, 2, 3):
        result = reconcile(cycle([], [old], at_ms=T0 + n * 30_000), memory, SETTINGS)
        memory = result.memory
        statuses += [e.status for e in result.events]
    assert statuses == ["suspected"]
