"""The fetch stage against the simulator: leverage resolved per position, failures isolated."""

from __future__ import annotations

from posguard.sim import SimExchange, SimServer
from posguard.stages.fetch import fetch_snapshot
from tests.sim.conftest import MAIN, client_for, scenario, shipped


def test_incident_snapshot_resolves_what_it_can() -> None:
    with (
        SimServer(SimExchange(shipped("incident-2025-12-20"))) as server,
        client_for(server) as client,
    ):
        snapshot = fetch_snapshot(client)
    by_inst = snapshot.positions.set_index("instId")
    assert by_inst.loc["XRP-USDT-SWAP", "lever_source"] == "position"
    assert by_inst.loc["ETH-USDT-SWAP", "lever_source"] == "leverage_info"
    assert by_inst.loc["ETH-USDT-SWAP", "lever"] == 3
    assert by_inst.loc["DOGE-USDT-SWAP", "lever_source"] == "unknown"
    assert "51000" in by_inst.loc["DOGE-USDT-SWAP", "lever_reason"]
    assert snapshot.config.pos_mode == "net_mode"
    assert snapshot.started_ms > 0


def test_portfolio_margin_cross_positions_stay_unknown_with_59111() -> None:
    pm = {**MAIN, "acct_lv": 4}
    sc = scenario(
        name="pm",
        accounts=[pm],
        steps=[{"at": "+0s", "action": "open", "instId": "XRP-USDT-SWAP", "sz": "3", "px": "1.9"}],
    )
    with SimServer(SimExchange(sc)) as server, client_for(server) as client:
        snapshot = fetch_snapshot(client)
    row = snapshot.positions.iloc[0]
    assert row["lever_source"] == "unknown"
    assert "59111" in row["lever_reason"]
    assert snapshot.config.portfolio_margin
