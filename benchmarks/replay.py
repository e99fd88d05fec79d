"""Replay throughput: N sync steps over M positions through the real engine and registry.

    uv run python benchmarks/replay.py [--steps 10000] [--positions 500]

Steps are generated lazily (a timeline this size would be gigabytes of JSON): every step is a
full positions envelope of M records; every 50th step one position is missing for one poll
(a flap) and every 100th step one size changes. Prints steps per second and peak RSS.
"""

from __future__ import annotations

import argparse
import resource
import time
from collections.abc import Iterator
from typing import Any

from posguard.drift import DriftSettings
from posguard.stages.replay import Timeline, replay
from tests.drift.builders import at, env, position, registry_row


def steps(count: int, positions: int) -> Iterator[dict[str, Any]]:
    base = [position(f"C{i}-USDT-SWAP", "10", pos_id=str(1000 + i)) for i in range(positions)]
    for n in range(count):
        records = base
        if n % 50 == 49:
            records = base[1:]  # one position missing for one poll
        if n % 100 == 99:
            records = [*base[:-1], {**base[-1], "pos": "12"}]
        yield {
            "at": at(30 * n),
            "sync": {"positions": env(records), "positions_history": env([]), "fills": env([])},
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--positions", type=int, default=500)
    args = parser.parse_args()
    registry = [registry_row(f"C{i}-USDT-SWAP", "10") for i in range(args.positions)]
    timeline = Timeline("main", DriftSettings(), {}, registry, steps(args.steps, args.positions))
    started = time.perf_counter()
    events = 0
    for _ in replay(timeline):
        events += 1
    elapsed = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"{args.steps} sync steps x {args.positions} positions: {elapsed:.1f} s, "
        f"{args.steps / elapsed:.1f} steps/s, {events} drift events, peak RSS {peak_mb:.0f} MB"
    )


if __name__ == "__main__":
    main()
