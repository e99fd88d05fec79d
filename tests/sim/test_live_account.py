"""`posguard sim --account NAME=KEY:SECRET:PASSPHRASE:live`: a live-mode account that ccxt
reaches without sandbox mode (no x-simulated-trading header), as a user would run it."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import ROOT
from tests.helpers import free_port

ccxt = pytest.importorskip("ccxt")

LIVE = ("live-key", "live-secret", "live-passphrase")
DEMO = ("desk-key", "desk-secret", "desk-passphrase")


@pytest.fixture(scope="module")
def sim_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    log_path = tmp_path_factory.mktemp("sim") / "sim.log"
    command = [sys.executable, "-m", "posguard.cli", "sim", "--port", str(port)]
    command += ["--scenario", "incident-2025-12-20"]
    command += ["--account", "live=" + ":".join(LIVE) + ":live"]
    command += ["--account", "desk=" + ":".join(DEMO)]
    log = log_path.open("w")
    process = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{url}/api/v5/public/time", timeout=1).raise_for_status()
                break
            except httpx.HTTPError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"posguard sim did not start: {log_path.read_text()}")
                time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def ccxt_okx(url: str, credentials: tuple[str, str, str], *, sandbox: bool) -> Any:
    key, secret, passphrase = credentials
    exchange = ccxt.okx({"apiKey": key, "secret": secret, "password": passphrase})
    if sandbox:
        exchange.set_sandbox_mode(True)
    exchange.urls["api"] = {"rest": url}
    return exchange


def test_ccxt_without_sandbox_mode_reads_and_sets_on_a_live_account(sim_url: str) -> None:
    exchange = ccxt_okx(sim_url, LIVE, sandbox=False)
    try:
        exchange.load_markets()
        assert exchange.fetch_positions() == []
        exchange.set_leverage(7, "XRP/USDT:USDT", {"mgnMode": "cross"})
        leverage = exchange.fetch_leverage("XRP/USDT:USDT", {"marginMode": "cross"})
    finally:
        exchange.session.close()
    assert leverage["longLeverage"] == 7


def test_each_account_refuses_the_other_environment_with_50101(sim_url: str) -> None:
    live_as_demo = ccxt_okx(sim_url, LIVE, sandbox=True)
    try:
        live_as_demo.load_markets()
        with pytest.raises(ccxt.AuthenticationError, match="50101"):
            live_as_demo.fetch_positions()
    finally:
        live_as_demo.session.close()
    demo_as_live = ccxt_okx(sim_url, DEMO, sandbox=False)
    try:
        # Without sandbox mode ccxt's load_markets already reads asset/currencies (private).
        with pytest.raises(ccxt.AuthenticationError, match="50101"):
            demo_as_live.load_markets()
    finally:
        demo_as_live.session.close()
    demo = ccxt_okx(sim_url, DEMO, sandbox=True)  # the default mode stays demo trading
    try:
        demo.load_markets()
        assert demo.fetch_positions() == []
    finally:
        demo.session.close()
