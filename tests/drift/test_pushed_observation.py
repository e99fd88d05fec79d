"""A pushed change as the second observation of a discrepancy (design.md rule 5, issue 16).

The engine called directly, as in test_engine_table: a snapshot that shows a discrepancy, and
the push `posguard watch` passed to the run that the change started. The push counts only
beside the snapshot, only when it shows what the snapshot shows, only when it is at least the
grace window older, and only once.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from posguard.drift import DriftSettings, EngineMemory, Pushed, reconcile
from posguard.drift.engine import CycleInput
from posguard.drift.pushes import pushed_from
from tests.drift.builders import pushed_change
from tests.drift.test_engine_table import OPENED, SETTINGS, T0, cycle, okx, outcome, row

KEY = ("XRP-USDT-SWAP", "net", "cross")
GRACE_MS = int(SETTINGS.grace_seconds * 1000)


def push(
    *,
    pos: float = 0.0,
    venue_ms: int = T0 - GRACE_MS - 100,
    life: tuple[str | None, int] | None = ("p1", OPENED),
    lever: float | None = 5.0,
) -> Pushed:
    return Pushed(KEY, pos != 0, pos, life, lever, venue_ms)


def with_push(base: CycleInput, *pushes: Pushed) -> CycleInput:
    return replace(base, pushed=list(pushes))


def test_a_close_pushed_before_the_snapshot_confirms_the_removal_at_once() -> None:
    result = reconcile(with_push(cycle([], [row()]), push()), EngineMemory(), SETTINGS)
    assert outcome(result.events) == [("DRIFT_REMOVE", "confirmed", "unknown")]
    evidence = result.events[0].evidence
    assert evidence["observations"] == 2
    assert evidence["pushed"]["at"] == "2025-12-19T23:59:54.900Z"
    assert evidence["pushed"]["pos"] == 0.0
    assert result.memory.pending["XRP-USDT-SWAP|net|cross"].pushed_ms == T0 - GRACE_MS - 100


def test_without_the_push_the_same_snapshot_only_suspects() -> None:
    result = reconcile(cycle([], [row()]), EngineMemory(), SETTINGS)
    assert outcome(result.events) == [("DRIFT_REMOVE", "suspected", "unknown")]


def test_a_push_alone_concludes_nothing() -> None:
    """The snapshot agrees with the registry: a push saying otherwise is no discrepancy."""
    result = reconcile(with_push(cycle([okx()], [row()]), push()), EngineMemory(), SETTINGS)
    assert result.events == []


def test_a_push_within_the_grace_window_of_the_snapshot_does_not_count() -> None:
    """Younger than the grace window, the bot may still be recording what it did."""
    late = push(venue_ms=T0 - GRACE_MS + 1)
    result = reconcile(with_push(cycle([], [row()]), late), EngineMemory(), SETTINGS)
    assert outcome(result.events) == [("DRIFT_REMOVE", "suspected", "unknown")]


@pytest.mark.parametrize(
    ("shown", "pushed"),
    [
        ([], push(pos=108.0)),  # the push saw it open; the snapshot does not
        ([okx(pos="50")], push(pos=70.0)),  # another size than the snapshot's
        ([okx(pos="50")], push(pos=50.0, life=("p1", OPENED + 1))),  # another life
        ([okx(pos="50")], push(pos=50.0, life=None)),  # a push that does not say its life
    ],
    ids=["open-vs-gone", "other-size", "other-life", "life-unsaid"],
)
def test_a_push_that_shows_something_else_does_not_count(
    shown: list[dict[str, Any]], pushed: Pushed
) -> None:
    result = reconcile(with_push(cycle(shown, [row()]), pushed), EngineMemory(), SETTINGS)
    assert [e.status for e in result.events] == ["suspected"]
    assert "pushed" not in result.events[0].evidence


def test_a_size_pushed_as_the_snapshot_shows_it_confirms() -> None:
    pushed = push(pos=50.04)  # within half a lot (0.1) of the snapshot's 50
    result = reconcile(with_push(cycle([okx(pos="50")], [row()]), pushed), EngineMemory(), SETTINGS)
    assert outcome(result.events) == [("DRIFT_SIZE", "confirmed", "size_changed")]


def test_leverage_confirms_only_with_the_pushed_lever() -> None:
    shown = [okx(lever="10")]
    said = reconcile(
        with_push(cycle(shown, [row()]), push(pos=108.0, lever=10.0)), EngineMemory(), SETTINGS
    )
    assert outcome(said.events) == [("DRIFT_LEVER", "confirmed", "leverage_changed")]
    unsaid = reconcile(
        with_push(cycle(shown, [row()]), push(pos=108.0, lever=None)), EngineMemory(), SETTINGS
    )
    assert outcome(unsaid.events) == [("DRIFT_LEVER", "suspected", "leverage_changed")]
    other = reconcile(
        with_push(cycle(shown, [row()]), push(pos=108.0, lever=5.0)), EngineMemory(), SETTINGS
    )
    assert outcome(other.events) == [("DRIFT_LEVER", "suspected", "leverage_changed")]


def test_a_push_counts_once_per_discrepancy() -> None:
    """Three observations needed: snapshot + push is two; the same push with the next
    snapshot (too soon to count itself) adds nothing."""
    settings = DriftSettings(confirm_after=3, confirm_interval_seconds=20, grace_seconds=5)
    first = reconcile(with_push(cycle([], [row()]), push()), EngineMemory(), settings)
    assert outcome(first.events) == [("DRIFT_REMOVE", "suspected", "unknown")]
    pending = first.memory.pending["XRP-USDT-SWAP|net|cross"]
    assert pending.count == 2
    memory = EngineMemory.from_json(first.memory.to_json())  # as the registry stores it
    again = reconcile(with_push(cycle([], [row()], at_ms=T0 + 5_000), push()), memory, settings)
    assert again.events == []
    assert again.memory.pending["XRP-USDT-SWAP|net|cross"].count == 2


def test_a_push_after_an_earlier_snapshot_adds_to_it() -> None:
    """A scheduled snapshot suspected it; the push came later, and the on-change run's
    snapshot 12 s after the first is too soon to count by itself, but the push counts."""
    first = reconcile(cycle([], [row()], at_ms=T0 - 12_000), EngineMemory(), SETTINGS)
    assert outcome(first.events) == [("DRIFT_REMOVE", "suspected", "unknown")]
    between = push(venue_ms=T0 - GRACE_MS - 100)  # 6.9 s after the first snapshot: counts
    second = reconcile(with_push(cycle([], [row()]), between), first.memory, SETTINGS)
    assert outcome(second.events) == [("DRIFT_REMOVE", "confirmed", "unknown")]
    too_near = push(venue_ms=T0 - 12_000 + GRACE_MS - 1)  # within the window of the first
    third = reconcile(with_push(cycle([], [row()]), too_near), first.memory, SETTINGS)
    assert third.events == []


def test_memory_written_before_pushes_existed_still_loads() -> None:
    result = reconcile(cycle([], [row()]), EngineMemory(), SETTINGS)
    document = result.memory.to_json()
    del document["pending_more"], document["seen_pos"]  # what format 2 wrote before
    loaded = EngineMemory.from_json(document)
    assert loaded.pending["XRP-USDT-SWAP|net|cross"].pushed_ms is None


# -- the run's parameter, read back --------------------------------------------------------------


def change(**fields: Any) -> dict[str, Any]:
    """A change as `posguard watch` puts it in the event's payload, of the life `row()` records."""
    return pushed_change(
        0, **{"posId": "p1", "cTime": str(OPENED), "venue_ms": T0 - 6_000, **fields}
    )


def test_pushed_changes_read_back_as_observations() -> None:
    pushes, problems = pushed_from(
        [change(), change(instId="BTC-USDT-SWAP", after="-0.5", lever="")]
    )
    assert problems == []
    assert pushes == [
        Pushed(KEY, False, 0.0, ("p1", OPENED), 5.0, T0 - 6_000),
        Pushed(("BTC-USDT-SWAP", "net", "cross"), True, -0.5, ("p1", OPENED), None, T0 - 6_000),
    ]


def test_the_latest_change_of_a_key_is_its_observation() -> None:
    pushes, _ = pushed_from([change(venue_ms=T0 - 3_000, after="5"), change(venue_ms=T0 - 9_000)])
    assert [(p.pos, p.venue_ms) for p in pushes] == [(5.0, T0 - 3_000)]


def test_untimed_and_unsized_changes_are_no_observation() -> None:
    pushes, problems = pushed_from([change(venue_ms=None), change(after="")])
    assert (pushes, problems) == ([], [])


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"after": "five"}, "'after' of XRP-USDT-SWAP"),
        ({"venue_ms": "17661"}, "'venue_ms' of XRP-USDT-SWAP"),
        ({"cTime": "yesterday"}, "'cTime' of XRP-USDT-SWAP"),
        ({"mgnMode": ""}, "'mgnMode' of XRP-USDT-SWAP"),
        ({"instId": None}, "'instId'"),
    ],
)
def test_a_malformed_change_is_left_out_with_its_field_named(
    fields: dict[str, Any], named: str
) -> None:
    pushes, problems = pushed_from([change(**fields), change(instId="ETH-USDT-SWAP")])
    assert [p.key[0] for p in pushes] == ["ETH-USDT-SWAP"]  # the others still count
    assert len(problems) == 1, problems
    assert named in problems[0]


def test_a_parameter_that_is_no_list_is_a_problem_not_a_crash() -> None:
    assert pushed_from(None) == ([], [])
    pushes, problems = pushed_from("[{...}]")
    assert pushes == []
    assert "expected a list of changes, got str" in problems[0]
    pushes, problems = pushed_from([7])
    assert pushes == []
    assert "expected an object, got int" in problems[0]


# -- what the review (a helper trying to break it) made the engine confirm too soon ---------------


def test_a_push_from_before_the_registrys_write_saw_another_belief() -> None:
    """The bot wrote 8 s ago (a stale answer still shows the size from before its trade); a
    push of that old size from 20 s ago says nothing about the row written since."""
    rows = [row(pos=60.0, recorded_at_ms=T0 - 8_000, updated_at_ms=T0 - 8_000)]
    old = push(pos=50.0, venue_ms=T0 - 20_000)
    result = reconcile(with_push(cycle([okx(pos="50")], rows), old), EngineMemory(), SETTINGS)
    assert outcome(result.events) == [("DRIFT_SIZE", "suspected", "size_changed")]


def test_a_push_older_than_the_positions_last_adjustment_is_not_its_state() -> None:
    """Pushed at 50 ten seconds ago; the snapshot's position was adjusted half a second ago
    (it changed and changed back: that change went to another run)."""
    shown = [okx(pos="50", uTime=str(T0 - 500))]
    earlier = push(pos=50.0, venue_ms=T0 - 10_000)
    result = reconcile(with_push(cycle(shown, [row()]), earlier), EngineMemory(), SETTINGS)
    assert outcome(result.events) == [("DRIFT_SIZE", "suspected", "size_changed")]


@pytest.mark.parametrize(
    "life", [("p0", OPENED - 60_000), None], ids=["an-earlier-life", "no-life-said"]
)
def test_a_close_counts_only_for_the_life_the_registry_describes(
    life: tuple[str, int] | None,
) -> None:
    result = reconcile(with_push(cycle([], [row()]), push(life=life)), EngineMemory(), SETTINGS)
    assert outcome(result.events) == [("DRIFT_REMOVE", "suspected", "unknown")]


def test_a_push_does_not_hasten_the_escalation_of_a_confirmed_discrepancy() -> None:
    settings = DriftSettings(confirm_after=2, confirm_interval_seconds=20, escalate_after=3)
    shown = [okx(lever="10")]
    memory = EngineMemory()
    at = T0 - 60_000
    for _ in range(2):  # suspected, then confirmed 30 s later
        memory = reconcile(cycle(shown, [row()], at_ms=at), memory, settings).memory
        at += 30_000
    pending = memory.pending["XRP-USDT-SWAP|net|cross"]
    assert (pending.kind, pending.confirmed, pending.count) == ("DRIFT_LEVER", True, 2)
    # The next snapshot, 15 s on, is too soon to count; a push between must not count either.
    between = push(pos=108.0, lever=10.0, venue_ms=at - 22_000)
    late = reconcile(with_push(cycle(shown, [row()], at_ms=at - 15_000), between), memory, settings)
    assert late.events == []
    assert late.memory.pending["XRP-USDT-SWAP|net|cross"].count == 2


def test_a_push_waits_while_the_evidence_is_cut_short() -> None:
    """History read only back to a second ago: the record that names the cause (an ADL, a
    liquidation) may be on the next page, and confirming now would say "unknown" for good
    (soak seed 7 life 233)."""
    cut = replace(cycle([], [row()]), pushed=[push()], history_covers_from_ms=T0 - 1_000)
    result = reconcile(cut, EngineMemory(), SETTINGS)
    assert [e.status for e in result.events] == ["suspected"]
    whole = replace(cut, history_covers_from_ms=None)
    assert [e.status for e in reconcile(whole, EngineMemory(), SETTINGS).events] == ["confirmed"]


def test_memory_keeps_what_an_older_version_reads_where_it_reads_it() -> None:
    """A rollback, or a team host not yet upgraded, reads this version's memory: the entries
    format 2 had stay as they were (a fifth element in `seen` or an unknown pending field
    crashed the older reader on every cycle, found by the review); the rest lies beside."""
    result = reconcile(
        with_push(cycle([okx(pos="50")], [row()]), push(pos=50.0)), EngineMemory(), SETTINGS
    )
    document = result.memory.to_json()
    (pending,) = document["pending"].values()
    assert set(pending) == {
        "id", "kind", "cause", "first_ms", "last_ms", "count", "confirmed", "escalated",
        "registry_version", "registry_life", "exchange_life",
    }  # fmt: skip
    assert all(len(entry) == 4 for entry in document["seen"].values())
    assert document["seen_pos"] == {"XRP-USDT-SWAP|net|cross": 50.0}
    loaded = EngineMemory.from_json(document)
    assert loaded.pending == result.memory.pending
    assert loaded.seen == result.memory.seen
    # And what a newer version adds, this one leaves out.
    document["pending_more"]["XRP-USDT-SWAP|net|cross"]["from_the_future"] = 1
    document["seen"]["XRP-USDT-SWAP|net|cross"].append("more")
    assert EngineMemory.from_json(document).pending == result.memory.pending


def test_a_change_seen_in_a_regular_snapshot_waits_for_the_evidence_since_the_change() -> None:
    """Pushed (in a regular snapshot) at 17 s for a change the position's uTime puts at
    10 s, with the pages read back to 11 s: the record naming the cause may be older than
    the push and still unread (the review's case F)."""
    shown = [okx(pos="50", uTime=str(T0 - 15_000))]
    late = push(pos=50.0, venue_ms=T0 - 8_000)
    cut = replace(
        cycle(shown, [row()]),
        pushed=[late],
        history_covers_from_ms=T0 - 14_000,
        fills_covers_from_ms=T0 - 14_000,
    )
    assert [e.status for e in reconcile(cut, EngineMemory(), SETTINGS).events] == ["suspected"]
    whole = replace(cut, history_covers_from_ms=None, fills_covers_from_ms=None)
    assert [e.status for e in reconcile(whole, EngineMemory(), SETTINGS).events] == ["confirmed"]
