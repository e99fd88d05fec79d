"""IP-scoped OKX limits shared by every process of the host, through locked window files."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import httpx
import pytest

from posguard.errors import ConfigError
from posguard.okx import OkxClient
from posguard.okx.host_limits import HostRateLimiter, HostWindows, window_file
from tests.helpers import FakeClock, FakeOkx, account

TIME_KEY = "ip:127.0.0.1:9:/api/v5/public/time"
TIERS_KEY = "ip:127.0.0.1:9:/api/v5/public/position-tiers"
ROOT = Path(__file__).resolve().parents[2]


class AskedToWait(Exception):
    def __init__(self, seconds: float) -> None:
        super().__init__(seconds)
        self.seconds = seconds


def refuse_to_wait(seconds: float) -> None:
    raise AskedToWait(seconds)


def test_a_burst_within_the_limit_goes_at_once_and_the_next_waits_for_the_oldest(
    tmp_path: Path,
) -> None:
    clock = FakeClock()
    windows = HostWindows(tmp_path, clock=clock, sleep=clock.sleep)
    for _ in range(10):
        assert windows.acquire(TIME_KEY, 10, 2.0) == 0.0
        clock.now += 0.1
    # The first went at 1000.0 and leaves the window at 1002.0; it is now 1001.0.
    assert windows.acquire(TIME_KEY, 10, 2.0) == pytest.approx(1.0)
    assert clock.slept == [pytest.approx(1.0)]


def test_another_process_spends_the_same_window(tmp_path: Path) -> None:
    """What the Prefect rate limit was for: a second process on the host sees the first
    one's requests (here a child process fills a window that frees in 1000 s)."""
    child = textwrap.dedent(
        f"""
        from pathlib import Path
        from posguard.okx.host_limits import HostWindows
        windows = HostWindows(Path({str(tmp_path)!r}))
        assert windows.acquire({TIERS_KEY!r}, 2, 1000.0) == 0.0
        assert windows.acquire({TIERS_KEY!r}, 2, 1000.0) == 0.0
        """
    )
    subprocess.run([sys.executable, "-c", child], check=True, cwd=ROOT, timeout=60)
    windows = HostWindows(tmp_path, sleep=refuse_to_wait)
    with pytest.raises(AskedToWait) as asked:
        windows.acquire(TIERS_KEY, 2, 1000.0)
    assert 900 < asked.value.seconds <= 1000
    # Another key is another window.
    assert windows.acquire(TIME_KEY, 2, 1000.0) == 0.0


def test_threads_of_one_process_never_take_more_than_the_limit(tmp_path: Path) -> None:
    """Each use opens the file anew: without that, threads would share one lock and race
    on the read-modify-write."""
    windows = HostWindows(tmp_path, sleep=refuse_to_wait)
    outcomes: list[str] = []
    start = threading.Barrier(16)

    def one() -> None:
        start.wait()
        try:
            windows.acquire(TIME_KEY, 5, 1000.0)
            outcomes.append("went")
        except AskedToWait:
            outcomes.append("waits")

    threads = [threading.Thread(target=one) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert (outcomes.count("went"), outcomes.count("waits")) == (5, 11)


def test_a_penalty_in_one_process_holds_back_the_others(tmp_path: Path) -> None:
    clock = FakeClock()
    HostWindows(tmp_path, clock=clock).penalize(TIME_KEY, 2.0)
    other = HostWindows(tmp_path, clock=clock, sleep=clock.sleep)
    assert other.acquire(TIME_KEY, 10, 2.0) == pytest.approx(2.0)


def test_a_clock_set_back_neither_blocks_nor_counts_stamps_from_the_future(
    tmp_path: Path,
) -> None:
    clock = FakeClock()
    windows = HostWindows(tmp_path, clock=clock, sleep=refuse_to_wait)
    windows.acquire(TIME_KEY, 1, 2.0)
    windows.penalize(TIME_KEY, 2.0)
    clock.now -= 3600
    assert windows.acquire(TIME_KEY, 1, 2.0) == 0.0


def test_a_window_file_that_does_not_parse_counts_as_empty(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A process killed while writing leaves half a file: the flows go on, and it heals."""
    window_file(tmp_path, TIME_KEY).write_text('{"sent": [1.0, 2', encoding="utf-8")
    windows = HostWindows(tmp_path, sleep=refuse_to_wait)
    with caplog.at_level(logging.WARNING, logger="posguard.okx.host_limits"):
        assert windows.acquire(TIME_KEY, 1, 1000.0) == 0.0
    assert "does not parse" in caplog.text
    with pytest.raises(AskedToWait):
        windows.acquire(TIME_KEY, 1, 1000.0)


def test_only_ip_scoped_keys_reach_the_host_windows(tmp_path: Path) -> None:
    limiter = HostRateLimiter(HostWindows(tmp_path))
    limiter.acquire("uid:main:/api/v5/account/positions", 10, 2.0)
    assert list(tmp_path.iterdir()) == []
    limiter.acquire(TIERS_KEY, 10, 2.0)
    assert [p.name for p in tmp_path.iterdir()] == [window_file(tmp_path, TIERS_KEY).name]


def test_two_clients_with_their_own_limiters_share_public_time_but_not_accounts(
    tmp_path: Path,
) -> None:
    """As two flow-run processes would: each has its own limiter; OKX's 10 per 2 s for
    public/time is the host's, while each account's private budget stays its own."""
    clock = FakeClock()
    fake = FakeOkx()

    def client(name: str) -> OkxClient:
        windows = HostWindows(tmp_path, clock=clock, sleep=clock.sleep)
        return OkxClient(
            base_url="https://okx.test",
            account_name=name,
            account=account(),
            transport=httpx.MockTransport(fake.handle),
            limiter=HostRateLimiter(windows),
            wall_clock_ms=lambda: fake.server_ms,
        )

    first, second = client("a"), client("b")
    for _ in range(10):
        first.sync_clock()
    assert clock.slept == []
    second.sync_clock()
    assert clock.slept == [pytest.approx(2.0)]


def test_a_folder_another_user_owns_is_refused_with_what_to_do(tmp_path: Path) -> None:
    """The default folder sits in the system's temporary directory, which every user can
    write: a folder made there by someone else is not written through."""
    if os.getuid() != 0:
        pytest.skip("making a folder owned by another user needs root")
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    os.chown(theirs, 4242, 4242)
    with pytest.raises(ConfigError) as refused:
        HostWindows(theirs).acquire(TIME_KEY, 10, 2.0)
    assert str(theirs) in str(refused.value)
    assert "remove it" in str(refused.value)


def test_the_folder_is_made_private_to_its_user(tmp_path: Path) -> None:
    folder = tmp_path / "posguard-me-rate-limits"
    HostWindows(folder).acquire(TIME_KEY, 10, 2.0)
    assert folder.stat().st_mode & 0o777 == 0o700
