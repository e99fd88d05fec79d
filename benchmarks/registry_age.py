"""Does a reconcile cycle's registry work grow with the account's age? (issue 14, goal 4)

    uv run python benchmarks/registry_age.py [--ages 0 20160 262800 1051200] [--registry-url URL]

An age is a number of 30-second cycles already recorded for the account (1,051,200 is a
year): that many rows in `runs` (each with a summary like a reconcile run's), one drift event
per 100 cycles, and the account's 50 open positions in the registry. At each age the script
times what one steady-state reconcile cycle does in the registry, best of five:

- `alerted`: what the last validation alerted on (the per-account `expectation_alerts` row);
- `cycle`: `run_cycle` over a 50-position snapshot that agrees with the registry (memory,
  positions, the pure engine, memory and events written);
- `record`: the run's own row (start and finish);

and, for comparison, `summaries`: the old way of finding what was alerted (every run summary
of the account read and parsed), which is what made a cycle's cost grow with age.
The ratio column is the cycle's registry work at that age over the same at age 0 (the goal:
about 1, i.e. O(open positions and pending discrepancies), not O(history)).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import insert

from posguard.frames import parse_positions
from posguard.registry import Registry, schema, sqlite_url
from posguard.stages.cycle import run_cycle

ACCOUNT = "aged"
POSITIONS = 50
CYCLE_MS = 30_000
START_MS = 1_766_188_800_000  # 2025-12-20T00:00:00Z
SUMMARY = json.dumps(
    {
        "account": ACCOUNT,
        "positions": POSITIONS,
        "failing_expectation_rows": 1,
        "drift_events": [],
        "expectations": {
            "success": False,
            "results": [
                {
                    "expectation": "lever > 0",
                    "success": False,
                    "failing": [{"instId": "B7-USDT-SWAP", "posSide": "net", "mgnMode": "cross"}],
                }
            ],
        },
        "reconcile_seconds": {"registry_read": 0.004, "engine": 0.01, "registry_write": 0.003},
    }
)


def records(at_ms: int) -> list[dict[str, Any]]:
    return [
        {
            "instType": "SWAP",
            "instId": f"B{i}-USDT-SWAP",
            "mgnMode": "cross",
            "posSide": "net",
            "pos": "3",
            "posId": str(900_000 + i),
            "cTime": str(START_MS - 60_000),
            "uTime": str(START_MS - 60_000),
            "lever": "5",
            "avgPx": "1.5",
        }
        for i in range(POSITIONS)
    ]


def seed(registry: Registry, age: int) -> None:
    """`age` cycles of history for the account, written in bulk."""
    registry.write_many(
        {
            "account": ACCOUNT,
            "inst_id": f"B{i}-USDT-SWAP",
            "pos": "3",
            "pos_id": str(900_000 + i),
            "c_time": START_MS - 60_000,
            "lever": "5",
        }
        for i in range(POSITIONS)
    )
    batch = 50_000
    with registry.db.engine.begin() as connection:
        for first in range(0, age, batch):
            numbers = range(first, min(age, first + batch))
            connection.execute(
                insert(schema.runs),
                [
                    {
                        "id": f"run-{n}",
                        "account": ACCOUNT,
                        "flow": "reconcile-positions",
                        "started_at_ms": START_MS + n * CYCLE_MS,
                        "finished_at_ms": START_MS + n * CYCLE_MS + 900,
                        "status": "completed",
                        "summary": SUMMARY,
                    }
                    for n in numbers
                ],
            )
            events = [n for n in numbers if n % 100 == 0]
            if events:
                connection.execute(
                    insert(schema.drift_events),
                    [
                        {
                            "id": f"event-{n}",
                            "account": ACCOUNT,
                            "inst_id": "B1-USDT-SWAP",
                            "pos_side": "net",
                            "mgn_mode": "cross",
                            "kind": "DRIFT_SIZE",
                            "status": "resolved",
                            "cause": "registry_lag",
                            "at_ms": START_MS + n * CYCLE_MS,
                            "evidence": "{}",
                            "recorded_at_ms": START_MS + n * CYCLE_MS,
                        }
                        for n in events
                    ],
                )


def summaries_way(registry: Registry) -> int:
    """The old per-cycle read: every run summary of the account, parsed until the newest
    one with expectations (as `previous_failures` did before `expectation_alerts`)."""
    runs = [r for r in registry.runs(ACCOUNT) if r["flow"] == "reconcile-positions"]
    for run in reversed(runs):
        summary = json.loads(run["summary"] or "{}")
        if summary.get("expectations") is not None:
            return len(summary["expectations"]["results"])
    return 0


def best(fn: Callable[[], object], passes: int = 5) -> float:
    times = []
    for _ in range(passes):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def one_age(url: str, age: int) -> dict[str, float]:
    with Registry(url) as registry:
        seed(registry, age)
        at_ms = START_MS + (age + 1) * CYCLE_MS
        positions: pd.DataFrame = parse_positions(records(at_ms), account=ACCOUNT)
        counter = iter(range(10**9))

        def cycle() -> None:
            moment = at_ms + next(counter) * CYCLE_MS
            outcome = run_cycle(registry, ACCOUNT, moment, positions=positions)
            if outcome.skipped is not None or outcome.events:
                raise SystemExit(f"not a steady-state cycle: {outcome}")

        def record() -> None:
            run_id = f"now-{next(counter)}"
            registry.start_run(run_id, ACCOUNT, "reconcile-positions")
            registry.finish_run(run_id, "completed", json.loads(SUMMARY))

        registry.save_alerted_failures(ACCOUNT, {("lever > 0", "B7-USDT-SWAP", "net", "cross")})
        return {
            "alerted": best(lambda: registry.alerted_failures(ACCOUNT)),
            "cycle": best(cycle),
            "record": best(record),
            "summaries": best(lambda: summaries_way(registry), passes=2 if age > 100_000 else 5),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ages", type=int, nargs="+", default=[0, 20_160, 262_800, 1_051_200])
    parser.add_argument(
        "--registry-url", help="a PostgreSQL database to use (emptied per age); default SQLite"
    )
    args = parser.parse_args()
    print(
        f"{'age (cycles)':>13} {'alerted':>9} {'cycle':>9} {'record':>9} {'ours':>9} "
        f"{'ratio':>6} {'summaries':>10}"
    )
    base: float | None = None
    for age in args.ages:
        with tempfile.TemporaryDirectory() as folder:
            url = args.registry_url or sqlite_url(Path(folder) / "aged.db")
            if args.registry_url:
                with Registry(url) as registry:
                    schema.metadata.drop_all(registry.db.engine)
                    with registry.db.engine.begin() as connection:
                        connection.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
            row = one_age(url, age)
        ours = row["alerted"] + row["cycle"] + row["record"]
        base = ours if base is None else base
        print(
            f"{age:>13,} {row['alerted'] * 1000:>7.2f}ms {row['cycle'] * 1000:>7.2f}ms "
            f"{row['record'] * 1000:>7.2f}ms {ours * 1000:>7.2f}ms {ours / base:>6.2f} "
            f"{row['summaries'] * 1000:>8.1f}ms"
        )


if __name__ == "__main__":
    main()
