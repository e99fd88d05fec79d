"""A timeline's on-change sync carries the pushed changes (`pushed`): replayed through the real
path (parser, run_cycle, a registry), the push is the second observation; a broken one is an
error naming the step and the field."""

from __future__ import annotations

from typing import Any

import pytest

from posguard.stages.replay import TimelineError, replay, timeline_from
from tests.drift.builders import (
    XRP_CTIME,
    XRP_POS_ID,
    fill,
    history,
    ms,
    position,
    pushed_change,
    registry_row,
    sync,
    timeline,
)


def on_change(seconds: float, *changes: dict[str, Any]) -> dict[str, Any]:
    step = sync(seconds, [])
    step["sync"]["pushed"] = list(changes)
    return step


def outcome(document: dict[str, Any]) -> list[tuple[int, str, str]]:
    events = replay(timeline_from(document, "test timeline"))
    return [(e.at_ms, e.kind, e.status) for e in events]


def test_the_on_change_run_confirms_a_pushed_close_the_snapshot_also_shows() -> None:
    document = timeline([on_change(15.2, pushed_change(10))], registry=[registry_row()])
    assert outcome(document) == [(ms(15.2), "DRIFT_REMOVE", "confirmed")]


def test_the_same_run_without_the_push_only_suspects() -> None:
    document = timeline([on_change(15.2)], registry=[registry_row()])
    assert outcome(document) == [(ms(15.2), "DRIFT_REMOVE", "suspected")]


def test_a_broken_pushed_change_names_the_step_and_the_field() -> None:
    document = timeline(
        [on_change(15.2, pushed_change(10, after="zero"))], registry=[registry_row()]
    )
    with pytest.raises(
        TimelineError,
        match=r"step 0 \(sync\): pushed change: field 'after' of "
        r"XRP-USDT-SWAP has value 'zero'",
    ):
        outcome(document)


def test_an_answer_that_lost_a_pushed_open_position_ends_nothing() -> None:
    """A confirmed ADD; the bot-less position grows by 100 and is closed by 158 (the fills
    alone could have closed all 108 seen), the push shows it still open after those fills,
    and the on-change run's answer lost it: the discrepancy is not resolved (it would be
    confirmed a second time when the next answer shows it again, soak seed 1 life 608).
    Without the push, the closing fill may have been a full close."""
    opened = position(pos="108", c_time=ms(-30))
    smaller = position(pos="50", c_time=ms(-30))
    added = fill(sub_type=3, ts=ms(39), size="100", bill=2)
    partial = fill(sub_type=5, ts=ms(40), size="158", bill=3)
    pushed_open = {
        **pushed_change(40.05),
        "before": "108",
        "after": "50",
        "cTime": str(ms(-30)),
    }
    lost = sync(46, [], fills=[partial, added])
    lost["sync"]["pushed"] = [pushed_open]
    steps = [
        sync(0, [opened]),
        sync(30, [opened]),
        lost,
        sync(60, [smaller], fills=[partial, added]),
    ]
    statuses = [(e.status, e.cause) for e in replay(timeline_from(timeline(steps), "test"))]
    assert statuses == [("suspected", "unknown"), ("confirmed", "external")]
    without = {**lost, "sync": {k: v for k, v in lost["sync"].items() if k != "pushed"}}
    steps[2] = without
    statuses = [(e.status, e.cause) for e in replay(timeline_from(timeline(steps), "test"))]
    assert ("resolved", "spurious") in statuses  # what the push now prevents


def test_closing_fills_smaller_than_the_position_cannot_have_closed_it() -> None:
    """A confirmed ADD of 108; one answer without it right after a partial close of 58 (no
    push in that run): the fills cannot have closed 108, so the answer lost it, and the
    discrepancy goes on (soak seed 7 life 193: it was resolved, then confirmed again)."""
    opened = position(pos="108", c_time=ms(-30))
    smaller = position(pos="50", c_time=ms(-30))
    partial = fill(sub_type=5, ts=ms(40), size="58")
    steps = [
        sync(0, [opened]),
        sync(30, [opened]),
        sync(46, [], fills=[partial]),
        sync(60, [smaller], fills=[partial]),
        sync(90, [smaller], fills=[partial]),
    ]
    statuses = [(e.status, e.cause) for e in replay(timeline_from(timeline(steps), "test"))]
    assert statuses == [("suspected", "unknown"), ("confirmed", "external")]


@pytest.mark.parametrize(("size", "split"), [("30", True), ("108", False)])
def test_a_life_that_came_and_went_unseen_ends_a_removal_when_its_size_differed(
    size: str, split: bool
) -> None:
    """A confirmed REMOVE (the registry's life closed); another life opens and closes between
    two looks (no answer showed it). While it was open the registry and the exchange
    disagreed about a size, unless it had the registry's size: then the row still described
    an ended life, one removal all along (soak seed 7 life 256: never confirmed again)."""
    row = registry_row(posId=XRP_POS_ID, cTime=str(XRP_CTIME))
    first_close = history(close_type=2, u_time=ms(-10))
    unseen = history(close_type=2, u_time=ms(25), c_time=ms(10), closed=size)
    steps = [sync(0, [], hist=[first_close]), sync(31, [], hist=[unseen, first_close])]
    events = [
        (e.at_ms, e.status, e.cause)
        for e in replay(timeline_from(timeline(steps, registry=[row]), "test"))
    ]
    expected = [(ms(0), "confirmed", "closed")]
    if split:
        expected += [(ms(31), "resolved", "reopened"), (ms(31), "confirmed", "closed")]
    assert events == expected


def _removals(steps: list[dict[str, Any]]) -> list[tuple[int, str, str]]:
    row = registry_row(posId=XRP_POS_ID, cTime=str(XRP_CTIME))
    document = timeline(steps, registry=[row])
    return [(e.at_ms, e.status, e.cause) for e in replay(timeline_from(document, "test"))]


FIRST_CLOSE = history(close_type=2, u_time=ms(-10))
SPLIT_AT_61 = [
    (ms(0), "confirmed", "closed"),
    (ms(61), "resolved", "reopened"),
    (ms(61), "confirmed", "closed"),
]


def test_an_unseen_life_splits_the_removal_even_when_an_answer_lost_it_while_open() -> None:
    """The life opened at 10 s; the answer at 31 s lost it (that cycle still counted), it
    closed at 40 s: the first whole history after that splits (the review's case D)."""
    unseen = history(close_type=2, u_time=ms(40), c_time=ms(10), closed="30")
    steps = [
        sync(0, [], hist=[FIRST_CLOSE]),
        sync(31, [], hist=[FIRST_CLOSE]),
        *[sync(t, [], hist=[unseen, FIRST_CLOSE]) for t in (61, 91, 121)],
    ]
    assert _removals(steps) == SPLIT_AT_61


def test_an_unseen_life_splits_the_removal_once_a_cut_history_is_read_whole() -> None:
    """The first look after it had its history cut short (the review's case B)."""
    unseen = history(close_type=2, u_time=ms(25), c_time=ms(10), closed="30")
    cut = sync(31, [], hist=[unseen])
    cut["sync"]["truncated"] = ["positions_history"]
    steps = [
        sync(0, [], hist=[FIRST_CLOSE]),
        cut,
        *[sync(t, [], hist=[unseen, FIRST_CLOSE]) for t in (61, 91, 121)],
    ]
    assert _removals(steps) == SPLIT_AT_61


@pytest.mark.parametrize(
    "records",
    [
        # The registry's size at its peak, but partly closed meanwhile (case E).
        [
            {**history(close_type=2, u_time=ms(25), c_time=ms(10)), "openMaxPos": "108"},
            {**history(close_type=1, u_time=ms(15), c_time=ms(10), closed="58")},
        ],
        # The registry's size, on the other side in net mode (case C).
        [{**history(close_type=2, u_time=ms(25), c_time=ms(10)), "direction": "short"}],
    ],
    ids=["partly-closed", "other-side"],
)
def test_an_unseen_life_of_the_registrys_peak_size_still_differed(
    records: list[dict[str, Any]],
) -> None:
    steps = [sync(0, [], hist=[FIRST_CLOSE]), sync(61, [], hist=[*records, FIRST_CLOSE])]
    assert _removals(steps) == SPLIT_AT_61
