"""`posguard fetch` and `posguard leverage plan` against the simulator, through settings."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from posguard.cli import app
from posguard.sim import SimExchange, SimServer
from tests.sim.conftest import MAIN, shipped

runner = CliRunner()


def settings_file(folder: Path, base_url: str) -> Path:
    path = folder / "posguard.toml"
    path.write_text(
        f'state_dir = "{folder}"\n\n[accounts.main]\napi_key = "{MAIN["api_key"]}"\n'
        f'secret_key = "{MAIN["secret_key"]}"\npassphrase = "{MAIN["passphrase"]}"\n'
        f'demo = true\nbase_url = "{base_url}"\n'
    )
    return path


def test_fetch_and_plan(tmp_path: Path) -> None:
    with SimServer(SimExchange(shipped("incident-2025-12-20"))) as server:
        config = str(settings_file(tmp_path, server.base_url))
        fetched = runner.invoke(app, ["fetch", "positions", "--config", config, "--json"])
        planned = runner.invoke(app, ["leverage", "plan", "--config", config, "--json"])
        table = runner.invoke(app, ["leverage", "plan", "--config", config])
    assert fetched.exit_code == 0, fetched.output
    positions = {p["instId"]: p for p in json.loads(fetched.output)}
    assert positions["XRP-USDT-SWAP"]["pos"] == 108
    assert positions["ETH-USDT-SWAP"]["lever"] is None  # "" stays unknown in raw output
    assert planned.exit_code == 0, planned.output
    plan = {row["instId"]: row for row in json.loads(planned.output)["plan"]}
    assert plan["SUSHI-USDT-SWAP"]["volatility"] is None
    assert "N/A" in table.output
    assert "sim-main-secret" not in fetched.output + planned.output + table.output


def test_fetch_with_a_wrong_secret_is_one_clear_line(tmp_path: Path) -> None:
    with SimServer(SimExchange(shipped("incident-2025-12-20"))) as server:
        path = settings_file(tmp_path, server.base_url)
        path.write_text(path.read_text().replace(MAIN["secret_key"], "wrong-secret-value"))
        result = runner.invoke(app, ["fetch", "positions", "--config", str(path)])
    assert result.exit_code == 3
    assert "50113" in result.output
    assert "wrong-secret-value" not in result.output
    assert "Traceback" not in result.output
