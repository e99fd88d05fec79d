"""`posguard fetch` says when a paged listing stopped before the oldest record."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from posguard.cli import app
from posguard.sim import SimExchange, SimServer
from tests.sim.conftest import control, scenario
from tests.sim.test_cli_against_sim import settings_file

runner = CliRunner()


def closes(count: int) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = []
    for i in range(count):
        steps.append({"at": f"+{2 * i}s", "action": "open", "instId": "ADA-USDT-SWAP", "sz": "1"})
        steps.append({"at": f"+{2 * i + 1}s", "action": "close", "instId": "ADA-USDT-SWAP"})
    return steps


def test_a_cut_history_listing_says_so_on_stderr(tmp_path: Path) -> None:
    with SimServer(SimExchange(scenario(name="busy", steps=closes(1010)))) as server:
        control(server, "advance", {"to_end": True})
        config = str(settings_file(tmp_path, server.base_url))
        history = runner.invoke(app, ["fetch", "positions-history", "--config", config, "--json"])
        fills = runner.invoke(app, ["fetch", "fills", "--config", config, "--json"])
    assert history.exit_code == 0, history.output
    assert "positions-history stopped after 10 pages" in history.stderr
    # Close i happens at +(2i + 1) s: the 1,000 newest of 1,010 reach back to i = 10.
    assert "2025-12-20T00:00:21.000Z" in history.stderr
    assert history.stdout.count('"instId"') == 1000
    assert fills.exit_code == 0, fills.output
    assert "fills stopped after 10 pages" in fills.stderr  # 2,020 fills


def test_a_whole_listing_has_no_note(tmp_path: Path) -> None:
    with SimServer(SimExchange(scenario(name="quiet", steps=closes(5)))) as server:
        control(server, "advance", {"to_end": True})
        config = str(settings_file(tmp_path, server.base_url))
        history = runner.invoke(app, ["fetch", "positions-history", "--config", config, "--json"])
    assert history.exit_code == 0, history.output
    assert history.stderr == ""
    assert history.stdout.count('"instId"') == 5
