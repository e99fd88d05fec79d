"""The simulator in a process of its own, for benchmarks that must not share its CPU time or
memory with what they measure."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_simulator(
    scenario: dict[str, Any], folder: Path, timeout: float = 300
) -> tuple[subprocess.Popen[bytes], str]:
    """`posguard sim` playing `scenario` on a free port; returns the process and its URL
    once it answers (a large `load` takes a while to open)."""
    path = folder / "scenario.json"
    path.write_text(json.dumps(scenario))
    port = free_port()
    log = folder / "sim.log"
    command = [sys.executable, "-m", "posguard.cli", "sim", "--scenario", str(path)]
    process = subprocess.Popen(
        [*command, "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb"),
        cwd=ROOT,
    )
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the simulator exited: {log.read_text()[-2000:]}")
        try:
            httpx.get(f"{base_url}/api/v5/public/time", timeout=2).raise_for_status()
        except httpx.HTTPError:
            time.sleep(0.2)
        else:
            return process, base_url
    process.kill()
    raise RuntimeError(f"the simulator did not answer within {timeout:.0f} s")


def seed_registry(settings: Any, accounts: list[str]) -> None:
    """The registry holds each account's book as the exchange shows it: the steady state a
    benchmark's cycles then check (nothing drifting)."""
    from posguard import frames
    from posguard.okx import OkxClient
    from posguard.registry import Registry
    from posguard.stages.fetch import POSITION_FIELDS

    with Registry(settings.resolved_registry_url) as registry:
        for name in accounts:
            with OkxClient.for_account(settings, name) as client:
                records = client.positions(inst_type="SWAP", keep=POSITION_FIELDS)
            book = frames.parse_positions(records, account=name)
            registry.write_many(
                {
                    "account": name,
                    "inst_id": r.instId,
                    "pos_side": r.posSide,
                    "mgn_mode": r.mgnMode,
                    "pos": f"{r.pos:.10g}",
                    "pos_id": r.posId,
                    "c_time": int(str(r.cTime)),
                }
                for r in book.itertuples()
            )


# The one account of the single-account benchmarks: fixed, obviously not real.
BENCH_ACCOUNT = {
    "name": "bench",
    "api_key": "bench-key",
    "secret_key": "bench-secret",
    "passphrase": "bench-pass",
}


def bench_settings(
    folder: Path, sim_url: str, *, top: Sequence[str] = (), sections: Sequence[str] = ()
) -> Path:
    """posguard.toml for BENCH_ACCOUNT on the simulator at `sim_url` (state and a SQLite
    registry in `folder`), with `top` settings before the tables and `sections` after."""
    lines = [
        f'state_dir = "{folder}"',
        f'registry_url = "sqlite:///{folder / "registry.db"}"',
        *top,
        "",
        f"[accounts.{BENCH_ACCOUNT['name']}]",
        *(f'{key} = "{BENCH_ACCOUNT[key]}"' for key in ("api_key", "secret_key", "passphrase")),
        "demo = true",
        f'base_url = "{sim_url}"',
        "",
        *sections,
    ]
    path = folder / "posguard.toml"
    path.write_text("\n".join(lines) + "\n")
    return path
