from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT.parent / "shared" / "okx-samples"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The slow end-to-end tests first: under xdist each one starts on a worker of its own
    while the quick tests fill the others, instead of all three finishing the run late."""

    def cost(item: pytest.Item) -> tuple[bool, float]:
        timeout = item.get_closest_marker("timeout")
        budget = float(timeout.args[0]) if timeout and timeout.args else 0.0
        return (item.get_closest_marker("slow") is None, -budget)

    items.sort(key=cost)


@pytest.fixture(scope="session")
def samples() -> Path:
    if not SAMPLES.is_dir():
        pytest.fail(f"the OKX samples are expected beside the project at {SAMPLES}")
    return SAMPLES


@pytest.fixture(scope="session", autouse=True)
def host_rate_limit_windows(tmp_path_factory: pytest.TempPathFactory) -> None:
    """The flows' IP-scoped rate-limit windows (posguard.okx.host_limits) in the session's
    temporary folder rather than the user's, which other posguard processes share."""
    from posguard.okx.host_limits import HOST_LIMITER, HostWindows

    HOST_LIMITER.windows = HostWindows(tmp_path_factory.mktemp("rate-limits"))


@pytest.fixture(scope="session")
def prefect_server() -> Iterator[None]:
    """One Prefect test server per session, shared by every test directory that needs an API
    (tests/flows, tests/tasks): a second harness would cost another server start."""
    # Imported here: the tests that need no Prefect API do not pay for importing it.
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    with (
        prefect_test_harness(server_startup_timeout=120),
        temporary_settings(
            # A 1-second heartbeat join per flow run is the harness's biggest cost; tests only.
            {PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}
        ),
    ):
        yield
