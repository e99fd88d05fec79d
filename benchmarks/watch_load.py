"""One watcher process, many accounts' streams: does it keep up? Issue 16, goal 2.

    uv run python benchmarks/watch_load.py [--accounts 100] [--rate 50] [--seconds 30]

The simulator runs in its own process (`--accounts` accounts with `--positions` positions
each, wall clock starting now). This process runs the watcher (posguard.watch.Watcher, its
notices counted instead of sent to Prefect: the Prefect side is one `emit_event` per notice,
a queue put). After every stream is subscribed (OKX allows 3 new connections per second per
IP: the start takes accounts / 3 seconds), a driver changes positions at `--rate` changes per
second spread over the accounts for `--seconds`. Printed: pushes and notices per second, the
lag from the simulator's push time (pTime) to the watcher reading it (median, p99, max), the
watcher's CPU share, and whether every change reached a notice (none lost).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import resource
import statistics
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr

from benchmarks.simulator import start_simulator
from posguard.watch import Notice, StreamAccount, Watcher


def specs(count: int) -> list[dict[str, Any]]:
    return [
        {
            "name": f"acct{n:03d}",
            "api_key": f"bench-key-{n}",
            "secret_key": f"bench-secret-{n}",
            "passphrase": "bench-pass",
        }
        for n in range(count)
    ]


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=100)
    parser.add_argument("--positions", type=int, default=5)
    parser.add_argument("--rate", type=float, default=50.0, help="changes per second")
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="posguard-watch-load-"))
    accounts = specs(args.accounts)
    start = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    sim, sim_url = start_simulator(
        {
            "name": "watch-load",
            "clock": "wall",
            "start": start,
            "accounts": accounts,
            "load": {"instruments": args.positions, "positions": args.positions},
        },
        folder,
    )
    try:
        # The simulator's clock started when it loaded: measure its offset to this machine's.
        venue = int(httpx.get(f"{sim_url}/api/v5/public/time").json()["data"][0]["ts"])
        offset_ms = venue - time.time_ns() // 1_000_000
        state = httpx.get(f"{sim_url}/__sim__/state", timeout=30).json()["accounts"]
        notices: list[Notice] = []
        watcher = Watcher(
            [
                StreamAccount(
                    a["name"],
                    sim_url.replace("http://", "ws://") + "/ws/v5/private",
                    SecretStr(a["api_key"]),
                    SecretStr(a["secret_key"]),
                    SecretStr(a["passphrase"]),
                )
                for a in accounts
            ],
            notices.append,
            wall_ms=lambda: time.time_ns() // 1_000_000 + offset_ms,
        )
        loop = asyncio.new_event_loop()
        stopping = asyncio.Event()
        runner = threading.Thread(target=loop.run_until_complete, args=(watcher.run(stopping),))
        began = time.monotonic()
        runner.start()
        while sum(s.sessions > 0 for s in watcher.status.values()) < args.accounts:
            if time.monotonic() - began > args.accounts + 60:
                raise SystemExit("the streams did not all subscribe")
            time.sleep(0.2)
        while sum(book.complete for book in watcher.books.values()) < args.accounts:
            time.sleep(0.1)
        print(f"{args.accounts} streams subscribed in {time.monotonic() - began:.1f} s")

        changed: dict[str, int] = {}
        rng = random.Random(7)
        cpu_before, pushes_before = cpu_seconds(), watcher.figures.pushes
        watcher.figures.lags_ms.clear()
        driving = time.monotonic()
        with httpx.Client(base_url=sim_url, timeout=10) as client:
            sent = 0
            while time.monotonic() - driving < args.seconds:
                account = accounts[rng.randrange(len(accounts))]["name"]
                position = rng.choice(state[account]["positions"])
                side = "buy" if not position["pos"].startswith("-") else "sell"
                client.post(
                    "/__sim__/step",
                    json={
                        "action": "open",
                        "account": account,
                        "instId": position["instId"],
                        "mgnMode": position["mgnMode"],
                        "posSide": position["posSide"],
                        "side": side,
                        "sz": "1",
                    },
                ).raise_for_status()
                changed[account] = changed.get(account, 0) + 1
                sent += 1
                pause = driving + sent / args.rate - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
        elapsed = time.monotonic() - driving
        time.sleep(3)  # the last bursts' quiet time
        cpu = cpu_seconds() - cpu_before
        pushes = watcher.figures.pushes - pushes_before
        lags = sorted(watcher.figures.lags_ms)
        loop.call_soon_threadsafe(stopping.set)
        runner.join(timeout=30)
    finally:
        sim.terminate()
        sim.wait(timeout=30)
    noticed = {n.account for n in notices}
    lost = sorted(set(changed) - noticed)
    print(
        f"driven: {sent} changes in {elapsed:.1f} s ({sent / elapsed:.1f}/s) over "
        f"{len(changed)} accounts"
    )
    print(
        f"watcher: {pushes / elapsed:.1f} pushes/s, {len(notices) / elapsed:.1f} notices/s "
        f"(events), CPU {cpu / elapsed:.0%} of a core (driver included)"
    )
    if lags:
        p99 = lags[min(len(lags) - 1, int(len(lags) * 0.99))]
        print(
            f"lag push time -> read: median {statistics.median(lags):.0f} ms, p99 {p99} ms, "
            f"max {lags[-1]} ms ({len(lags)} pushes)"
        )
    print(f"accounts changed but never noticed: {len(lost)} {lost[:5]}")


if __name__ == "__main__":
    main()
