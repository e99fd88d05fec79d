"""IP-scoped OKX limits shared by every process of the host, through locked window files."""

from __future__ import annotations

import errno
import json
import logging
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import httpx
import pytest

from posguard.errors import ConfigError, RateLimitedError
from posguard.okx import OkxClient
from posguard.okx.host_limits import HostRateLimiter, HostWindows, window_file
from tests.helpers import FakeClock, FakeOkx, account, answer, envelope

TIME_KEY = "ip:127.0.0.1:9:/api/v5/public/time"
TIERS_KEY = "ip:127.0.0.1:9:/api/v5/public/position-tiers"
ACCOUNT_KEY = "uid:main:/api/v5/account/positions"
ROOT = Path(__file__).resolve().parents[2]


class AskedToWait(Exception):
    def __init__(self, seconds: float) -> None:
        super().__init__(seconds)
        self.seconds = seconds


def refuse_to_wait(seconds: float) -> None:
    raise AskedToWait(seconds)


def test_a_burst_goes_at_once_one_short_of_the_limit_and_the_next_waits_for_the_oldest(
    tmp_path: Path,
) -> None:
    """One short of OKX's 10: stamped when let go, requests of two processes can reach OKX
    in another order."""
    clock = FakeClock()
    windows = HostWindows(tmp_path, clock=clock, sleep=clock.sleep)
    for _ in range(9):
        assert windows.acquire(TIME_KEY, 10, 2.0) == 0.0
        clock.now += 0.1
    # The first went at 1000.0 and leaves the window at 1002.0; it is now 1000.9.
    assert windows.acquire(TIME_KEY, 10, 2.0) == pytest.approx(1.1)
    assert clock.slept == [pytest.approx(1.1)]


def test_a_limit_of_one_still_lets_one_go(tmp_path: Path) -> None:
    windows = HostWindows(tmp_path, sleep=refuse_to_wait)
    assert windows.acquire(TIME_KEY, 1, 1000.0) == 0.0
    with pytest.raises(AskedToWait):
        windows.acquire(TIME_KEY, 1, 1000.0)


def test_another_process_spends_the_same_window(tmp_path: Path) -> None:
    """What the windows are for: a second process on the host sees the first one's
    requests (here a child process fills a window that frees in 1000 s)."""
    child = textwrap.dedent(
        f"""
        from pathlib import Path
        from posguard.okx.host_limits import HostWindows
        windows = HostWindows(Path({str(tmp_path)!r}))
        assert windows.acquire({TIERS_KEY!r}, 3, 1000.0) == 0.0
        assert windows.acquire({TIERS_KEY!r}, 3, 1000.0) == 0.0
        """
    )
    subprocess.run([sys.executable, "-c", child], check=True, cwd=ROOT, timeout=60)
    windows = HostWindows(tmp_path, sleep=refuse_to_wait)
    with pytest.raises(AskedToWait) as asked:
        windows.acquire(TIERS_KEY, 3, 1000.0)
    assert 900 < asked.value.seconds <= 1000
    # Another key is another window.
    assert windows.acquire(TIME_KEY, 3, 1000.0) == 0.0


def test_threads_of_one_process_never_take_more_than_the_limit(tmp_path: Path) -> None:
    """Each use opens the file anew: without that, threads would share one lock and race
    on the read-modify-write."""
    windows = HostWindows(tmp_path, sleep=refuse_to_wait)
    outcomes: list[str] = []
    start = threading.Barrier(16)

    def one() -> None:
        start.wait()
        try:
            windows.acquire(TIME_KEY, 6, 1000.0)
            outcomes.append("went")
        except AskedToWait:
            outcomes.append("waits")

    threads = [threading.Thread(target=one) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert (outcomes.count("went"), outcomes.count("waits")) == (5, 11)


def test_a_window_file_keeps_only_the_stamps_inside_its_window(tmp_path: Path) -> None:
    clock = FakeClock()
    windows = HostWindows(tmp_path, clock=clock, sleep=clock.sleep)
    for _ in range(500):
        windows.acquire(TIME_KEY, 10, 2.0)
        clock.now += 0.5
    stored = json.loads(window_file(tmp_path, TIME_KEY).read_text(encoding="utf-8"))
    assert len(stored["sent"]) <= 9
    assert min(stored["sent"]) > clock.now - 2.0 - 0.5


def test_a_penalty_in_one_process_holds_back_the_others_for_all_its_length(
    tmp_path: Path,
) -> None:
    clock = FakeClock()
    HostWindows(tmp_path, clock=clock).penalize(TIME_KEY, 5.0)
    other = HostWindows(tmp_path, clock=clock, sleep=clock.sleep)
    # Longer than the endpoint's window: still the whole penalty.
    assert other.acquire(TIME_KEY, 10, 2.0) == pytest.approx(5.0)


def test_a_shorter_penalty_never_cuts_a_longer_one_short(tmp_path: Path) -> None:
    clock = FakeClock()
    windows = HostWindows(tmp_path, clock=clock, sleep=clock.sleep)
    windows.penalize(TIME_KEY, 5.0)
    windows.penalize(TIME_KEY, 1.0)
    assert windows.acquire(TIME_KEY, 10, 2.0) == pytest.approx(5.0)


def test_a_clock_set_back_neither_blocks_nor_counts_stamps_from_the_future(
    tmp_path: Path,
) -> None:
    clock = FakeClock()
    windows = HostWindows(tmp_path, clock=clock, sleep=refuse_to_wait)
    windows.acquire(TIME_KEY, 2, 2.0)
    windows.penalize(TIME_KEY, 2.0)
    clock.now -= 3600
    assert windows.acquire(TIME_KEY, 2, 2.0) == 0.0
    # And a 429 after the clock went back holds again.
    windows.penalize(TIME_KEY, 2.0)
    with pytest.raises(AskedToWait) as asked:
        windows.acquire(TIME_KEY, 2, 2.0)
    assert asked.value.seconds == pytest.approx(2.0)


def test_a_window_file_that_does_not_parse_counts_as_empty(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A process killed while writing leaves half a file: the flows go on, and it heals."""
    window_file(tmp_path, TIME_KEY).write_text('{"sent": [1.0, 2', encoding="utf-8")
    windows = HostWindows(tmp_path, sleep=refuse_to_wait)
    with caplog.at_level(logging.WARNING, logger="posguard.okx.host_limits"):
        assert windows.acquire(TIME_KEY, 2, 1000.0) == 0.0
    assert "does not parse" in caplog.text
    with pytest.raises(AskedToWait):
        windows.acquire(TIME_KEY, 2, 1000.0)


def test_only_ip_scoped_keys_reach_the_host_windows(tmp_path: Path) -> None:
    limiter = HostRateLimiter(HostWindows(tmp_path))
    limiter.acquire(ACCOUNT_KEY, 10, 2.0)
    limiter.penalize(ACCOUNT_KEY, 2.0)
    assert list(tmp_path.iterdir()) == []
    limiter.acquire(TIERS_KEY, 10, 2.0)
    assert [p.name for p in tmp_path.iterdir()] == [window_file(tmp_path, TIERS_KEY).name]


def host_client(folder: Path, clock: FakeClock, fake: FakeOkx, name: str) -> OkxClient:
    """A client with a limiter of its own, as each flow-run process has."""
    return OkxClient(
        base_url="https://okx.test",
        account_name=name,
        account=account(),
        transport=httpx.MockTransport(fake.handle),
        limiter=HostRateLimiter(HostWindows(folder, clock=clock, sleep=clock.sleep)),
        wall_clock_ms=lambda: fake.server_ms,
    )


def test_two_clients_with_their_own_limiters_share_public_time(tmp_path: Path) -> None:
    clock = FakeClock()
    fake = FakeOkx()
    first, second = host_client(tmp_path, clock, fake, "a"), host_client(tmp_path, clock, fake, "b")
    for _ in range(9):
        first.sync_clock()
    assert clock.slept == []
    second.sync_clock()
    assert clock.slept == [pytest.approx(2.0)]


def test_a_429_met_by_one_client_holds_back_another_processes_next_request(
    tmp_path: Path,
) -> None:
    clock = FakeClock()
    fake = FakeOkx()
    answers = iter([answer({"msg": "Too Many Requests", "code": "50011"}, 429)])
    fake.routes["/api/v5/public/time"] = lambda _r: next(
        answers, answer(envelope([{"ts": str(fake.server_ms)}]))
    )
    first, second = host_client(tmp_path, clock, fake, "a"), host_client(tmp_path, clock, fake, "b")
    with pytest.raises(RateLimitedError):
        first.sync_clock()
    second.sync_clock()
    assert clock.slept == [pytest.approx(2.0)]


def test_a_folder_another_user_owns_is_refused_with_what_to_do(tmp_path: Path) -> None:
    """The default folder sits in the system's temporary directory, which every user can
    write: a folder made there by someone else is not written through."""
    windows = HostWindows(tmp_path, user=4242)
    with pytest.raises(ConfigError) as refused:
        windows.acquire(TIME_KEY, 10, 2.0)
    assert str(tmp_path) in str(refused.value)
    assert "belongs to user" in str(refused.value)
    assert "remove it" in str(refused.value)
    assert list(tmp_path.iterdir()) == []


def test_the_folder_is_made_private_and_made_again_when_removed(tmp_path: Path) -> None:
    folder = tmp_path / "posguard-me-rate-limits"
    windows = HostWindows(folder)
    windows.acquire(TIME_KEY, 10, 2.0)
    assert folder.stat().st_mode & 0o777 == 0o700
    window_file(folder, TIME_KEY).unlink()
    folder.rmdir()  # a temporary-file cleaner, an operator
    windows.acquire(TIME_KEY, 10, 2.0)
    assert window_file(folder, TIME_KEY).exists()
    folder.chmod(0o777)
    windows.acquire(TIME_KEY, 10, 2.0)
    assert folder.stat().st_mode & 0o777 == 0o700


def test_a_link_planted_in_the_folder_is_not_followed(tmp_path: Path) -> None:
    folder = tmp_path / "windows"
    folder.mkdir(mode=0o700)
    target = tmp_path / "someone-elses-file"
    target.write_text("precious", encoding="utf-8")
    window_file(folder, TIME_KEY).symlink_to(target)
    with pytest.raises(OSError, match=r"symbolic links") as refused:
        HostWindows(folder).acquire(TIME_KEY, 10, 2.0)
    assert refused.value.errno == errno.ELOOP
    assert target.read_text(encoding="utf-8") == "precious"


def test_windows_that_cannot_be_used_fall_back_to_the_process_with_one_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A limiter must not stop the flows: a folder that cannot be made (here a file stands
    in its place) leaves each process counting its own requests, and says so once."""
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("", encoding="utf-8")
    clock = FakeClock()
    limiter = HostRateLimiter(HostWindows(blocked), clock=clock, sleep=clock.sleep)
    with caplog.at_level(logging.WARNING, logger="posguard.okx.host_limits"):
        for _ in range(11):
            limiter.acquire(TIME_KEY, 10, 2.0)
        limiter.penalize(TIME_KEY, 2.0)
    # Counted in the process: the 11th waited for the first to leave the window.
    assert sum(clock.slept) == pytest.approx(2.0)
    warnings = [r for r in caplog.records if "cannot be used" in r.getMessage()]
    assert len(warnings) == 1
    assert str(blocked) in warnings[0].getMessage()
