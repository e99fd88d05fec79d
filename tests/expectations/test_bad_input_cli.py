"""Wrong JSON types and unknown contract specs through `posguard parse` and `validate`.

Bad input is one line on stderr and the documented exit status (2: bad input; 3: an exchange
answer that is itself an error), never a traceback, never a pass, never a guessed number.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

from posguard.cli import app
from posguard.frames import parse_instruments, parse_positions
from posguard.frames.contract import positions_frame
from posguard.okx.saved import load_records
from tests.conftest import SAMPLES
from tests.helpers import xrp_position as xrp

runner = CliRunner()
INSTRUMENTS = SAMPLES / "instruments_swap_ccxt_markets_info.json"


def saved(folder: Path, name: str, document: Any) -> Path:
    path = folder / name
    path.write_text(json.dumps(document))
    return path


def one_clear_line(output: str) -> None:
    assert "Traceback" not in output
    assert len([line for line in output.splitlines() if line.strip()]) == 1, output


@pytest.mark.parametrize(
    ("field", "value"),
    [("lever", True), ("pos", ["108"]), ("markPx", {"px": "1.93"}), ("pos", "1_000")],
)
def test_parse_of_a_wrong_json_type_exits_2_with_one_line(
    tmp_path: Path, field: str, value: Any
) -> None:
    path = saved(
        tmp_path, "positions.json", {"code": "0", "msg": "", "data": [xrp(**{field: value})]}
    )
    result = runner.invoke(app, ["parse", str(path)])
    assert result.exit_code == 2, result.output
    one_clear_line(result.output)
    assert repr(field) in result.output
    assert "XRP-USDT-SWAP" in result.output


def test_parse_of_a_bare_nan_literal_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "positions.json"
    path.write_text(json.dumps({"code": "0", "data": [xrp()]}).replace('"1.93"', "NaN", 1))
    result = runner.invoke(app, ["parse", str(path)])
    assert result.exit_code == 2, result.output
    assert "'avgPx' has value nan" in result.output


def test_parse_of_a_time_beyond_int64_exits_2(tmp_path: Path) -> None:
    record = {
        "instType": "SWAP",
        "instId": "XRP-USDT-SWAP",
        "closeTotalPos": "1",
        "openMaxPos": "1",
        "cTime": "1",
        "uTime": "99999999999999999999",
    }
    path = saved(tmp_path, "history.json", [record])
    result = runner.invoke(app, ["parse", str(path)])
    assert result.exit_code == 2, result.output
    one_clear_line(result.output)
    assert "'uTime'" in result.output


def test_parse_of_deeply_nested_json_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "positions.json"
    path.write_text('{"code":"0","data":' + "[" * 50_000 + "]" * 50_000 + "}")
    result = runner.invoke(app, ["parse", str(path)])
    assert result.exit_code == 2, result.output
    one_clear_line(result.output)
    assert "nested too deeply" in result.output


def test_parse_of_a_saved_answer_without_data_is_the_answer_s_error(tmp_path: Path) -> None:
    path = saved(tmp_path, "positions.json", {"code": "0", "msg": ""})
    result = runner.invoke(app, ["parse", str(path)])
    assert result.exit_code == 3, result.output  # like any saved OKX error answer
    one_clear_line(result.output)
    assert "without a 'data' member" in result.output
    assert "(no records)" not in result.output


@pytest.mark.parametrize(
    ("field", "value"), [("lever", True), ("pos", [108]), ("pos", "\u0661\u0660\u0668")]
)
def test_validate_of_a_wrong_json_type_exits_2_not_pass(
    tmp_path: Path, field: str, value: Any
) -> None:
    positions = saved(tmp_path, "positions.json", [xrp(**{field: value})])
    result = runner.invoke(
        app, ["validate", "--positions", str(positions), "--instruments", str(INSTRUMENTS)]
    )
    assert result.exit_code == 2, result.output
    one_clear_line(result.output)
    assert repr(field) in result.output
    assert "XRP-USDT-SWAP" in result.output


def instruments_without_ct_mult(folder: Path) -> Path:
    records = [
        {**r, "ctMult": ""} if r["instId"] == "XRP-USDT-SWAP" else r
        for r in load_records(INSTRUMENTS)
    ]
    return saved(folder, "instruments.json", records)


def test_an_unknown_ct_mult_gives_an_unknown_notional_never_a_guess(tmp_path: Path) -> None:
    instruments = parse_instruments(load_records(instruments_without_ct_mult(tmp_path)))
    frame = positions_frame(parse_positions([xrp()]), instruments)
    assert pd.isna(frame["notional"].iloc[0])
    assert pd.isna(frame["notional_rel_err"].iloc[0])
    assert frame["contract_spec_ok"].tolist() == [False]


def test_validate_names_the_position_whose_ct_mult_is_unknown(tmp_path: Path) -> None:
    positions = saved(tmp_path, "positions.json", [xrp()])
    result = runner.invoke(
        app,
        [
            "validate",
            "--positions",
            str(positions),
            "--instruments",
            str(instruments_without_ct_mult(tmp_path)),
            "--json",
        ],
    )
    assert result.exit_code == 1, result.output
    failed = {r["expectation"]: r for r in json.loads(result.output)["results"] if not r["success"]}
    assert set(failed) == {"ctVal and ctMult known", "ctMult > 0"}
    [row] = failed["ctVal and ctMult known"]["failing"]
    assert row["instId"] == "XRP-USDT-SWAP"
    assert "ctMult N/A" in row["detail"]
