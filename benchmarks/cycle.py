"""One reconcile cycle at 100 .. 100k positions: time and peak memory per stage, and the ratio
to a bare baseline (the same HTTP calls and a pandas merge in a plain script).

    uv run python benchmarks/cycle.py [--sizes 100 1000 10000 100000] [--registry-url URL]

Each size runs in a fresh process (so its peak RSS is its own) against the simulator in
another process, loaded with that many synthetic positions in one account (scenario `load`).
The registry is seeded with the same positions first, so the cycle is the steady state: every
position compared, nothing drifting. Stages, as the reconcile flow's tasks run them:

- fetch: the HTTP calls (instruments, account config, positions, positions-history, fills);
- parse: OKX strings to typed frames, leverage resolved;
- validate: the contract frame and the GX suites (GX's import is a one-off, printed apart);
- reconcile: the registry read and the pure drift engine;
- persist: engine memory and events written (compare-and-set);
- publish: the positions, validation and drift artifacts and events (a Prefect test server).

Time is the best of two passes; memory is a third pass under tracemalloc (peak Python and
numpy allocations within the stage). The "flow" column is the real reconcile-positions flow,
run once in-process with task orchestration, for comparison with the stage sum.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import itertools
import json
import os
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.simulator import ROOT, seed_registry, start_simulator

ACCOUNT = {
    "name": "bench",
    "api_key": "bench-key",
    "secret_key": "bench-secret",
    "passphrase": "bench-passphrase",
    "demo": True,
}
STAGES = ["fetch", "parse", "validate", "reconcile", "persist", "publish"]


def start_load(size: int, folder: Path) -> tuple[subprocess.Popen[bytes], str]:
    return start_simulator(
        {
            "name": f"load-{size}",
            # Wall time: each cycle's snapshot is newer than the last (the engine drops older
            # ones), however long a pass takes.
            "clock": "wall",
            "accounts": [ACCOUNT],
            "load": {"instruments": max(size, 1), "positions": size},
        },
        folder,
    )


# -- the bare baseline: what a plain script would do -----------------------------------------


def bare_get(http: Any, base_url: str, path: str) -> list[dict[str, Any]]:
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    signature = base64.b64encode(
        hmac.new(
            str(ACCOUNT["secret_key"]).encode(), f"{stamp}GET{path}".encode(), hashlib.sha256
        ).digest()
    ).decode()
    headers = {
        "OK-ACCESS-KEY": str(ACCOUNT["api_key"]),
        "OK-ACCESS-SIGN": signature,
        "OK-ACCESS-TIMESTAMP": stamp,
        "OK-ACCESS-PASSPHRASE": str(ACCOUNT["passphrase"]),
        "x-simulated-trading": "1",
    }
    response = http.get(base_url + path, headers=headers, timeout=120)
    body = response.json()
    if body.get("code") != "0":
        raise RuntimeError(f"{path}: {body.get('code')} {body.get('msg')}")
    return list(body["data"])


def bare_baseline(base_url: str, registry_file: Path) -> tuple[float, float, int]:
    """The same five requests, DataFrames, to_numeric, a merge with the instruments and one
    with the registry, and the rows whose size differs: (fetch s, the rest s, mismatches)."""
    import httpx
    import pandas as pd

    started = time.perf_counter()
    with httpx.Client() as http:  # one connection, as a careful script would
        instruments = bare_get(http, base_url, "/api/v5/public/instruments?instType=SWAP")
        bare_get(http, base_url, "/api/v5/account/config")
        positions = bare_get(http, base_url, "/api/v5/account/positions?instType=SWAP")
        bare_get(http, base_url, "/api/v5/account/positions-history?instType=SWAP")
        bare_get(http, base_url, "/api/v5/trade/fills?instType=SWAP")
    fetched = time.perf_counter()
    specs = pd.DataFrame(instruments)[["instId", "ctVal"]]
    specs["ctVal"] = pd.to_numeric(specs["ctVal"])
    frame = pd.DataFrame(positions)
    for column in ("pos", "markPx", "notionalUsd", "lever"):
        frame[column] = pd.to_numeric(frame[column])
    merged = frame.merge(specs, on="instId", how="left")
    merged["notional"] = merged["pos"].abs() * merged["ctVal"] * merged["markPx"]
    with sqlite3.connect(registry_file) as connection:
        stored = pd.read_sql(
            "SELECT inst_id AS instId, pos_side AS posSide, mgn_mode AS mgnMode, pos AS stored "
            "FROM positions WHERE account = 'bench'",
            connection,
        )
    stored["stored"] = pd.to_numeric(stored["stored"])
    compared = merged.merge(stored, on=["instId", "posSide", "mgnMode"], how="outer")
    mismatches = int((compared["pos"] != compared["stored"]).sum())
    return fetched - started, time.perf_counter() - fetched, mismatches


# -- the pipeline, stage by stage ------------------------------------------------------------


def pipeline_pass(
    base_url: str, measure: Callable[[str], AbstractContextManager[Any]]
) -> dict[str, Any]:
    from posguard import frames
    from posguard.frames.contract import positions_frame
    from posguard.leverage import resolve_leverage
    from posguard.stages.cycle import run_cycle
    from posguard.stages.fetch import INSTRUMENT_FIELDS, POSITION_FIELDS, AccountSnapshot
    from tasks.context import okx, registry, settings
    from tasks.publish import publish_drift, publish_positions, publish_validation
    from tasks.validate import _runner

    lookback_ms = int(settings().drift.lookback_seconds * 1000)
    # Each answer is parsed as soon as it arrives and its raw records dropped, as the
    # fetch tasks do: raw records are the biggest objects of a cycle.
    with okx("bench") as client:
        with measure("fetch"):
            raw: Any = client.instruments("SWAP", keep=INSTRUMENT_FIELDS)
        with measure("parse"):
            instruments = frames.parse_instruments(raw)
        with measure("fetch"):
            config_record = client.account_config()
            started_ms = client.now_ms()
            raw = client.positions(inst_type="SWAP", keep=POSITION_FIELDS)
        with measure("parse"):
            config = frames.parse_account_config([config_record])
            parsed = frames.parse_positions(raw, account="bench")
            positions = resolve_leverage(parsed, frames.parse_leverage_info([]))
            del raw, parsed
            snapshot = AccountSnapshot(
                "bench", started_ms, config, positions, frames.parse_leverage_info([])
            )
        since = started_ms - lookback_ms
        with measure("fetch"):
            raw_history = client.positions_history(inst_type="SWAP", before_ms=since)
            raw_fills = client.fills(inst_type="SWAP", begin_ms=since)
        with measure("parse"):
            history = frames.parse_positions_history(raw_history.records)
            fills = frames.parse_fills(raw_fills.records)
    with measure("validate"):
        report = _runner().validate(
            positions_frame(positions, instruments),
            None,
            pos_mode=config.pos_mode,
            tolerance=settings().notional_tolerance,
        )
    lot_sizes = dict(zip(instruments["instId"], instruments["lotSz"], strict=True))
    with registry() as store, measure("reconcile+persist"):
        outcome = run_cycle(
            store,
            "bench",
            snapshot.started_ms,
            positions=positions,
            history=history,
            fills=fills,
            lot_sizes=lot_sizes,
            settings=settings().drift.engine_settings(),
        )
    with measure("publish"):
        publish_positions.fn("bench", positions, instruments)
        publish_validation.fn("bench", report, already_alerted=set())
        publish_drift.fn("bench", outcome.events)
    return {
        "timings": outcome.timings,
        "skipped": outcome.skipped,
        "events": len(outcome.events),
        "failing": sum(len(r.failing) for r in report.failed),
        "open": int(positions["is_open"].sum()),
    }


class Stopwatch:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        # The process's RSS high-water mark when each stage last ended: which stage raised it.
        self.rss_mb: dict[str, float] = {}

    def __call__(self, stage: str) -> AbstractContextManager[Any]:
        watch = self

        class _Timer:
            def __enter__(self) -> None:
                self.started = time.perf_counter()

            def __exit__(self, *exc: object) -> None:
                elapsed = time.perf_counter() - self.started
                watch.seconds[stage] = watch.seconds.get(stage, 0.0) + elapsed
                watch.rss_mb[stage] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

        return _Timer()


class PeakMemory:
    def __init__(self) -> None:
        self.peaks: dict[str, float] = {}

    def __call__(self, stage: str) -> AbstractContextManager[Any]:
        meter = self

        class _Meter:
            def __enter__(self) -> None:
                tracemalloc.reset_peak()
                self.base = tracemalloc.get_traced_memory()[0]

            def __exit__(self, *exc: object) -> None:
                peak = (tracemalloc.get_traced_memory()[1] - self.base) / 2**20
                meter.peaks[stage] = max(meter.peaks.get(stage, 0.0), peak)

        return _Meter()


def split(seconds: dict[str, float], timings: dict[str, float]) -> dict[str, float]:
    """reconcile+persist split by run_cycle's own timings."""
    out = {k: v for k, v in seconds.items() if k != "reconcile+persist"}
    both = seconds.get("reconcile+persist", 0.0)
    write = timings.get("registry_write", 0.0)
    out["reconcile"] = both - write
    out["persist"] = write
    return out


def one_size(size: int, registry_url: str | None) -> dict[str, Any]:
    """Runs in its own process: prints one JSON line with this size's figures."""
    folder = Path(tempfile.mkdtemp(prefix=f"posguard-cycle-{size}-"))
    sim, base_url = start_load(size, folder)
    try:
        registry_file = folder / "registry.db"
        url = registry_url or f"sqlite:///{registry_file}"
        config = folder / "posguard.toml"
        config.write_text(
            f'state_dir = "{folder}"\nregistry_url = "{url}"\npublic_base_url = "{base_url}"\n'
            f"http_timeout_seconds = 120\n\n[accounts.bench]\n"
            f'api_key = "{ACCOUNT["api_key"]}"\nsecret_key = "{ACCOUNT["secret_key"]}"\n'
            f'passphrase = "{ACCOUNT["passphrase"]}"\ndemo = true\nbase_url = "{base_url}"\n'
        )
        os.environ["POSGUARD_CONFIG"] = str(config)
        os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
        os.environ["PREFECT_LOGGING_LEVEL"] = "WARNING"
        from prefect import flow
        from prefect.testing.utilities import prefect_test_harness

        started = time.perf_counter()
        from tasks.validate import _runner

        _runner()
        gx_once = time.perf_counter() - started
        # Seeding reads the whole book once more: another process, so that its memory is not
        # counted as the cycle's.
        subprocess.run([sys.executable, __file__, "--seed"], check=True, cwd=ROOT)
        with prefect_test_harness(server_startup_timeout=120):

            @flow(name="cycle-benchmark")
            def measured(meter: Any) -> dict[str, Any]:
                return pipeline_pass(base_url, meter)

            passes = []
            rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            high_water: dict[str, float] = {}
            for _ in range(2):
                watch = Stopwatch()
                result = measured(watch)
                if result["skipped"] or result["open"] != size:
                    # A cycle that concluded nothing measures nothing: refuse the figures.
                    raise RuntimeError(f"cycle not measured: {result}")
                passes.append(split(watch.seconds, result["timings"]))
                high_water = high_water or dict(watch.rss_mb)
            seconds = {stage: min(p[stage] for p in passes) for stage in STAGES}
            rss_passes = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            from flows.reconcile import reconcile_positions

            flow_started = time.perf_counter()
            summary = reconcile_positions("bench")
            flow_seconds = time.perf_counter() - flow_started
            # The process's peak before tracemalloc, whose own bookkeeping would count.
            rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            tracemalloc.start()
            memory = PeakMemory()
            measured(memory)
            tracemalloc.stop()
            peaks = memory.peaks
            peaks["reconcile"] = peaks["persist"] = peaks.pop("reconcile+persist")
        baseline = min(
            (bare_baseline(base_url, registry_file) for _ in range(2)),
            key=lambda b: b[0] + b[1],
        )
        return {
            "size": size,
            "seconds": seconds,
            "peaks_mb": peaks,
            "rss_mb": rss_mb,
            "rss_before_mb": rss_before,
            "rss_passes_mb": rss_passes,
            "high_water_mb": high_water,
            "flow_seconds": flow_seconds,
            "flow_positions": summary["positions"] if isinstance(summary, dict) else None,
            "baseline_fetch": baseline[0],
            "baseline_rest": baseline[1],
            "baseline_mismatches": baseline[2],
            "events": result["events"],
            "failing": result["failing"],
            "open": result["open"],
            "gx_once": gx_once,
        }
    finally:
        sim.terminate()
        sim.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1_000, 10_000, 100_000])
    parser.add_argument("--registry-url", default=None, help="default: SQLite in a temp dir")
    parser.add_argument("--one", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--seed", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.seed:
        from tasks.context import settings

        seed_registry(settings(), ["bench"])
        return
    if args.one is not None:
        print(json.dumps(one_size(args.one, args.registry_url)))
        return
    rows = []
    for size in args.sizes:
        command = [sys.executable, __file__, "--one", str(size)]
        if args.registry_url:
            command += ["--registry-url", args.registry_url]
        done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, check=False)
        if done.returncode != 0:
            sys.exit(f"size {size} failed:\n{done.stderr[-4000:]}")
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    print("seconds per stage (best of 2); peak MB per stage (tracemalloc); RSS = process peak")
    header = "".join(f"{s:>10}" for s in STAGES)
    print(f"{'positions':>9}{header}{'total':>9}{'us/pos':>8}{'flow s':>8}{'RSS MB':>8}")
    for row in rows:
        total = sum(row["seconds"].values())
        cells = "".join(f"{row['seconds'][s]:>10.3f}" for s in STAGES)
        print(
            f"{row['size']:>9}{cells}{total:>9.2f}{total / row['size'] * 1e6:>8.0f}"
            f"{row['flow_seconds']:>8.2f}{row['rss_mb']:>8.0f}"
        )
    print("\npeak MB per stage")
    for row in rows:
        cells = "".join(f"{row['peaks_mb'][s]:>10.1f}" for s in STAGES)
        print(f"{row['size']:>9}{cells}")
    print(
        "\nRSS high-water mark (MB): before the cycles, after each stage of the first one, "
        "after both passes, after the flow run"
    )
    names = ["fetch", "parse", "validate", "reconcile+persist", "publish"]
    print(
        f"{'positions':>9}{'before':>10}"
        + "".join(f"{n[:9]:>10}" for n in names)
        + f"{'2 passes':>10}{'flow run':>10}"
    )
    for row in rows:
        marks = "".join(f"{row['high_water_mb'].get(n, 0):>10.0f}" for n in names)
        print(
            f"{row['size']:>9}{row['rss_before_mb']:>10.0f}{marks}"
            f"{row['rss_passes_mb']:>10.0f}{row['rss_mb']:>10.0f}"
        )
    print("\nvs the bare baseline (same HTTP calls, DataFrames, two merges)")
    print(
        f"{'positions':>9}{'bare fetch':>11}{'bare rest':>10}{'ratio':>7}"
        f"{'ratio w/o fetch':>16}{'failing':>8}{'events':>7}"
    )
    for row in rows:
        total = sum(row["seconds"].values())
        bare = row["baseline_fetch"] + row["baseline_rest"]
        ours_rest = total - row["seconds"]["fetch"]
        print(
            f"{row['size']:>9}{row['baseline_fetch']:>11.3f}{row['baseline_rest']:>10.3f}"
            f"{total / bare:>6.1f}x{ours_rest / row['baseline_rest']:>15.1f}x"
            f"{row['failing']:>8}{row['events']:>7}"
        )
    if rows:
        print(f"\none-off per process: GX import and suites {rows[0]['gx_once']:.1f} s")
    flat = [sum(r["seconds"].values()) / r["size"] for r in rows if r["size"] >= 1_000]
    if len(flat) >= 2:
        print(f"cost per position, largest / smallest from 1k: {max(flat) / min(flat):.2f}x")
    # The average mixes in the per-cycle fixed costs (GX's run, artifacts); the cost of one
    # more position is the slope between sizes.
    ordered = sorted((r for r in rows if r["size"] >= 1_000), key=lambda r: r["size"])
    slopes = [
        (sum(b["seconds"].values()) - sum(a["seconds"].values())) / (b["size"] - a["size"])
        for a, b in itertools.pairwise(ordered)
    ]
    if slopes:
        shown = ", ".join(f"{s * 1e6:.0f} us" for s in slopes)
        print(
            f"marginal cost per position between sizes from 1k: {shown} "
            f"(largest / smallest {max(slopes) / min(slopes):.2f}x)"
        )


if __name__ == "__main__":
    main()
