"""The simulator answers bad parameters like OKX, and its no_data fault reaches the commands."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from posguard.errors import MalformedResponseError, RejectedError
from posguard.okx import endpoints as ep
from posguard.sim import SimExchange, SimServer, validate_scenario
from posguard.sim.cli_support import known_instruments
from posguard.sim.scenario import ScenarioError, read_scenario_document
from tests.sim.conftest import client_for, scenario
from tests.sim.test_cli_against_sim import settings_file

runner = CliRunner()

NOT_INTEGERS = ["abc", "1.5", "1_000", "\u0661\u0662\u0663", " 7", "-", "1e3"]


def incident_with(*faults: dict[str, Any]) -> Any:
    document, source = read_scenario_document("incident-2025-12-20")
    document["faults"] = list(faults)
    return validate_scenario(document, source, known_instruments())


@pytest.mark.parametrize("value", NOT_INTEGERS)
@pytest.mark.parametrize(
    ("endpoint", "params", "name"),
    [
        (ep.POSITIONS_HISTORY, {}, "after"),
        (ep.POSITIONS_HISTORY, {}, "before"),
        (ep.POSITIONS_HISTORY, {}, "limit"),
        (ep.FILLS, {}, "begin"),
        (ep.FILLS, {}, "end"),
        (ep.FILLS, {}, "after"),
        (ep.FILLS_HISTORY, {"instType": "SWAP"}, "before"),
        (ep.CANDLES, {"instId": "XRP-USDT-SWAP"}, "after"),
        (ep.HISTORY_CANDLES, {"instId": "XRP-USDT-SWAP"}, "before"),
        (ep.CANDLES, {"instId": "XRP-USDT-SWAP"}, "limit"),
    ],
    ids=lambda p: p.name if isinstance(p, ep.Endpoint) else str(p),
)
def test_a_parameter_that_is_not_an_integer_gets_okx_s_51000(
    sim: SimServer, endpoint: ep.Endpoint, params: dict[str, str], name: str, value: str
) -> None:
    with client_for(sim) as client, pytest.raises(RejectedError) as caught:
        client.request(endpoint, {**params, name: value})
    assert caught.value.code == "51000"
    assert caught.value.okx_msg == f"Parameter {name} error"
    assert caught.value.http_status == 400


def test_the_51000_answer_is_okx_json_not_a_plain_text_500(sim: SimServer) -> None:
    response = httpx.get(
        f"{sim.base_url}{ep.CANDLES.path}", params={"instId": "XRP-USDT-SWAP", "after": "x"}
    )
    assert response.status_code == 400
    assert response.json() == {"code": "51000", "msg": "Parameter after error", "data": []}


def test_integers_still_filter(sim: SimServer) -> None:
    with client_for(sim) as client:
        rows = client.request(ep.CANDLES, {"instId": "XRP-USDT-SWAP", "limit": "5"})
    assert len(rows) == 5


@pytest.mark.parametrize("lever", ["1_0", "\u0661\u0660", True, [5]])
def test_a_set_leverage_lever_okx_would_not_read_is_51000(sim: SimServer, lever: Any) -> None:
    with client_for(sim) as client, pytest.raises(RejectedError) as caught:
        client.request(
            ep.SET_LEVERAGE, body={"instId": "XRP-USDT-SWAP", "lever": lever, "mgnMode": "cross"}
        )
    assert caught.value.code == "51000"


@pytest.mark.parametrize("shape", ["absent", "null", "object", "string"])
def test_the_no_data_fault_answers_code_0_without_a_data_array(shape: str) -> None:
    faults = [{"endpoint": "positions", "kind": "no_data", "data": shape, "times": 1}]
    with (
        SimServer(SimExchange(scenario(name="no-data", faults=faults))) as server,
        client_for(server) as client,
    ):
        with pytest.raises(MalformedResponseError, match="not the 'data' array"):
            client.positions()
        assert client.positions() == []  # `times` 1: the next answer is whole


def test_an_unknown_no_data_shape_is_a_scenario_error() -> None:
    faults = [{"endpoint": "positions", "kind": "no_data", "data": "list"}]
    with pytest.raises(ScenarioError, match="fault 0"):
        scenario(name="bad", faults=faults)


def test_fetch_positions_without_data_fails_instead_of_no_records(tmp_path: Path) -> None:
    fault = {"endpoint": "positions", "kind": "no_data"}
    with SimServer(SimExchange(incident_with(fault))) as server:
        config = str(settings_file(tmp_path, server.base_url))
        result = runner.invoke(app_cli(), ["fetch", "positions", "--config", config])
    assert result.exit_code == 3, result.output
    assert "(no records)" not in result.output
    assert "/api/v5/account/positions" in result.output
    assert "'main'" in result.output
    assert "Traceback" not in result.output


def test_leverage_apply_does_not_count_set_leverage_without_data_as_applied(
    tmp_path: Path,
) -> None:
    fault = {"endpoint": "set_leverage", "kind": "no_data"}
    with SimServer(SimExchange(incident_with(fault))) as server:
        config = str(settings_file(tmp_path, server.base_url))
        planned = runner.invoke(app_cli(), ["leverage", "plan", "--config", config, "--json"])
        applied = runner.invoke(app_cli(), ["leverage", "apply", "--config", config, "--json"])
    plan = json.loads(planned.output)["plan"]
    assert any(row["action"] in ("raise", "lower") for row in plan)  # something to set
    assert applied.exit_code == 3, applied.output
    assert "set-leverage" in applied.output
    # The read-back decides: the simulator did not change the leverage, so not applied.
    assert '"outcome": "not_applied"' in applied.output
    assert "did not take effect" in applied.output
    assert '"outcome": "applied"' not in applied.output


def app_cli() -> Any:
    from posguard.cli import app

    return app
