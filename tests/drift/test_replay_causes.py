"""Timelines per cause, replayed through the real engine and registry, asserted exactly."""

from __future__ import annotations

from typing import Any

import pytest

from posguard.drift import DriftEvent
from posguard.stages.replay import replay, timeline_from
from tests.drift.builders import (
    at,
    fill,
    history,
    ms,
    position,
    registry_row,
    sync,
    timeline,
    write,
)

Row = tuple[str, str, str, str, str]


def run(document: dict[str, Any], skipped: list[str] | None = None) -> list[DriftEvent]:
    notes = skipped if skipped is not None else []
    return list(replay(timeline_from(document, "test timeline"), on_skip=notes.append))


def summary(events: list[DriftEvent]) -> list[Row]:
    return [(e.to_json()["at"], e.inst_id, e.kind, e.status, e.cause) for e in events]


XRP = "XRP-USDT-SWAP"
BTC = "BTC-USDT-SWAP"


# -- spurious: the incident's XRP flap ---------------------------------------------------------


def test_incident_xrp_flap_is_suspected_then_spurious_never_confirmed() -> None:
    events = run(
        timeline(
            [sync(0, [position()]), sync(147, []), sync(178, [position()])],
            registry=[registry_row()],
        )
    )
    assert summary(events) == [
        (at(147), XRP, "DRIFT_REMOVE", "suspected", "unknown"),
        (at(178), XRP, "DRIFT_REMOVE", "resolved", "spurious"),
    ]


def test_flap_under_heal_policy_heals_nothing() -> None:
    events = run(
        timeline(
            [sync(0, [position()]), sync(147, []), sync(178, [position()])],
            registry=[registry_row()],
            heal="heal",
        )
    )
    assert [e.status for e in events] == ["suspected", "resolved"]


def test_flap_seen_first_without_memory_is_still_spurious() -> None:
    events = run(timeline([sync(30, []), sync(60, [position()])], registry=[registry_row()]))
    assert summary(events) == [
        (at(30), XRP, "DRIFT_REMOVE", "suspected", "unknown"),
        (at(60), XRP, "DRIFT_REMOVE", "resolved", "spurious"),
    ]


# -- closed, liquidated, adl: evidence confirms at first sight ---------------------------------


@pytest.mark.parametrize(("close_type", "cause"), [(2, "closed"), (3, "liquidated"), (6, "adl")])
def test_history_confirms_at_the_first_sync(close_type: int, cause: str) -> None:
    events = run(
        timeline(
            [
                sync(0, [position()]),
                sync(60, [], hist=[history(close_type=close_type, u_time=ms(50))]),
            ],
            registry=[registry_row()],
        )
    )
    assert summary(events) == [(at(60), XRP, "DRIFT_REMOVE", "confirmed", cause)]
    assert events[0].evidence["history"]["type"] == close_type


def test_liquidation_confirmed_at_the_first_sync_that_sees_it() -> None:
    btc = position(BTC, "5", pos_id="7001", mgn="isolated")
    row = {**registry_row(BTC, "5"), "mgnMode": "isolated"}
    events = run(
        timeline(
            [
                sync(0, [btc]),
                sync(30, [btc]),
                sync(
                    240,
                    [],
                    hist=[
                        history(BTC, 3, u_time=ms(230), pos_id="7001", mgn="isolated", closed="5")
                    ],
                    fills=[fill(BTC, 104, ts=ms(230), size="5")],
                ),
            ],
            registry=[row],
        )
    )
    assert summary(events) == [(at(240), BTC, "DRIFT_REMOVE", "confirmed", "liquidated")]


def test_evidence_younger_than_the_grace_window_waits_for_the_next_sync() -> None:
    # The bot may still be recording what happened a second ago: not a discrepancy yet.
    closed = [history(close_type=3, u_time=ms(239))]
    events = run(
        timeline(
            [sync(0, [position()]), sync(240, [], hist=closed), sync(270, [], hist=closed)],
            registry=[registry_row()],
        )
    )
    assert summary(events) == [
        (at(240), XRP, "DRIFT_REMOVE", "suspected", "liquidated"),
        (at(270), XRP, "DRIFT_REMOVE", "confirmed", "liquidated"),
    ]


@pytest.mark.parametrize(
    ("sub_type", "cause"), [(5, "closed"), (104, "liquidated"), (125, "adl"), (113, "closed")]
)
def test_fills_alone_are_evidence(sub_type: int, cause: str) -> None:
    events = run(
        timeline(
            [sync(60, [], fills=[fill(sub_type=sub_type, ts=ms(55))])], registry=[registry_row()]
        )
    )
    assert summary(events) == [(at(60), XRP, "DRIFT_REMOVE", "confirmed", cause)]


def test_evidence_older_than_the_lookback_does_not_count() -> None:
    events = run(
        timeline(
            [sync(7200, [], hist=[history(u_time=ms(0))])], registry=[registry_row(updated=-7200)]
        )
    )
    assert summary(events) == [(at(7200), XRP, "DRIFT_REMOVE", "suspected", "unknown")]


# -- not observed ---------------------------------------------------------------------------------


def test_a_failed_positions_call_produces_no_event() -> None:
    skipped: list[str] = []
    error = {"http": 503, "code": "50001", "msg": "Service temporarily unavailable"}
    events = run(
        timeline(
            [sync(0, error=error), sync(30, error={"timeout": True})], registry=[registry_row()]
        ),
        skipped,
    )
    assert events == []
    assert "HTTP 503, code 50001" in skipped[0]
    assert "timed out" in skipped[1]


def test_a_failed_history_call_means_no_conclusion_either() -> None:
    step = sync(60, [])
    step["sync"]["positions_history"] = {
        "error": {"http": 200, "code": "50011", "msg": "Too Many Requests"}
    }
    skipped: list[str] = []
    assert run(timeline([step], registry=[registry_row()]), skipped) == []
    assert "positions_history" in skipped[0]


def test_an_older_snapshot_is_dropped() -> None:
    skipped: list[str] = []
    events = run(
        timeline([sync(100, [position()]), sync(90, [])], registry=[registry_row()]), skipped
    )
    assert events == []
    assert "older" in skipped[0]


# -- the race guard and registry lag -----------------------------------------------------------


def test_a_position_the_bot_wrote_after_the_snapshot_began_is_not_drift() -> None:
    # The write landed at 00:01:01 while the 00:01:00 snapshot was being taken.
    events = run(timeline([write(61), sync(60, [position()]), sync(90, [position()])]))
    assert events == []


def test_a_write_within_the_grace_window_is_not_drift() -> None:
    events = run(timeline([write(57, pos="0"), sync(60, [position()])], registry=[registry_row()]))
    assert events == []


def test_registry_lag_resolves_a_suspected_add() -> None:
    doge = position("DOGE-USDT-SWAP", "50", pos_id="9", c_time=ms(55))
    events = run(timeline([sync(60, [doge]), write(80, "DOGE-USDT-SWAP", "50"), sync(90, [doge])]))
    assert summary(events) == [
        (at(60), "DOGE-USDT-SWAP", "DRIFT_ADD", "suspected", "unknown"),
        (at(90), "DOGE-USDT-SWAP", "DRIFT_ADD", "resolved", "registry_lag"),
    ]


# -- external, reopened, sizes, sides, leverage ----------------------------------------------


def test_external_position_is_confirmed_on_the_second_observation() -> None:
    ada = position("ADA-USDT-SWAP", "30", pos_id="11", c_time=ms(10))
    events = run(timeline([sync(60, [ada]), sync(90, [ada]), sync(120, [ada])]))
    assert summary(events) == [
        (at(60), "ADA-USDT-SWAP", "DRIFT_ADD", "suspected", "unknown"),
        (at(90), "ADA-USDT-SWAP", "DRIFT_ADD", "confirmed", "external"),
    ]


def test_reopened_with_a_new_ctime() -> None:
    again = position(c_time=ms(50))  # same posId (OKX reuses it within 30 days), new cTime
    events = run(
        timeline(
            [sync(0, [position()]), sync(60, [again], hist=[history(u_time=ms(40))])],
            registry=[registry_row()],
        )
    )
    assert summary(events) == [(at(60), XRP, "DRIFT_REMOVE", "confirmed", "reopened")]
    assert events[0].evidence["life"]["registry"]["cTime"] == 1766188740000


def test_closed_then_reopened_between_two_syncs_stays_a_discrepancy() -> None:
    # The registry still describes the life that was closed: the reopen does not make it
    # right, the bot's write does.
    events = run(
        timeline(
            [
                sync(0, [position()]),
                sync(60, [], hist=[history(u_time=ms(50))]),
                sync(90, [position(c_time=ms(70))]),
                write(100, pos="108"),
                sync(120, [position(c_time=ms(70))]),
            ],
            registry=[registry_row()],
        )
    )
    assert summary(events) == [
        (at(60), XRP, "DRIFT_REMOVE", "confirmed", "closed"),
        (at(120), XRP, "DRIFT_REMOVE", "resolved", "registry_lag"),
    ]


@pytest.mark.parametrize("exchange_size", ["108.04", "107.96", "108"])
def test_size_within_half_a_lot_is_not_drift(exchange_size: str) -> None:
    events = run(
        timeline(
            [sync(0, [position(pos=exchange_size)]), sync(30, [position(pos=exchange_size)])],
            registry=[registry_row()],
        )
    )
    assert events == []


def test_size_changed_is_suspected_then_confirmed() -> None:
    smaller = position(pos="100")
    events = run(timeline([sync(0, [smaller]), sync(30, [smaller])], registry=[registry_row()]))
    assert summary(events) == [
        (at(0), XRP, "DRIFT_SIZE", "suspected", "size_changed"),
        (at(30), XRP, "DRIFT_SIZE", "confirmed", "size_changed"),
    ]


def test_partial_close_in_history_confirms_size_changed() -> None:
    events = run(
        timeline(
            [
                sync(
                    60,
                    [position(pos="60")],
                    hist=[history(close_type=1, u_time=ms(50), closed="48")],
                )
            ],
            registry=[registry_row()],
        )
    )
    assert summary(events) == [(at(60), XRP, "DRIFT_SIZE", "confirmed", "size_changed")]


def test_partial_fill_resolves_when_the_order_completes() -> None:
    opening = [fill("TRX-USDT-SWAP", 3, ts=ms(1), size="4")]
    trx = position("TRX-USDT-SWAP", "4", pos_id="21", c_time=ms(1))
    events = run(
        timeline(
            [
                sync(30, [trx], fills=opening),
                sync(90, [position("TRX-USDT-SWAP", "10", pos_id="21", c_time=ms(1))]),
            ],
            registry=[registry_row("TRX-USDT-SWAP", "10")],
        )
    )
    assert summary(events) == [
        (at(30), "TRX-USDT-SWAP", "DRIFT_SIZE", "suspected", "partial_fill"),
        (at(90), "TRX-USDT-SWAP", "DRIFT_SIZE", "resolved", "partial_fill"),
    ]


def test_side_flip_in_net_mode() -> None:
    events = run(timeline([sync(0, [position(pos="-108")])], registry=[registry_row()]))
    assert summary(events) == [(at(0), XRP, "DRIFT_SIDE", "suspected", "unknown")]


def test_leverage_changed() -> None:
    ten = position(lever="10")
    events = run(timeline([sync(0, [ten]), sync(30, [ten])], registry=[registry_row()]))
    assert summary(events) == [
        (at(0), XRP, "DRIFT_LEVER", "suspected", "leverage_changed"),
        (at(30), XRP, "DRIFT_LEVER", "confirmed", "leverage_changed"),
    ]


def test_unknown_lever_is_not_a_leverage_drift() -> None:
    assert run(timeline([sync(0, [position(lever="")])], registry=[registry_row()])) == []


# -- unknown and escalation ---------------------------------------------------------------------


def test_vanished_without_evidence_is_unknown_and_escalates_once() -> None:
    steps = [sync(30 * n, []) for n in range(1, 7)]
    events = run(timeline(steps, registry=[registry_row()], escalate_after=4))
    assert summary(events) == [
        (at(30), XRP, "DRIFT_REMOVE", "suspected", "unknown"),
        (at(60), XRP, "DRIFT_REMOVE", "confirmed", "unknown"),
        (at(120), XRP, "DRIFT_REMOVE", "confirmed", "unknown"),
    ]
    assert events[-1].evidence["escalated"] is True
    assert len({e.id for e in events}) == 3


# -- healing ------------------------------------------------------------------------------------


def test_heal_adopts_an_external_position_and_then_all_is_quiet() -> None:
    ada = position("ADA-USDT-SWAP", "30", pos_id="11", c_time=ms(10))
    events = run(timeline([sync(60, [ada]), sync(90, [ada]), sync(120, [ada])], heal="heal"))
    assert summary(events) == [
        (at(60), "ADA-USDT-SWAP", "DRIFT_ADD", "suspected", "unknown"),
        (at(90), "ADA-USDT-SWAP", "DRIFT_ADD", "confirmed", "external"),
        (at(90), "ADA-USDT-SWAP", "DRIFT_ADD", "healed", "external"),
    ]


def test_heal_removes_a_liquidated_position() -> None:
    events = run(
        timeline(
            [sync(60, [], hist=[history(close_type=3, u_time=ms(50))]), sync(90, [])],
            registry=[registry_row()],
            heal="heal",
        )
    )
    assert [e.status for e in events] == ["confirmed", "healed"]


# -- determinism -----------------------------------------------------------------------------


def test_replaying_twice_gives_identical_events() -> None:
    document = timeline(
        [
            sync(0, [position()]),
            sync(147, []),
            sync(178, [position()]),
            sync(240, [], hist=[history(close_type=3, u_time=ms(239))]),
        ],
        registry=[registry_row()],
    )
    first = [e.to_json() for e in run(document)]
    second = [e.to_json() for e in run(document)]
    assert first == second
    assert len({e["id"] for e in first}) == len(first) == 3


def test_snapshots_within_the_clock_tolerance_are_simultaneous() -> None:
    # Two runs that measured OKX's clock a few ms apart: the later one is not "older".
    events = run(
        timeline(
            [
                sync(100, [position()]),
                sync(99.995, []),
                sync(130, [], hist=[history(u_time=ms(110))]),
            ],
            registry=[registry_row()],
        )
    )
    assert [(e.to_json()["at"], e.status, e.cause) for e in events] == [
        (at(99.995), "suspected", "unknown"),
        (at(130), "confirmed", "closed"),
    ]
