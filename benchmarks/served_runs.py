"""Served reconcile runs of one 50-position account: cold (Prefect's serve, an interpreter per
run) vs warm (deployments/warm.py, runs in the serving process's threads). Issue 14, goal 1.

    uv run python benchmarks/served_runs.py [--runs 8] [--positions 50] [--modes warm cold]

Per mode: a Prefect server (SQLite) and the simulator (a `load` scenario, its own process)
are started, the registry is seeded with the account's positions (the steady state), and
`python -m deployments.serve --paused [--cold]` serves the deployments. After one run to warm
up, `reconcile-positions/bench` is run N times back to back with `run_deployment`. Printed, as
medians: the wall time from the request to the final state, the run's duration as the Prefect
API reports it (start to end), and the CPU the serving process tree used per run (children
included; the Prefect server's and the simulator's own CPU are not counted, and are printed
apart as the server's share).

The goal: median Prefect duration <= 1.0 s and <= 1.0 s of CPU per run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.simulator import BENCH_ACCOUNT

ROOT = Path(__file__).resolve().parents[1]
ACCOUNT = BENCH_ACCOUNT["name"]


def _stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, CPU seconds of the process and its reaped children) from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    # After the ")": state ppid ... utime(11) stime(12) cutime(13) cstime(14), 0-based here.
    return int(fields[1]), sum(int(x) for x in fields[11:15]) / ticks


def tree_cpu(pid: int) -> float:
    """CPU seconds used so far by a process, its live descendants and their reaped children."""
    stats = {int(p.name): _stat(int(p.name)) for p in Path("/proc").iterdir() if p.name.isdigit()}
    children: dict[int, list[int]] = {}
    for child, stat in stats.items():
        if stat is not None:
            children.setdefault(stat[0], []).append(child)
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        stat = stats.get(current)
        if stat is not None:
            total += stat[1]
        todo += children.get(current, [])
    return total


def measure(mode: str, runs: int, positions: int) -> dict[str, float]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.objects import FlowRun
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from benchmarks.simulator import bench_settings, free_port, seed_registry, start_simulator
    from deployments.demo import _wait_for_deployments
    from deployments.server import PrefectServer, prefect_env
    from posguard.settings import load_settings

    folder = Path(tempfile.mkdtemp(prefix=f"served-{mode}-"))
    sim, sim_url = start_simulator(
        {
            "name": f"served-{positions}",
            "clock": "wall",
            "accounts": [BENCH_ACCOUNT],
            "load": {"instruments": positions, "positions": positions},
        },
        folder,
    )
    try:
        config = bench_settings(folder, sim_url)
        seed_registry(load_settings(config), [ACCOUNT])
        with PrefectServer(folder / "prefect", free_port()) as server:
            if server.process is None:
                raise SystemExit("the Prefect server did not start")
            others = (server.process.pid, sim.pid)
            env = prefect_env(folder / "prefect", server.api_url)
            env.update(POSGUARD_CONFIG=str(config), PREFECT_RUNNER_POLL_FREQUENCY="1")
            command = [sys.executable, "-m", "deployments.serve", "--paused"]
            serving = subprocess.Popen(
                [*command, *(["--cold"] if mode == "cold" else [])],
                env=env,
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
                stderr=(folder / "serve.log").open("wb"),
            )
            try:
                with temporary_settings({PREFECT_API_URL: server.api_url}):
                    name = f"reconcile-positions/{ACCOUNT}"
                    _wait_for_deployments([name])
                    run_deployment(name=name, timeout=900)  # imports, GX context, caches
                    walls: list[float] = []
                    durations: list[float] = []
                    cpu: list[float] = []
                    server_cpu: list[float] = []
                    for _ in range(runs):
                        before = tree_cpu(serving.pid)
                        before_server = sum(tree_cpu(pid) for pid in others)
                        began = time.perf_counter()
                        flow_run = run_deployment(name=name, timeout=900)
                        walls.append(time.perf_counter() - began)
                        cpu.append(tree_cpu(serving.pid) - before)
                        server_cpu.append(sum(tree_cpu(pid) for pid in others) - before_server)
                        if not isinstance(flow_run, FlowRun):
                            raise SystemExit("run_deployment returned a coroutine")
                        with get_client(sync_client=True) as client:
                            done = client.read_flow_run(flow_run.id)
                        if done.state is None or not done.state.is_completed():
                            message: Any = done.state.message if done.state else "no state"
                            raise SystemExit(f"a {mode} run ended {message!r}")
                        if done.start_time and done.end_time:
                            durations.append((done.end_time - done.start_time).total_seconds())
            finally:
                serving.terminate()
                serving.wait(timeout=60)
    finally:
        sim.terminate()
        sim.wait(timeout=30)
    return {
        "wall": statistics.median(walls),
        "duration": statistics.median(durations),
        "cpu": statistics.median(cpu),
        "server": statistics.median(server_cpu),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=8)
    parser.add_argument("--positions", type=int, default=50)
    parser.add_argument("--modes", nargs="+", default=["warm", "cold"], choices=["warm", "cold"])
    args = parser.parse_args()
    results = {mode: measure(mode, args.runs, args.positions) for mode in args.modes}
    title = f"per run, median of {args.runs}"
    print(f"{title:<36} " + " ".join(f"{mode:>8}" for mode in results) + "   cold/warm")
    for key, label in (
        ("wall", "request to final state, s"),
        ("duration", "Prefect duration, s"),
        ("cpu", "CPU of the serving processes, s"),
        ("server", "CPU of Prefect server + sim, s"),
    ):
        values = " ".join(f"{results[mode][key]:>8.2f}" for mode in results)
        ratio = ""
        if "warm" in results and "cold" in results and results["warm"][key]:
            ratio = f"   {results['cold'][key] / results['warm'][key]:.1f}x"
        print(f"{label:<36} {values}{ratio}")
    if "warm" in results:
        warm = results["warm"]
        for key, label in (("duration", "Prefect duration"), ("cpu", "CPU per run")):
            verdict = "met" if warm[key] <= 1.0 else "missed"
            print(f"goal 1, {label} <= 1.0 s (warm): {warm[key]:.2f} s, {verdict}")


if __name__ == "__main__":
    main()
