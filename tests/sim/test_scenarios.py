"""Scenario files: every shipped one loads; a broken one names the file, step and field."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from posguard import drift
from posguard.cli import app
from posguard.frames import parse_instruments, parse_positions
from posguard.frames.contract import positions_frame
from posguard.instants import parse_instant
from posguard.sim import ScenarioError, SimExchange, SimServer
from posguard.sim.cli_support import load_for_cli, parse_account_option
from posguard.sim.scenario import shipped_scenarios
from tests.sim.conftest import MAIN, client_for, scenario, shipped

# Scenario files are named with dashes: cause-registry-lag.json for "registry_lag".
CAUSES = [cause.replace("_", "-") for cause in drift.CAUSES]


def test_a_scenario_ships_for_every_cause_and_the_incident() -> None:
    names = set(shipped_scenarios())
    assert "incident-2025-12-20" in names
    for cause in CAUSES:
        assert f"cause-{cause}" in names


@pytest.mark.parametrize("name", shipped_scenarios())
def test_shipped_scenarios_play_to_their_end(name: str) -> None:
    exchange = SimExchange(shipped(name))
    exchange.advance(to_ms=exchange.end_ms())
    assert not exchange.pending
    refused = [a for a in exchange.applied if a["outcome"] != "ok"]
    assert refused == []


def test_relative_and_absolute_instants() -> None:
    start = parse_instant("2025-12-20T00:00:00.000Z", 0)
    assert parse_instant("+2m27s", start) - start == 147_000
    assert parse_instant("+1h", start) - start == 3_600_000
    assert parse_instant("+250ms", start) - start == 250
    with pytest.raises(ValueError, match="time zone"):
        parse_instant("2025-12-20T00:00:00", 0)


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        (
            {"steps": [{"at": "+0s", "action": "open", "instId": "XRP-USDT-SWAP", "sz": "x1"}]},
            "step 0 (open), field 'sz'",
        ),
        (
            {"steps": [{"at": "soon", "action": "open", "instId": "XRP-USDT-SWAP", "sz": "1"}]},
            "step 0 (open), field 'at'",
        ),
        (
            {"steps": [{"at": "+0s", "action": "open", "instId": "NOPE-USDT-SWAP", "sz": "1"}]},
            "step 0 (open), field 'instId'",
        ),
        (
            {"steps": [{"at": "+0s", "action": "open", "instId": "XRP-USDT-SWAP"}]},
            "step 0 (open), field 'sz'",
        ),
        ({"steps": [{"at": "+0s", "action": "teleport"}]}, "step 0 (teleport), field 'action'"),
        ({"faults": [{"endpoint": "nowhere", "kind": "timeout"}]}, "fault 0, field 'endpoint'"),
        (
            {"faults": [{"endpoint": "positions", "kind": "drop_position"}]},
            "fault 0 (drop_position), field 'instId'",
        ),
        (
            {
                "steps": [
                    {"at": "+0s", "action": "close", "instId": "XRP-USDT-SWAP", "account": "ghost"}
                ]
            },
            "field 'account'",
        ),
    ],
)
def test_invalid_scenarios_name_step_and_field(document: dict[str, object], expected: str) -> None:
    with pytest.raises(ScenarioError) as caught:
        scenario(**document)
    assert "test scenario" in str(caught.value)
    assert expected in str(caught.value)


def test_invalid_files_are_refused_by_the_cli(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text(
        json.dumps(
            {"steps": [{"at": "+0s", "action": "open", "instId": "XRP-USDT-SWAP", "sz": "-"}]}
        )
    )
    result = CliRunner().invoke(app, ["sim", "--scenario", str(broken), "--check"])
    assert result.exit_code == 2
    assert str(broken) in result.output
    assert "step 0 (open), field 'sz'" in result.output
    not_json = tmp_path / "x.json"
    not_json.write_text("{")
    result = CliRunner().invoke(app, ["sim", "--scenario", str(not_json), "--check"])
    assert result.exit_code == 2
    assert "not valid JSON" in result.output


def test_yaml_scenarios(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(
        "name: y\nsteps:\n  - {at: '+0s', action: open, instId: XRP-USDT-SWAP, sz: 3}\n"
    )
    loaded = load_for_cli(str(path))
    assert loaded.steps[0].sz == "3"


def test_cli_lists_and_checks_shipped_scenarios() -> None:
    runner = CliRunner()
    listed = runner.invoke(app, ["sim", "--list"])
    assert "incident-2025-12-20" in listed.output
    checked = runner.invoke(app, ["sim", "--scenario", "incident-2025-12-20", "--check"])
    assert checked.exit_code == 0
    assert "ok" in checked.output


def test_account_option() -> None:
    parsed = parse_account_option("desk=k:s:p")
    assert (parsed.name, parsed.api_key, parsed.secret_key, parsed.passphrase) == (
        "desk",
        "k",
        "s",
        "p",
    )
    assert parsed.demo  # the default stays demo trading
    with pytest.raises(Exception, match="NAME=KEY:SECRET:PASSPHRASE"):
        parse_account_option("desk=k:s")


def test_account_option_live_and_demo_modes() -> None:
    assert not parse_account_option("desk=k:s:p:live").demo
    assert parse_account_option("desk=k:s:p:demo").demo
    with pytest.raises(Exception, match="'live' or 'demo'") as refused:
        parse_account_option("desk=k:s:p:real-secret")
    assert "real-secret" not in str(refused.value)
    with pytest.raises(Exception, match="NAME=KEY:SECRET:PASSPHRASE") as short:
        parse_account_option("desk=k:secret-value")
    assert "secret-value" not in str(short.value)


def test_load_opens_synthetic_positions_in_every_account() -> None:
    hedged = {**MAIN, "name": "hedged", "api_key": "h-key", "pos_mode": "long_short_mode"}
    server = SimServer(
        SimExchange(scenario(accounts=[MAIN, hedged], load={"instruments": 40, "positions": 30}))
    )
    with server, client_for(server) as client:
        instruments = parse_instruments(client.instruments("SWAP"))
        positions = parse_positions(client.positions(inst_type="SWAP"))
    synthetic = instruments[instruments["instId"].str.startswith("SYN")]
    assert len(synthetic) == 40
    assert set(synthetic["ctVal"]) == {10.0}
    assert len(positions) == 30
    assert positions["is_open"].all()
    assert set(positions["mgnMode"]) == {"cross", "isolated"}
    assert set(positions["side"]) == {"long", "short"}
    assert set(positions["posSide"]) == {"net"}
    # Sizes are whole lots and the notional OKX reports matches ctVal x size x mark.
    assert (positions["size"] % 1 == 0).all()
    merged = positions_frame(positions, instruments)
    assert (merged["notional_rel_err"] < 1e-9).all()
    hedged_book = server.exchange.accounts["hedged"].positions
    assert {key[2] for key in hedged_book} == {"long", "short"}


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ({"load": {"instruments": 2, "positions": 3}}, "load.positions': 3 positions"),
        (
            {
                "load": {"instruments": 2},
                "steps": [{"at": "+0s", "action": "price", "instId": "SYN000003-USDT-SWAP"}],
            },
            "'SYN000003-USDT-SWAP' is not a simulated instrument",
        ),
        ({"load": {"instruments": -1}}, "load.instruments"),
    ],
)
def test_invalid_loads_are_named(document: dict[str, object], expected: str) -> None:
    with pytest.raises(ScenarioError, match=re.escape(expected)):
        scenario(**document)


def test_steps_may_use_synthetic_instruments() -> None:
    loaded = scenario(
        load={"instruments": 3},
        steps=[{"at": "+0s", "action": "price", "instId": "SYN000003-USDT-SWAP", "px": "2"}],
    )
    exchange = SimExchange(loaded)
    assert str(exchange.prices["SYN000003-USDT-SWAP"]) == "2"
