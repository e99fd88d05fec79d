"""`posguard validate`: exit 0 / 1 / 2, JSON on request, inputs named on error."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from posguard.cli import app
from tests.conftest import SAMPLES
from tests.helpers import xrp_position

runner = CliRunner()
INSTRUMENTS = str(SAMPLES / "instruments_swap_ccxt_markets_info.json")


def test_passing_sample_exits_0() -> None:
    result = runner.invoke(
        app,
        [
            "validate",
            "--positions",
            str(SAMPLES / "positions_ws_ccxt_docstring_xrp.json"),
            "--instruments",
            INSTRUMENTS,
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["success"] is True


def test_failing_expectation_exits_1_with_the_instrument(tmp_path: Path) -> None:
    positions = tmp_path / "p.json"
    positions.write_text(json.dumps([xrp_position(lever="")]))
    result = runner.invoke(
        app, ["validate", "--positions", str(positions), "--instruments", INSTRUMENTS, "--json"]
    )
    assert result.exit_code == 1
    document = json.loads(result.output)
    failed = [r for r in document["results"] if not r["success"]]
    assert failed[0]["failing"][0]["instId"] == "XRP-USDT-SWAP"
    table = runner.invoke(
        app, ["validate", "--positions", str(positions), "--instruments", INSTRUMENTS]
    )
    assert table.exit_code == 1
    assert "FAIL lever > 0" in table.output


def test_leverage_info_file_resolves_empty_lever(tmp_path: Path) -> None:
    positions = tmp_path / "p.json"
    positions.write_text(
        json.dumps(
            {
                "code": "0",
                "msg": "",
                "data": [
                    {
                        "instType": "SWAP",
                        "instId": "BTC-USDT-SWAP",
                        "mgnMode": "isolated",
                        "posSide": "net",
                        "pos": "1",
                        "avgPx": "90000",
                        "markPx": "90000",
                        "lever": "",
                        "notionalUsd": "900",
                    }
                ],
            }
        )
    )
    result = runner.invoke(
        app,
        [
            "validate",
            "--positions",
            str(positions),
            "--instruments",
            INSTRUMENTS,
            "--leverage-info",
            str(SAMPLES / "leverage_info_ccxt_docstring.json"),
        ],
    )
    assert result.exit_code == 0, result.output


def test_unreadable_and_invalid_inputs_exit_2(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    result = runner.invoke(
        app, ["validate", "--positions", str(broken), "--instruments", INSTRUMENTS]
    )
    assert result.exit_code == 2
    assert "broken.json" in result.output
    bad_value = tmp_path / "bad.json"
    bad_value.write_text(
        json.dumps(
            [
                {
                    "instType": "SWAP",
                    "instId": "XRP-USDT-SWAP",
                    "mgnMode": "cross",
                    "posSide": "net",
                    "pos": "1",
                    "lever": "5x",
                }
            ]
        )
    )
    result = runner.invoke(
        app, ["validate", "--positions", str(bad_value), "--instruments", INSTRUMENTS]
    )
    assert result.exit_code == 2
    assert "bad.json" in result.output
    assert "'lever'" in result.output
    missing = runner.invoke(
        app, ["validate", "--positions", str(tmp_path / "none.json"), "--instruments", INSTRUMENTS]
    )
    assert missing.exit_code == 2
    swapped = runner.invoke(
        app, ["validate", "--positions", INSTRUMENTS, "--instruments", INSTRUMENTS]
    )
    assert swapped.exit_code == 2
    assert "not positions" in swapped.output
