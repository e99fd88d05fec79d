"""What the stream showed and what changed: pure, on records shaped like OKX's pushes."""

from __future__ import annotations

from typing import Any

import pytest

from posguard.drift import Pushed
from posguard.drift.pushes import pushed_from
from posguard.errors import DataError
from posguard.watch.debounce import Debouncer
from posguard.watch.observed import ObservedBook


def record(inst: str = "XRP-USDT-SWAP", pos: str = "108", **fields: Any) -> dict[str, Any]:
    base = {
        "instId": inst,
        "posSide": "net",
        "mgnMode": "cross",
        "pos": pos,
        "posId": "1",
        "cTime": "1000",
        "uTime": "2000",
        "lever": "5",
        "markPx": "1.93",
    }
    return {**base, **fields}


def test_first_snapshot_fills_the_book_without_changes() -> None:
    book = ObservedBook()
    assert book.snapshot_page([record(), record("BTC-USDT-SWAP", "2")], 1, True) == []
    assert set(book.positions) == {
        ("XRP-USDT-SWAP", "net", "cross"),
        ("BTC-USDT-SWAP", "net", "cross"),
    }


def test_an_event_update_that_closes_is_one_change_to_zero() -> None:
    book = ObservedBook()
    book.snapshot_page([record()], 1, True)
    changes = book.update([record(pos="0", uTime="3000")], "event_update")
    assert [(c.inst_id, c.before, c.after, c.venue_ms) for c in changes] == [
        ("XRP-USDT-SWAP", "108", "0", 3000)
    ]
    assert book.positions == {}
    # The same close said again (balance_and_position, a late push) is no news.
    assert book.update([record(pos="0")], "balance_and_position") == []


def test_mark_price_moves_are_no_change_but_size_life_and_leverage_are() -> None:
    book = ObservedBook()
    book.snapshot_page([record()], 1, True)
    assert book.update([record(markPx="2.5", upl="3")], "event_update") == []
    assert book.update([record(pos="100.0")], "event_update")[0].after == "100"
    assert book.update([record(pos="100")], "event_update") == []  # same size, other text
    assert book.update([record(pos="100", cTime="5000", posId="2")], "event_update")[0].c_time == (
        "5000"
    )
    assert book.update([record(pos="100", cTime="5000", posId="2", lever="3")], "event_update")


def test_a_snapshot_tells_what_a_missed_push_hid() -> None:
    book = ObservedBook()
    book.snapshot_page([record(), record("BTC-USDT-SWAP", "2")], 1, True)
    # The close of BTC was never pushed (a missed push, a cut stream): the next regular
    # snapshot lacks it, and XRP grew.
    changes = book.snapshot_page([record(pos="120")], 1, True)
    assert sorted((c.inst_id, c.before, c.after, c.source) for c in changes) == [
        ("BTC-USDT-SWAP", "2", "0", "snapshot"),
        ("XRP-USDT-SWAP", "108", "120", "snapshot"),
    ]


def test_snapshot_pages_are_one_snapshot() -> None:
    book = ObservedBook()
    book.snapshot_page([record(), record("BTC-USDT-SWAP", "2")], 1, True)
    assert book.snapshot_page([record()], 1, False) == []
    changes = book.snapshot_page([record("ETH-USDT-SWAP", "1")], 2, True)
    assert sorted((c.inst_id, c.after) for c in changes) == [
        ("BTC-USDT-SWAP", "0"),
        ("ETH-USDT-SWAP", "1"),
    ]


def test_hedged_legs_are_separate_positions() -> None:
    book = ObservedBook()
    long_leg = record(posSide="long")
    short_leg = record(posSide="short", pos="3")
    book.snapshot_page([long_leg, short_leg], 1, True)
    changes = book.update([record(posSide="short", pos="0")], "event_update")
    assert [(c.pos_side, c.after) for c in changes] == [("short", "0")]
    assert ("XRP-USDT-SWAP", "long", "cross") in book.positions


@pytest.mark.parametrize("bad", ["abc", 5, "nan", "1,5"])
def test_a_size_that_is_not_a_decimal_string_names_field_and_instrument(bad: Any) -> None:
    book = ObservedBook()
    with pytest.raises(DataError, match=r"'pos' of XRP-USDT-SWAP") as caught:
        book.update([record(pos=bad)], "event_update")
    assert caught.value.inst_id == "XRP-USDT-SWAP"


def test_an_empty_size_is_unknown_neither_zero_nor_a_change() -> None:
    book = ObservedBook()
    book.snapshot_page([record()], 1, True)
    assert book.update([record(pos="")], "event_update") == []
    assert book.positions[("XRP-USDT-SWAP", "net", "cross")].pos == "108"
    # A position first seen with an unknown size is news (something opened).
    (change,) = book.update([record("ETH-USDT-SWAP", pos="")], "event_update")
    assert (change.before, change.after) == (None, "")


@pytest.mark.parametrize("stamp", ["²", "1" * 5000, "-5", 17])
def test_a_time_that_is_not_epoch_ms_is_a_data_error_not_a_crash(stamp: Any) -> None:
    book = ObservedBook()
    book.snapshot_page([record()], 1, True)
    with pytest.raises(DataError, match=r"'uTime' of XRP-USDT-SWAP"):
        book.update([record(pos="5", uTime=stamp)], "event_update")
    with pytest.raises(DataError):
        ObservedBook().snapshot_page([record(uTime=stamp)], 1, True)


def test_a_snapshot_that_repeats_a_key_keeps_each_positions_own_time() -> None:
    book = ObservedBook()
    book.snapshot_page([record(), record("BTC-USDT-SWAP", "2")], 1, True)
    changes = book.snapshot_page(
        [record(pos="1", uTime="5"), record(pos="2", uTime="6"), record("BTC-USDT-SWAP", "3",
         uTime="7")], 1, True,
    )  # fmt: skip
    assert {(c.inst_id, c.after, c.venue_ms) for c in changes} == {
        ("XRP-USDT-SWAP", "2", 6),
        ("BTC-USDT-SWAP", "3", 7),
    }


def test_a_burst_is_one_notice_after_the_quiet_time() -> None:
    book = ObservedBook()
    book.snapshot_page([record(), record("BTC-USDT-SWAP", "2")], 1, True)
    debouncer = Debouncer(quiet_seconds=0.3, max_seconds=2.0)
    debouncer.add("main", book.update([record(pos="50")], "event_update"), now=10.0)
    debouncer.add("main", book.update([record(pos="0")], "event_update"), now=10.2)
    debouncer.note_cause("main", ("XRP-USDT-SWAP", "net", "cross"), "liquidation", now=10.25)
    debouncer.add("main", book.update([record("BTC-USDT-SWAP", "0")], "event_update"), now=10.25)
    assert debouncer.due(10.5) == []  # 0.25 s quiet
    assert debouncer.next_due() == pytest.approx(10.55)
    (notice,) = debouncer.due(10.56)
    assert notice.account == "main"
    assert sorted((c.inst_id, c.after) for c in notice.changes) == [
        ("BTC-USDT-SWAP", "0"),
        ("XRP-USDT-SWAP", "0"),
    ]
    assert notice.causes == {("XRP-USDT-SWAP", "net", "cross"): "liquidation"}
    assert debouncer.due(20.0) == []


def test_a_burst_that_never_goes_quiet_still_gives_a_notice_at_max_seconds() -> None:
    debouncer = Debouncer(quiet_seconds=0.3, max_seconds=1.0)
    book = ObservedBook()
    book.snapshot_page([record()], 1, True)
    for step in range(12):
        now = 10.0 + step * 0.1
        debouncer.add("main", book.update([record(pos=str(200 + step))], "event_update"), now)
        if now >= 11.0:
            break
    (notice,) = debouncer.due(11.0)
    assert notice.changes[0].after == "210"


def test_accounts_are_debounced_apart_and_a_cause_alone_is_no_notice() -> None:
    debouncer = Debouncer(quiet_seconds=0.3, max_seconds=2.0)
    book_a, book_b = ObservedBook(), ObservedBook()
    for book in (book_a, book_b):
        book.snapshot_page([record()], 1, True)
    debouncer.add("a", book_a.update([record(pos="1")], "event_update"), now=1.0)
    debouncer.add("b", book_b.update([record(pos="2")], "event_update"), now=1.2)
    debouncer.note_cause("c", ("XRP-USDT-SWAP", "net", "cross"), "filled", now=1.0)
    assert [n.account for n in debouncer.due(1.35)] == ["a"]
    assert [n.account for n in debouncer.due(1.6)] == ["b"]


def test_balance_and_position_records_say_less_and_change_nothing_they_do_not_say() -> None:
    book = ObservedBook()
    book.snapshot_page([record()], 1, True)
    pos_data = {"instId": "XRP-USDT-SWAP", "posSide": "net", "mgnMode": "cross", "pos": "108"}
    assert book.update([{**pos_data, "posId": "1", "uTime": "2500"}], "balance_and_position") == []
    changes = book.update([{**pos_data, "pos": "50"}], "balance_and_position")
    assert [(c.after, c.pos_id, c.c_time) for c in changes] == [("50", "1", "1000")]
    assert book.update([record(pos="50")], "event_update") == []  # the same change, pushed twice


def test_a_push_time_that_cannot_be_read_costs_the_lag_figure_not_the_push() -> None:
    from pydantic import SecretStr

    from posguard.okx.stream import PositionsPush
    from posguard.watch import StreamAccount, Watcher

    account = StreamAccount("main", "ws://unused", SecretStr("k"), SecretStr("s"), SecretStr("p"))
    watcher = Watcher([account], lambda notice: None)
    watcher.on_frame("main", PositionsPush("snapshot", [record(pTime="soon")]))
    watcher.on_frame("main", PositionsPush("event_update", [record(pos="0", pTime="soon")]))
    assert watcher.figures.unreadable == 0
    assert watcher.figures.changes == 1
    assert watcher.figures.lags_ms == []


def test_each_change_carries_the_leverage_and_reads_back_as_the_runs_observation() -> None:
    """What the watcher puts in the event's payload is what the run's engine reads (the
    push as a second observation): the leverage too, kept from the book where a record
    (balance_and_position's posData) does not say it."""
    book = ObservedBook()
    book.snapshot_page([record()], 1, True)
    (lever,) = book.update([record(lever="10", uTime="2500")], "event_update")
    (close,) = book.update([{**record(pos="0", uTime="3000"), "lever": ""}], "balance_and_position")
    assert (lever.lever, close.lever) == ("10", "10")
    pushes, problems = pushed_from([lever.to_json(), close.to_json()])
    assert problems == []
    assert pushes == [
        Pushed(("XRP-USDT-SWAP", "net", "cross"), False, 0.0, ("1", 1000), 10.0, 3000)
    ]


def test_a_change_is_timed_by_the_push_when_the_position_time_did_not_move() -> None:
    """A leverage change does not move uTime (the simulator's does not): stamped with the old
    uTime, the run would not wait and the engine would take the new lever as held for
    minutes (found by the review). The later of uTime and pTime is the change's time."""
    book = ObservedBook()
    book.snapshot_page([record()], 1, True)
    (change,) = book.update([record(lever="10", uTime="2000", pTime="9000")], "event_update")
    assert change.venue_ms == 9000
    (grown,) = book.update([record(pos="120", uTime="9500", pTime="9000")], "event_update")
    assert grown.venue_ms == 9500
