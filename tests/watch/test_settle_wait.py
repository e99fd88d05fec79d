"""A run started by a pushed change reads the account once the change is older than the
grace window, on OKX's clock (posguard/stages/fetch.py settle_moment, wait_for_venue)."""

from __future__ import annotations

from posguard.sim import SimExchange, SimServer
from posguard.stages.fetch import settle_moment, wait_for_venue
from tests.sim.conftest import client_for, scenario

# The simulator's clock is a year behind this machine's: the wait must follow OKX's clock.
LAST_YEAR = scenario(name="wait", clock="wall", start="2025-12-20T00:00:00.000Z")


def test_the_snapshot_waits_until_the_change_has_passed_the_grace_window() -> None:
    slept: list[float] = []
    with SimServer(SimExchange(LAST_YEAR)) as server, client_for(server) as client:
        client.sync_clock()
        changed = client.now_ms() - 300  # pushed 0.3 s ago
        moment = settle_moment(changed, client, grace_ms=2000)
        assert moment == changed + 2000
        # The wait is asked of `sleep` (a real sleep would make this test slow and its
        # bound a matter of the machine's load): about what is left of the window.
        waited = wait_for_venue(client, moment, longest_seconds=10, sleep=slept.append)
        assert 1.2 < waited <= 1.75
        assert slept == [waited]
        slept.clear()
        # A moment long past: no wait. One absurdly far ahead: at most longest_seconds.
        assert wait_for_venue(client, changed - 60_000, longest_seconds=10) == 0
        far = wait_for_venue(client, moment + 3_600_000, longest_seconds=0.2, sleep=slept.append)
        assert far == 0.2
        assert slept == [0.2]


def test_a_change_without_a_venue_time_waits_the_window_from_now() -> None:
    with SimServer(SimExchange(LAST_YEAR)) as server, client_for(server) as client:
        client.sync_clock()
        before = client.now_ms()
        moment = settle_moment(0, client, grace_ms=2000)
        assert moment is not None
        assert before + 2000 - 50 <= moment <= client.now_ms() + 2000
        assert settle_moment(None, client, grace_ms=2000) is None
