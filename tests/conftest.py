from __future__ import annotations

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
