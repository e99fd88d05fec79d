"""From a position change on the exchange to the alert at the webhook: the stream path
(`posguard watch` -> event -> triggered reconcile run) vs the schedule alone. Issue 16.

    uv run python benchmarks/stream_latency.py [--changes 10] [--grace 3] [--schedule-changes 3]

Set-up, as the demo runs it: a Prefect server (SQLite), the simulator in its own process (one
account, `--positions` open positions, wall clock), the alert automations with a local webhook
receiver, `python -m deployments.serve` (warm; reconcile every `--cycle` seconds, the change
trigger on) and `posguard watch`. The registry holds the book, and one reconcile has run.

Then each change is made outside the bot: the simulator liquidates, ADLs or closes a position
(`POST /__sim__/step`), and the time until the webhook receives the "drift confirmed" alert
naming that instrument is measured. With the watcher stopped, `--schedule-changes` more are
measured on the schedule alone (what there was before). The drift engine concludes only on
evidence older than the grace window (`[drift] grace_seconds`: the bot may still be recording
what it did), so the triggered run concludes no sooner than that after the change. The window
is the demo's (`deployments.demo.GRACE_SECONDS`, 3 s: its bot records a trade as it makes it)
unless `--grace` says otherwise; `--grace 5` gives posguard's default, for an unmeasured bot.

The goal: median <= 5 s over at least 10 changes.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from benchmarks.simulator import (
    BENCH_ACCOUNT,
    ROOT,
    bench_settings,
    free_port,
    seed_registry,
    start_simulator,
)

ACCOUNT = BENCH_ACCOUNT["name"]
KINDS = ("liquidate", "adl", "close")
REFUSED = re.compile(r'"[A-Z]+ (/api/[^\s?]+)\S* HTTP/[0-9.]+" 503\b')


def settings_file(folder: Path, sim_url: str, webhook: str, grace: float, cycle: int) -> Path:
    return bench_settings(
        folder,
        sim_url,
        top=["clock_offset_ttl_seconds = 0"],
        sections=[
            "[drift]",
            f"grace_seconds = {grace}",
            "[alerts]",
            f'webhook_url = "{webhook}"',
            "[schedules]",
            f"reconcile_seconds = {cycle}",
            "instruments_seconds = 3600",
            "leverage_seconds = 3600",
        ],
    )


def open_positions(sim_url: str) -> list[dict[str, Any]]:
    state = httpx.get(f"{sim_url}/__sim__/state", timeout=10).json()
    return list(state["accounts"][ACCOUNT]["positions"])


def change(sim_url: str, position: dict[str, Any], kind: str) -> float:
    step = {
        "action": kind,
        "account": ACCOUNT,
        "instId": position["instId"],
        "mgnMode": position["mgnMode"],
        "posSide": position["posSide"],
    }
    made = time.time()
    answer = httpx.post(f"{sim_url}/__sim__/step", json=step, timeout=10)
    answer.raise_for_status()
    return made


def alert_for(received: list[dict[str, Any]], inst_id: str, seen: int) -> bool:
    return any(
        inst_id in json.dumps(alert) and "confirmed" in json.dumps(alert)
        for alert in received[seen:]
    )


def refusals(server_log: Path) -> Counter[str]:
    """The requests the Prefect server answered 503 (SQLite busy), per path, from its access
    log."""
    found: Counter[str] = Counter()
    for line in server_log.read_text(errors="replace").splitlines():
        request = REFUSED.search(line)
        if request:
            found[re.sub(r"[0-9a-f]{8}-[0-9a-f-]{27}", "{id}", request.group(1))] += 1
    return found


def print_refusals(server_log: Path) -> None:
    refused = refusals(server_log)
    print(
        f"Prefect server refusals (503, each retried by its client 2, 4, 8... s later): "
        f"{sum(refused.values())}"
        + "".join(f"\n  {count:4d} {path}" for path, count in refused.most_common())
    )


def stages(made: list[tuple[float, str]]) -> list[dict[str, float]]:
    """Where each change's time went, read back from the Prefect API: the watcher's event,
    the triggered run's creation, start and end, the drift event (seconds after the change,
    each as this machine's clock stamped it)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterStartTime
    from prefect.events.filters import EventFilter, EventNameFilter, EventOccurredFilter
    from prefect.types import DateTime

    since = DateTime.fromtimestamp(made[0][0] - 1, tz=UTC)
    with get_client(sync_client=True) as client:
        page = client.read_events(
            filter=EventFilter(
                event=EventNameFilter(
                    name=["posguard.position.changed", "posguard.drift.confirmed"]
                ),
                occurred=EventOccurredFilter(since=since),
            ),
            limit=50,  # the API's largest page
        )
        events = list(page.events)
        while page.next_page:
            page = client.read_events_page(str(page.next_page))
            events.extend(page.events)
        runs: list[Any] = []
        while True:  # pages of the server's largest size, as for the events
            page_runs = client.read_flow_runs(
                flow_run_filter=FlowRunFilter(start_time=FlowRunFilterStartTime(after_=since)),
                limit=200,
                offset=len(runs),
            )
            runs.extend(page_runs)
            if len(page_runs) < 200:
                break
    triggered = sorted(
        (r for r in runs if (r.idempotency_key or "").startswith("automation ")),
        key=lambda r: r.created.timestamp() if r.created else 0.0,
    )
    out: list[dict[str, float]] = []
    for t0, inst_id in made:
        row: dict[str, float] = {}
        changed = [
            e.occurred.timestamp()
            for e in events
            if e.event == "posguard.position.changed"
            and inst_id in json.dumps(e.payload)
            and e.occurred.timestamp() >= t0
        ]
        if changed:
            row["event"] = min(changed) - t0
            after = [r for r in triggered if r.created and r.created.timestamp() >= min(changed)]
            if after and after[0].created and after[0].start_time and after[0].end_time:
                row["run created"] = after[0].created.timestamp() - t0
                row["run started"] = after[0].start_time.timestamp() - t0
                row["run ended"] = after[0].end_time.timestamp() - t0
        confirmed = [
            e.occurred.timestamp()
            for e in events
            if e.event == "posguard.drift.confirmed" and e.payload.get("instId") == inst_id
        ]
        if confirmed:
            row["drift event"] = min(confirmed) - t0
        out.append(row)
    return out


def measure(
    sim_url: str,
    receiver: Any,
    positions: list[dict[str, Any]],
    count: int,
    timeout: float,
    made: list[tuple[float, str]] | None = None,
) -> list[float]:
    latencies: list[float] = []
    for number in range(count):
        position = positions.pop()
        seen = len(receiver.received)
        made_at = change(sim_url, position, KINDS[number % len(KINDS)])
        deadline = made_at + timeout
        while time.time() < deadline and not alert_for(receiver.received, position["instId"], seen):
            time.sleep(0.05)
        if not alert_for(receiver.received, position["instId"], seen):
            raise SystemExit(f"no alert for {position['instId']} within {timeout:.0f} s")
        latencies.append(time.time() - made_at)
        if made is not None:
            made.append((made_at, position["instId"]))
        print(f"  {KINDS[number % len(KINDS)]:<9} {position['instId']:<22} {latencies[-1]:6.2f} s")
        time.sleep(1.0)  # the next change after this one's run has ended
    return latencies


def run(
    args: argparse.Namespace,
    folder: Path,
    sim_url: str,
    receiver: Any,
    server: Any,
    processes: list[subprocess.Popen[bytes]],
) -> tuple[list[float], list[float], list[dict[str, float]]]:
    from deployments.alerting import ensure_alerting
    from deployments.demo import _wait_for_deployments
    from deployments.server import prefect_env
    from posguard.settings import load_settings

    config = settings_file(folder, sim_url, receiver.url, args.grace, args.cycle)
    settings = load_settings(config)
    seed_registry(settings, [ACCOUNT])
    ensure_alerting(settings.alerts)
    env = prefect_env(folder / "prefect", server.api_url)
    env.update(POSGUARD_CONFIG=str(config), PREFECT_RUNNER_POLL_FREQUENCY="1")
    processes.append(
        subprocess.Popen(
            [sys.executable, "-m", "deployments.serve"],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=(folder / "serve.log").open("wb"),
        )
    )
    _wait_for_deployments([f"reconcile-positions/{ACCOUNT}"])
    watcher = subprocess.Popen(
        [sys.executable, "-m", "posguard.cli", "watch", "--status-seconds", "30"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=(folder / "watch.log").open("wb"),
    )
    processes.append(watcher)
    time.sleep(2 * args.cycle)  # a scheduled reconcile has run; the stream is up
    positions = open_positions(sim_url)
    print(f"stream path: {args.changes} changes, grace {args.grace:g} s")
    made: list[tuple[float, str]] = []
    stream = measure(sim_url, receiver, positions, args.changes, 120, made)
    time.sleep(2)  # the events reach the server's store
    breakdown = stages(made)
    watcher.terminate()
    watcher.wait(timeout=30)
    schedule: list[float] = []
    if args.schedule_changes:
        print(f"schedule only (watcher stopped, reconcile every {args.cycle} s):")
        schedule = measure(
            sim_url, receiver, positions, args.schedule_changes, timeout=6 * args.cycle
        )
    return stream, schedule, breakdown


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=10)
    parser.add_argument("--schedule-changes", type=int, default=3)
    parser.add_argument("--positions", type=int, default=20)
    parser.add_argument("--grace", type=float, default=None, help="default: the demo's")
    parser.add_argument("--cycle", type=int, default=30)
    args = parser.parse_args()
    if args.changes < 1 or args.schedule_changes < 0:
        raise SystemExit("--changes must be at least 1, --schedule-changes at least 0")
    if args.positions < args.changes + args.schedule_changes:
        raise SystemExit("--positions must cover every change")
    if args.grace is None:
        from deployments.demo import GRACE_SECONDS

        args.grace = float(GRACE_SECONDS)

    from prefect.settings import PREFECT_API_URL, temporary_settings

    from deployments.receiver import AlertReceiver
    from deployments.server import PrefectServer

    folder = Path(tempfile.mkdtemp(prefix="posguard-stream-latency-"))
    start = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    sim, sim_url = start_simulator(
        {
            "name": "stream-latency",
            "clock": "wall",
            "start": start,
            "accounts": [BENCH_ACCOUNT],
            "load": {"instruments": args.positions, "positions": args.positions},
        },
        folder,
    )
    processes: list[subprocess.Popen[bytes]] = []
    prefect_server = PrefectServer(folder / "prefect", free_port())
    # Its access log: the requests it refused (503), which its clients retry 2, 4, 8... s on.
    prefect_server.extra_env["PREFECT_SERVER_LOGGING_LEVEL"] = "INFO"
    try:
        with (
            AlertReceiver() as receiver,
            prefect_server as server,
            temporary_settings({PREFECT_API_URL: server.api_url}),
        ):
            try:
                found = run(args, folder, sim_url, receiver, server, processes)
            except BaseException:
                print_refusals(prefect_server.log)  # most telling when no alert came
                raise
            finally:
                # Before the server stops: serving would retry it for a minute.
                for process in processes:
                    if process.poll() is None:
                        process.terminate()
                        process.wait(timeout=60)
    finally:
        sim.terminate()
        sim.wait(timeout=30)
    stream, schedule, breakdown = found
    median = statistics.median(stream)
    print("where the time goes (seconds after each change):")
    names = ("event", "run created", "run started", "run ended", "drift event")
    print("  " + " ".join(f"{n:>12}" for n in names) + f" {'alert':>8}")
    for row, latency in zip(breakdown, stream, strict=True):
        cells = " ".join(f"{row[n]:>12.2f}" if n in row else f"{'-':>12}" for n in names)
        print(f"  {cells} {latency:>8.2f}")
    print("medians:")
    for stage in ("event", "run created", "run started", "run ended", "drift event"):
        values = [row[stage] for row in breakdown if stage in row]
        if values:
            print(f"  {stage:<12} {statistics.median(values):6.2f} s  ({len(values)} changes)")
    print(f"  {'alert':<12} {median:6.2f} s")
    print(
        f"stream: median {median:.2f} s, min {min(stream):.2f} s, max {max(stream):.2f} s "
        f"over {len(stream)} changes (grace {args.grace:g} s)"
    )
    if schedule:
        slow = statistics.median(schedule)
        print(
            f"schedule only: median {slow:.2f} s (min {min(schedule):.2f}, max "
            f"{max(schedule):.2f}); stream/schedule {median / slow:.2f}"
        )
    print_refusals(prefect_server.log)
    print(f"goal, median <= 5 s: {median:.2f} s, {'met' if median <= 5 else 'missed'}")
    print(f"logs in {folder}")


if __name__ == "__main__":
    main()
