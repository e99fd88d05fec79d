"""Requests per second the simulator serves for signed account/positions calls.

    uv run python benchmarks/sim_requests.py [--requests 1000] [--positions 50]

The simulator runs in this process (uvicorn in a thread); the client is posguard's own,
with its client-side rate limiter off (a limiter is the point of OKX's limits, not of a
throughput test), against a simulator whose per-account limits are off for the run.
"""

from __future__ import annotations

import argparse
import time

from posguard.okx import OkxClient
from posguard.okx.ratelimit import NoRateLimit
from posguard.settings import AccountSettings
from posguard.sim import SimExchange, SimServer, validate_scenario
from posguard.sim.cli_support import known_instruments


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--positions", type=int, default=9)
    args = parser.parse_args()
    instruments = sorted(known_instruments())
    steps = [
        {
            "at": "+0s",
            "action": "open",
            "instId": instruments[i % len(instruments)],
            "mgnMode": "cross" if i < len(instruments) else "isolated",
            "sz": "1",
        }
        for i in range(min(args.positions, 2 * len(instruments)))
    ]
    accounts = [
        {
            "name": "bench",
            "api_key": "bench-key",
            "secret_key": "bench-secret",
            "passphrase": "bench-pass",
        }
    ]
    scenario = validate_scenario(
        {"name": "bench", "accounts": accounts, "steps": steps}, "bench", known_instruments()
    )
    with SimServer(SimExchange(scenario, enforce_rate_limits=False)) as server:
        account = AccountSettings(
            api_key="bench-key",
            secret_key="bench-secret",
            passphrase="bench-pass",
            demo=True,
            base_url=server.base_url,
        )
        limiter = NoRateLimit()
        with OkxClient(
            base_url=server.base_url, account_name="bench", account=account, limiter=limiter
        ) as client:
            client.positions()
            started = time.perf_counter()
            for _ in range(args.requests):
                client.positions()
            elapsed = time.perf_counter() - started
    print(
        f"{args.requests} signed positions requests ({len(steps)} positions each): "
        f"{elapsed:.2f} s, {args.requests / elapsed:.0f} requests/s, "
        f"{elapsed / args.requests * 1000:.2f} ms/request"
    )


if __name__ == "__main__":
    main()
