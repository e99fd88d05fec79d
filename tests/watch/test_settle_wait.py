"""A run started by a pushed change reads the account once the change is older than the
grace window, on OKX's clock (posguard/stages/fetch.py settle_after_change)."""

from __future__ import annotations

from posguard.sim import SimExchange, SimServer
from posguard.stages.fetch import SETTLE_MARGIN_MS, settle_after_change
from tests.sim.conftest import client_for, scenario

# The simulator's clock is a year behind this machine's: the wait must follow OKX's clock.
LAST_YEAR = scenario(name="wait", clock="wall", start="2025-12-20T00:00:00.000Z")


def test_the_snapshot_waits_until_the_change_has_passed_the_grace_window() -> None:
    slept: list[float] = []
    with SimServer(SimExchange(LAST_YEAR)) as server, client_for(server) as client:
        client.sync_clock()
        changed = client.now_ms() - 300  # pushed 0.3 s ago
        settled = settle_after_change(
            client, changed, grace_ms=2000, longest_seconds=10, sleep=slept.append
        )
        assert settled.until_ms == changed + 2000 + SETTLE_MARGIN_MS
        # The wait is asked of `sleep` (a real sleep would make this test slow and its
        # bound a matter of the machine's load): about what is left of the window.
        assert 1.2 < settled.waited <= 1.85
        assert slept == [settled.waited]
        slept.clear()
        # A change long past: no wait. One absurdly far ahead: at most longest_seconds.
        past = settle_after_change(client, changed - 60_000, grace_ms=2000, longest_seconds=10)
        assert past.waited == 0
        far = settle_after_change(
            client, changed + 3_600_000, grace_ms=2000, longest_seconds=0.2, sleep=slept.append
        )
        assert far.waited == 0.2
        assert slept == [0.2]


def test_a_change_without_a_venue_time_waits_the_window_from_now() -> None:
    slept: list[float] = []
    with SimServer(SimExchange(LAST_YEAR)) as server, client_for(server) as client:
        client.sync_clock()
        before = client.now_ms()
        settled = settle_after_change(
            client, 0, grace_ms=2000, longest_seconds=10, sleep=slept.append
        )
        assert before + 2000 - 50 <= settled.until_ms - SETTLE_MARGIN_MS
        assert settled.until_ms - SETTLE_MARGIN_MS <= client.now_ms() + 2000
