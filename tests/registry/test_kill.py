"""A process killed anywhere inside a cycle loses nothing and doubles nothing."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from posguard.registry import Registry
from posguard.stages.cycle import WRITE_POINTS
from tests.registry.kill_cycle import ACCOUNT, SNAPSHOT_MS, cycle

ROOT = Path(__file__).resolve().parents[2]
KEY = ("BTC-USDT-SWAP", "net", "isolated")


@pytest.mark.slow
@pytest.mark.parametrize("point", WRITE_POINTS)
def test_killed_at_each_write_point_the_next_cycle_stores_each_event_once(
    registry_url: str, point: str
) -> None:
    with Registry(registry_url, clock=lambda: 0) as registry:
        registry.write(
            ACCOUNT, KEY[0], mgn_mode="isolated", pos="5", pos_id="7001", c_time=1766188800000
        )
    killed = subprocess.run(
        [sys.executable, "-m", "tests.registry.kill_cycle", registry_url, point],
        cwd=ROOT,
        capture_output=True,
        check=False,
        timeout=120,
    )
    assert killed.returncode == -9, killed.stderr.decode()
    after = cycle(registry_url, SNAPSHOT_MS + 30_000)
    with Registry(registry_url) as registry:
        stored = [(e["status"], e["cause"]) for e in registry.events(ACCOUNT)]
        row = registry.row(ACCOUNT, KEY)
    # Killed before the commit: nothing of the first cycle landed and the next decides it
    # again. Killed after: the next has nothing left to say.
    assert sorted(stored) == [("confirmed", "liquidated"), ("healed", "liquidated")]
    assert after == ([] if point == "committed" else ["confirmed", "healed"])
    assert row is not None
    assert (row["pos"], row["version"]) == ("0", 2)  # healed exactly once
    if registry_url.startswith("sqlite"):
        database = make_url(registry_url).database
        with sqlite3.connect(str(database)) as connection:
            assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
