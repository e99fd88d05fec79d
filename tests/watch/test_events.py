"""The watcher's notices as Prefect events (deployments/watch.py): shape, id, limits."""

from __future__ import annotations

from prefect.events import Event

from deployments.watch import MAX_RELATED, event_of
from posguard.watch import Change, Notice
from tasks.publish import POSITION_CHANGED


def change(inst_id: str, venue_ms: int | None = 1_766_189_040_000) -> Change:
    return Change(
        inst_id, "net", "cross", "2", "0", "77", "1766188800000", venue_ms, "event_update"
    )


def test_an_event_names_the_account_its_instruments_and_every_change() -> None:
    notice = Notice("main", (change("BTC-USDT-SWAP"), change("XRP-USDT-SWAP", 5)), {})
    fields = event_of(notice)
    event = Event(**fields)  # what Prefect accepts
    assert event.event == POSITION_CHANGED
    assert event.resource.id == "posguard.account.main"
    assert [r.id for r in event.related] == [
        "posguard.instrument.BTC-USDT-SWAP",
        "posguard.instrument.XRP-USDT-SWAP",
    ]
    assert event.payload["venue_ms"] == 1_766_189_040_000  # the latest change
    assert [c["instId"] for c in event.payload["changes"]] == ["BTC-USDT-SWAP", "XRP-USDT-SWAP"]
    # The same notice again is the same event; another change is another.
    assert event_of(notice)["id"] == fields["id"]
    other = Notice("main", (change("BTC-USDT-SWAP", 6),), {})
    assert event_of(other)["id"] != fields["id"]


def test_a_close_of_every_position_is_one_event_prefect_accepts() -> None:
    notice = Notice("main", tuple(change(f"SYN{n:06d}-USDT-SWAP") for n in range(150)), {})
    event = Event(**event_of(notice))
    assert len(event.related) == MAX_RELATED
    assert len(event.payload["changes"]) == 150


def test_a_change_without_a_venue_time_makes_the_event_untimed() -> None:
    notice = Notice("main", (change("BTC-USDT-SWAP"), change("ETH-USDT-SWAP", None)), {})
    fields = event_of(notice)
    assert fields["payload"]["venue_ms"] is None  # the run waits the grace window from now
    assert event_of(notice)["id"] != fields["id"]  # nothing tells two such notices apart
