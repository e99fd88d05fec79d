"""`posguard demo --once`: the README's main command, end to end, as a user runs it; and the
Prefect UI it leaves, looked at in a real browser (Debian's Chromium, driven by Playwright)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.helpers import free_port

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def browse(ui: str, screenshots: Path) -> dict[str, str]:
    """What the UI shows on the deployments page and on the drift artifact's page."""
    from playwright.sync_api import sync_playwright

    seen: dict[str, str] = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1500, "height": 950})
            page.goto(f"{ui}/deployments")
            page.get_by_text("Every 30 seconds").first.wait_for(timeout=60_000)
            seen["deployments"] = page.inner_text("body")
            page.screenshot(path=str(screenshots / "deployments.png"))
            page.goto(f"{ui}/artifacts/key/drift-main")
            page.get_by_text("Drift events of main").first.wait_for(timeout=60_000)
            seen["artifact"] = page.inner_text("body")
            page.screenshot(path=str(screenshots / "drift-artifact.png"))
        finally:
            browser.close()
    return seen


@pytest.mark.slow
@pytest.mark.xdist_group("demo")  # a worker of its own from the start
@pytest.mark.timeout(900)
def test_demo_once_prints_the_incident_findings_and_the_ui_shows_them(tmp_path: Path) -> None:
    state = tmp_path / "state"
    hold = 300 if CHROMIUM else 0
    demo = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "posguard.cli",
            "demo",
            "--once",
            "--json",
            "--state-dir",
            str(state),
            "--port",
            str(free_port()),
            "--sim-port",
            str(free_port()),
            "--hold",
            str(hold),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    seen: dict[str, str] = {}
    # One budget for the whole demo, inside the test's own timeout: on a loaded machine the
    # cycles take longer, and how long is not what this test checks.
    deadline = time.monotonic() + 800
    try:
        if CHROMIUM:
            ready = state / "ready"
            while not ready.exists() and demo.poll() is None and time.monotonic() < deadline:
                time.sleep(1)
            assert ready.exists(), "the demo never got ready"
            try:
                seen = browse(ready.read_text(), tmp_path)
            finally:
                (state / "release").write_text("done")
        stdout, stderr = demo.communicate(timeout=max(60.0, deadline - time.monotonic()))
    finally:
        if demo.poll() is None:
            demo.terminate()  # a clean stop: the demo stops its server and workers
            try:
                demo.wait(timeout=60)
            except subprocess.TimeoutExpired:
                demo.kill()
    assert demo.returncode == 0, stderr[-3000:]
    summary = json.loads(stdout)
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
    assert "sim-main-secret" not in stdout  # the simulator's secret stays in settings
    if not CHROMIUM:
        pytest.skip(
            "Chromium is not installed: the Prefect UI was not looked at "
            "(.ci/run installs Debian's chromium)"
        )
    # The three scheduled deployments of account "main": reconcile, leverage, instruments.
    for schedule in ("Every 30 seconds", "Every 5 minutes", "Hourly"):
        assert schedule in seen["deployments"]
    assert "account:main" in seen["deployments"]
    assert "drift-main" in seen["artifact"]
    assert (tmp_path / "deployments.png").stat().st_size > 10_000
    assert (tmp_path / "drift-artifact.png").stat().st_size > 10_000
