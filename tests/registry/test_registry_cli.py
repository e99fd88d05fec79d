"""`posguard registry import|export|show` on a SQLite file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from posguard.cli import app
from posguard.registry import sqlite_url

runner = CliRunner()


def test_import_export_show_round_trip(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "r.db")
    source = tmp_path / "positions.csv"
    source.write_text(
        "instId,posSide,mgnMode,pos,avgPx,lever\n"
        "XRP-USDT-SWAP,net,cross,108,1.93,5\n"
        "BTC-USDT-SWAP,net,isolated,0.5,92000,20\n"
    )
    imported = runner.invoke(
        app, ["registry", "import", str(source), "--account", "main", "--url", url]
    )
    assert imported.exit_code == 0, imported.output
    assert "imported 2" in imported.output
    exported = runner.invoke(app, ["registry", "export", "--url", url])
    rows = json.loads(exported.output)
    assert {(r["instId"], r["pos"], r["lever"]) for r in rows} == {
        ("XRP-USDT-SWAP", "108", "5"),
        ("BTC-USDT-SWAP", "0.5", "20"),
    }
    again = tmp_path / "again.json"
    again.write_text(exported.output)
    other = sqlite_url(tmp_path / "other.db")
    assert runner.invoke(app, ["registry", "import", str(again), "--url", other]).exit_code == 0
    csv_out = runner.invoke(app, ["registry", "export", "--format", "csv", "--url", other])
    assert csv_out.output.startswith("account,instId,posSide")
    shown = runner.invoke(app, ["registry", "show", "--url", url])
    assert "2 open positions" in shown.output


def test_import_errors_name_the_file_and_row(tmp_path: Path) -> None:
    source = tmp_path / "bad.json"
    source.write_text(json.dumps([{"instId": "XRP-USDT-SWAP", "pos": "1"}]))
    result = runner.invoke(
        app, ["registry", "import", str(source), "--url", sqlite_url(tmp_path / "r.db")]
    )
    assert result.exit_code == 2
    assert "bad.json: row 1: no account" in result.output
    source.write_text(json.dumps([{"account": "a", "instId": "XRP-USDT-SWAP", "pos": "x"}]))
    result = runner.invoke(
        app, ["registry", "import", str(source), "--url", sqlite_url(tmp_path / "r.db")]
    )
    assert result.exit_code != 0
    assert "not a decimal" in result.output


def test_an_unreadable_import_file_is_a_clear_error(tmp_path: Path) -> None:
    from posguard.errors import DataError
    from posguard.registry.transfer import read_rows

    path = tmp_path / "rows.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(DataError, match="nested too deeply"):
        read_rows(path)
    path.write_text("[" + "9" * 5000 + "]")
    with pytest.raises(DataError, match="not readable JSON"):
        read_rows(path)
