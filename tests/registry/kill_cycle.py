"""A reconciliation cycle that kills its own process at one write point (SIGKILL).

Run as `python -m tests.registry.kill_cycle URL POINT`; used by test_kill.py. The cycle
confirms a liquidation from evidence and heals it, so it reaches every write point.
"""

from __future__ import annotations

import os
import signal
import sys

from posguard.drift import DriftSettings
from posguard.frames import parse_positions, parse_positions_history
from posguard.registry import Registry
from posguard.stages.cycle import run_cycle

ACCOUNT = "main"
SNAPSHOT_MS = 1_766_189_100_000
LIQUIDATED = {
    "instType": "SWAP",
    "instId": "BTC-USDT-SWAP",
    "mgnMode": "isolated",
    "posSide": "net",
    "type": "3",
    "posId": "7001",
    "cTime": "1766188800000",
    "uTime": "1766189000000",
}


def cycle(url: str, at_ms: int, kill_at: str | None = None) -> list[str]:
    def reached(point: str) -> None:
        if point == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    with Registry(url, clock=lambda: at_ms) as registry:
        outcome = run_cycle(
            registry,
            ACCOUNT,
            at_ms,
            positions=parse_positions([]),
            history=parse_positions_history([LIQUIDATED]),
            settings=DriftSettings(heal="heal"),
            checkpoint=reached,
        )
    return [e.status for e in outcome.stored]


if __name__ == "__main__":
    cycle(sys.argv[1], SNAPSHOT_MS, sys.argv[2])
