"""Accounts per minute through team mode: a Prefect server on PostgreSQL, a work pool with N
warm workers (`posguard team worker`), the guard flow (instruments, reconcile with validation,
leverage plan) for every account of the simulator.

    uv run python benchmarks/team_throughput.py [--accounts 200] [--positions 50]
        [--workers 2] [--accounts-per-run 1 100] [--rounds 3]

For each --accounts-per-run value the script brings a fresh team up (throwaway PostgreSQL
databases for the server and the registry), seeds the registry with the simulator's book
(steady state), runs `guard-accounts` as `posguard team run` does `--rounds` times in a row,
and prints accounts per minute of the first round (the workers import GX and plan every
account's leverage) and the median of the others (a 30 s schedule's steady state: leverage
is planned every `--leverage-seconds`, 300 by default, so not in these; with 1 it is planned
in every round, a warm round's worst case), with the per-run durations the server
recorded. Then the bare floor: a plain asyncio script making the same HTTP calls for every
account (account config, positions, positions history, fills; the instruments once), and
the ratio. Needs the local PostgreSQL at 127.0.0.1:5432.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from benchmarks.simulator import ROOT, free_port, seed_registry, start_simulator

ADMIN = "host=127.0.0.1 port=5432 dbname=postgres"


def accounts(count: int) -> list[dict[str, Any]]:
    return [
        {
            "name": f"acct{n:03d}",
            "api_key": f"acct{n:03d}-key",
            "secret_key": f"acct{n:03d}-secret",
            "passphrase": f"acct{n:03d}-pass",
            "demo": True,
        }
        for n in range(count)
    ]


def write_config(
    folder: Path,
    specs: list[dict[str, Any]],
    base_url: str,
    registry_url: str,
    prefect_url: str,
    leverage_seconds: int,
) -> Path:
    table = folder / "accounts.csv"
    rows = ["name,api_key,secret_key,passphrase,demo,base_url"]
    rows += [
        f"{s['name']},{s['api_key']},{s['secret_key']},{s['passphrase']},true,{base_url}"
        for s in specs
    ]
    table.write_text("\n".join(rows) + "\n")
    config = folder / "posguard.toml"
    config.write_text(
        f'state_dir = "{folder / "state"}"\nregistry_url = "{registry_url}"\n'
        f'public_base_url = "{base_url}"\naccounts_file = "accounts.csv"\nmode = "team"\n\n'
        f'[team]\nprefect_database_url = "{prefect_url}"\n\n'
        f"[schedules]\nleverage_seconds = {leverage_seconds}\n"
    )
    return config


async def bare_floor(specs: list[dict[str, Any]], base_url: str, parallel: int = 16) -> float:
    """Seconds for a plain asyncio script to make the round's HTTP calls for every account:
    signed GETs, JSON decoded, nothing else."""
    import httpx

    from posguard.okx.signing import okx_timestamp, sign

    paths = [
        "/api/v5/account/config",
        "/api/v5/account/positions?instType=SWAP",
        "/api/v5/account/positions-history?instType=SWAP",
        "/api/v5/trade/fills?instType=SWAP",
    ]
    gate = asyncio.Semaphore(parallel)

    async def account(client: httpx.AsyncClient, spec: dict[str, Any]) -> None:
        for path in paths:
            stamp = okx_timestamp(int(time.time() * 1000))
            headers = {
                "OK-ACCESS-KEY": spec["api_key"],
                "OK-ACCESS-SIGN": sign(spec["secret_key"], stamp, "GET", path, ""),
                "OK-ACCESS-TIMESTAMP": stamp,
                "OK-ACCESS-PASSPHRASE": spec["passphrase"],
                "x-simulated-trading": "1",
            }
            async with gate:
                answer = await client.get(path, headers=headers)
            body = answer.json()
            if body.get("code") != "0":
                raise RuntimeError(f"{spec['name']} {path}: {body.get('code')} {body.get('msg')}")

    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        began = time.monotonic()
        (await client.get("/api/v5/public/instruments?instType=SWAP")).json()
        await asyncio.gather(*(account(client, spec) for spec in specs))
        return time.monotonic() - began


def run_once(
    count: int,
    positions: int,
    workers: int,
    per_run: int,
    folder: Path,
    rounds: int,
    leverage_seconds: int,
) -> dict[str, Any]:
    import psycopg

    suffix = uuid.uuid4().hex[:8]
    prefect_db, registry_db = f"pg_bench_prefect_{suffix}", f"pg_bench_registry_{suffix}"
    with psycopg.connect(ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{registry_db}"')
    specs = accounts(count)
    sim, base_url = start_simulator(
        {
            "name": "team-load",
            "clock": "wall",
            "accounts": specs,
            "load": {"instruments": positions, "positions": positions},
        },
        folder,
    )
    try:
        config = write_config(
            folder,
            specs,
            base_url,
            f"postgresql+psycopg://127.0.0.1:5432/{registry_db}",
            f"postgresql+asyncpg://127.0.0.1:5432/{prefect_db}",
            leverage_seconds,
        )
        os.environ["POSGUARD_CONFIG"] = str(config)
        os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
        os.environ["PREFECT_LOGGING_LEVEL"] = "WARNING"
        from prefect.client.orchestration import get_client
        from prefect.client.schemas.filters import FlowFilter, FlowFilterName
        from prefect.settings import PREFECT_API_URL, temporary_settings

        from deployments.team import Team, TeamOptions, deploy_to_pool, team_run
        from posguard.settings import load_settings
        from tasks.context import reload_settings

        settings = load_settings(config)
        reload_settings()
        seed_registry(settings, sorted(settings.accounts))
        options = TeamOptions.from_settings(settings, config)
        options.workers = workers
        options.port = free_port()
        began = time.monotonic()
        with Team(options) as team, temporary_settings({PREFECT_API_URL: team.server.api_url}):
            up = time.monotonic()
            deploy_to_pool(settings, options.pool)
            deployed = time.monotonic()
            seconds: list[float] = []
            completed: list[int] = []
            for _ in range(rounds):
                started = time.monotonic()
                states = team_run(None, per_run, wait_seconds=3600)
                seconds.append(time.monotonic() - started)
                completed.append(sum(1 for s in states.values() if s == "Completed"))
            flow = "guard-account" if per_run == 1 else "guard-round"
            with get_client(sync_client=True) as client:
                runs: list[Any] = []
                while True:
                    page = client.read_flow_runs(
                        flow_filter=FlowFilter(name=FlowFilterName(any_=[flow])),
                        limit=200,
                        offset=len(runs),
                    )
                    runs += page
                    if len(page) < 200:
                        break
        durations = [r.total_run_time.total_seconds() for r in runs if r.total_run_time]
        floor_s = asyncio.run(bare_floor(specs, base_url))
        return {
            "per_run": per_run,
            "up_s": up - began,
            "deploy_s": deployed - up,
            "round_s": seconds,
            "completed": completed,
            "accounts": count,
            "run_median_s": statistics.median(durations) if durations else None,
            "floor_s": floor_s,
        }
    finally:
        sim.terminate()
        sim.wait(timeout=30)
        with psycopg.connect(ADMIN, autocommit=True) as admin:
            for name in (prefect_db, registry_db):
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--accounts", type=int, default=200)
    parser.add_argument("--positions", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--accounts-per-run", type=int, nargs="+", default=[1, 100])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--leverage-seconds",
        type=int,
        default=300,
        help="[schedules] leverage_seconds: the default 300 plans every account's leverage in "
        "the first round only; 1 plans it in every round (a warm round's worst case)",
    )
    parser.add_argument("--one", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one is not None:
        folder = Path(tempfile.mkdtemp(prefix="posguard-team-bench-"))
        result = run_once(
            args.accounts,
            args.positions,
            args.workers,
            args.one,
            folder,
            args.rounds,
            args.leverage_seconds,
        )
        print(json.dumps(result))
        return
    print(
        f"{args.accounts} accounts x {args.positions} positions, {args.workers} warm workers, "
        f"Prefect server and registry on PostgreSQL ({os.cpu_count()} cores), "
        f"{args.rounds} rounds in a row, leverage planned every {args.leverage_seconds} s"
    )
    print(
        f"{'per run':>8}{'up s':>7}{'round 1 s':>10}{'acc/min':>9}{'later s':>9}{'acc/min':>9}"
        f"{'completed':>16}{'run median s':>14}{'floor s':>9}{'vs floor':>9}"
    )
    for per_run in args.accounts_per_run:
        command = [sys.executable, __file__, "--one", str(per_run)]
        command += ["--accounts", str(args.accounts), "--positions", str(args.positions)]
        command += ["--workers", str(args.workers), "--rounds", str(args.rounds)]
        command += ["--leverage-seconds", str(args.leverage_seconds)]
        done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, check=False)
        if done.returncode != 0:
            sys.exit(f"accounts-per-run {per_run} failed:\n{done.stderr[-4000:]}")
        row = json.loads(done.stdout.strip().splitlines()[-1])
        first, *later = row["round_s"]
        steady = statistics.median(later) if later else first
        median = row["run_median_s"]
        print(
            f"{per_run:>8}{row['up_s']:>7.1f}{first:>10.1f}{row['accounts'] / first * 60:>9.1f}"
            f"{steady:>9.1f}{row['accounts'] / steady * 60:>9.1f}"
            f"{'/'.join(str(c) for c in row['completed']):>16}"
            f"{median if median is None else round(median, 1):>14}"
            f"{row['floor_s']:>9.2f}{steady / row['floor_s']:>8.1f}x"
        )


if __name__ == "__main__":
    main()
