"""Accounts per minute through team mode: a Prefect server on PostgreSQL, a process work pool
with N workers, the guard flow (instruments, reconcile with validation, leverage plan) for
every account of the simulator.

    uv run python benchmarks/team_throughput.py [--accounts 200] [--positions 50]
        [--workers 2] [--accounts-per-run 1 10]

For each --accounts-per-run value the script brings a fresh team up (throwaway PostgreSQL
databases for the server and the registry), seeds the registry with the simulator's book
(steady state), runs `guard-accounts` as `posguard team run` does, and prints the wall time,
accounts per minute and the per-run durations the server recorded. Needs the local
PostgreSQL at 127.0.0.1:5432.
"""

from __future__ import annotations

import argparse
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
    folder: Path, specs: list[dict[str, Any]], base_url: str, registry_url: str, prefect_url: str
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
        f'[team]\nprefect_database_url = "{prefect_url}"\n'
    )
    return config


def run_once(
    count: int, positions: int, workers: int, per_run: int, folder: Path
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
            states = team_run(None, per_run, wait_seconds=3600)
            ran = time.monotonic()
            with get_client(sync_client=True) as client:
                runs: list[Any] = []
                while True:
                    page = client.read_flow_runs(
                        flow_filter=FlowFilter(name=FlowFilterName(any_=["guard-account"])),
                        limit=200,
                        offset=len(runs),
                    )
                    runs += page
                    if len(page) < 200:
                        break
        durations = [r.total_run_time.total_seconds() for r in runs if r.total_run_time]
        return {
            "per_run": per_run,
            "up_s": up - began,
            "deploy_s": deployed - up,
            "run_s": ran - deployed,
            "completed": sum(1 for s in states.values() if s == "Completed"),
            "accounts": len(states),
            "guard_median_s": statistics.median(durations) if durations else None,
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
    parser.add_argument("--accounts-per-run", type=int, nargs="+", default=[1, 10])
    parser.add_argument("--one", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one is not None:
        folder = Path(tempfile.mkdtemp(prefix="posguard-team-bench-"))
        result = run_once(args.accounts, args.positions, args.workers, args.one, folder)
        print(json.dumps(result))
        return
    print(
        f"{args.accounts} accounts x {args.positions} positions, {args.workers} process "
        f"workers, Prefect server and registry on PostgreSQL ({os.cpu_count()} cores)"
    )
    print(
        f"{'per run':>8}{'up s':>7}{'deploy s':>9}{'run s':>8}{'acc/min':>9}"
        f"{'completed':>11}{'guard median s':>15}"
    )
    for per_run in args.accounts_per_run:
        command = [sys.executable, __file__, "--one", str(per_run)]
        command += ["--accounts", str(args.accounts), "--positions", str(args.positions)]
        command += ["--workers", str(args.workers)]
        done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, check=False)
        if done.returncode != 0:
            sys.exit(f"accounts-per-run {per_run} failed:\n{done.stderr[-4000:]}")
        row = json.loads(done.stdout.strip().splitlines()[-1])
        median = row["guard_median_s"]
        print(
            f"{per_run:>8}{row['up_s']:>7.1f}{row['deploy_s']:>9.1f}{row['run_s']:>8.1f}"
            f"{row['accounts'] / row['run_s'] * 60:>9.1f}"
            f"{row['completed']:>6}/{row['accounts']:<4}"
            f"{median if median is None else round(median, 1):>15}"
        )


if __name__ == "__main__":
    main()
