"""`posguard demo --once --json`: the README's main command, end to end, as a user runs it."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_demo_once_prints_the_incident_findings(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "posguard.cli",
            "demo",
            "--once",
            "--json",
            "--state-dir",
            str(tmp_path / "state"),
            "--port",
            str(free_port()),
            "--sim-port",
            str(free_port()),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=880,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout)
    failed = {
        (r["expectation"], f["instId"])
        for r in summary["expectations"]["results"]
        if not r["success"]
        for f in r["failing"]
    }
    assert ("lever > 0", "DOGE-USDT-SWAP") in failed
    drift = [(e["instId"], e["kind"], e["status"], e["cause"]) for e in summary["drift"]]
    assert ("BTC-USDT-SWAP", "DRIFT_REMOVE", "confirmed", "liquidated") in drift
    assert ("XRP-USDT-SWAP", "DRIFT_REMOVE", "resolved", "spurious") in drift
    assert not [d for d in drift if d[0] == "XRP-USDT-SWAP" and d[2] == "confirmed"]
    plan = {row["instId"]: row for row in summary["leverage"]}
    assert plan["SUSHI-USDT-SWAP"]["volatility"] is None
    assert plan["DOGE-USDT-SWAP"]["action"] == "skip"
    subjects = " ".join(a.get("subject", "") for a in summary["alerts"])
    assert "DOGE-USDT-SWAP" in subjects
    assert "BTC-USDT-SWAP" in subjects
    assert summary["ui"].startswith("http://127.0.0.1:")
    assert "sim-main-secret" not in result.stdout  # the simulator's secret stays in settings
