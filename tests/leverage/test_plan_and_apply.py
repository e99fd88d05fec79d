"""Leverage plan and apply against the simulator."""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import pandas as pd
import pytest

from posguard.okx import OkxClient
from posguard.registry import Registry, sqlite_url
from posguard.settings import AccountSettings, LeverageConfig
from posguard.sim import SimExchange, SimServer
from posguard.stages.leverage_plan import recalculate
from tests.sim.conftest import MAIN, client_for, scenario, shipped

CONFIG = LeverageConfig(target_vol=0.25, window=60)


def test_incident_plan_lists_every_position_with_an_action(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="posguard.leverage")
    with (
        SimServer(SimExchange(shipped("incident-2025-12-20"))) as server,
        client_for(server) as client,
    ):
        report = recalculate(client, CONFIG)
    plan = report.plan.set_index("instId")
    assert set(plan.index) == {
        "XRP-USDT-SWAP",
        "ETH-USDT-SWAP",
        "DOGE-USDT-SWAP",
        "SUSHI-USDT-SWAP",
        "BTC-USDT-SWAP",
    }
    assert set(plan["action"]) <= {"keep", "raise", "lower", "skip"}
    assert plan.loc["SUSHI-USDT-SWAP", "action"] == "keep"  # 3 candles: volatility N/A
    assert plan.loc["SUSHI-USDT-SWAP", "volatility_text"] == "N/A"
    assert plan.loc["DOGE-USDT-SWAP", "action"] == "skip"  # leverage cannot be resolved
    assert plan.loc["ETH-USDT-SWAP", "lever_source"] == "leverage_info"
    assert report.outcomes == [] or {o.outcome for o in report.outcomes} == {"dry_run"}
    text = caplog.text
    assert "SUSHI-USDT-SWAP" in text
    assert "volatility=N/A" in text
    assert "Traceback" not in text
    assert not [r for r in caplog.records if r.exc_info]


def test_apply_changes_what_the_plan_says_reads_back_and_is_idempotent(tmp_path: Path) -> None:
    steps = [
        {"at": "+0s", "action": "open", "instId": "XRP-USDT-SWAP", "sz": "10", "px": "1.93"},
        {"at": "+0s", "action": "open", "instId": "ETH-USDT-SWAP", "sz": "2", "px": "3200"},
    ]
    leverage = [
        {"instId": "XRP-USDT-SWAP", "lever": "2"},
        {"instId": "ETH-USDT-SWAP", "lever": "40"},
    ]
    with (
        SimServer(SimExchange(scenario(name="apply", steps=steps, leverage=leverage))) as server,
        client_for(server) as client,
        Registry(sqlite_url(tmp_path / "r.db")) as registry,
    ):
        planned = recalculate(client, CONFIG)
        changes = planned.plan[planned.plan["action"].isin(["raise", "lower"])]
        assert len(changes) == 2
        applied = recalculate(client, CONFIG, apply=True, registry=registry)
        assert {o.instId: o.outcome for o in applied.outcomes} == {
            "XRP-USDT-SWAP": "applied",
            "ETH-USDT-SWAP": "applied",
        }
        for outcome in applied.outcomes:
            assert outcome.to_lever == float(
                changes.set_index("instId").loc[outcome.instId, "target"]
            )
        again = recalculate(client, CONFIG, apply=True, registry=registry)
        assert again.outcomes == []  # nothing left to change
        assert set(again.plan["action"]) == {"keep"}
        recorded = registry.leverage_changes("main")
    assert {r["outcome"] for r in recorded} == {"applied"}
    assert len(recorded) == 2


class CountingTransport(httpx.HTTPTransport):
    """A real transport that also remembers every path it sent."""

    def __init__(self) -> None:
        super().__init__()
        self.paths: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.paths.append(request.url.path)
        return super().handle_request(request)


def test_pending_orders_are_recorded_as_59107_and_not_retried(tmp_path: Path) -> None:
    transport = CountingTransport()
    with (
        SimServer(SimExchange(shipped("pending-orders"))) as server,
        Registry(sqlite_url(tmp_path / "r.db")) as registry,
    ):
        account = AccountSettings(
            api_key=MAIN["api_key"],
            secret_key=MAIN["secret_key"],
            passphrase=MAIN["passphrase"],
            demo=True,
            base_url=server.base_url,
        )
        with OkxClient(
            base_url=server.base_url, account_name="main", account=account, transport=transport
        ) as client:
            report = recalculate(
                client, LeverageConfig(target_vol=2.0, window=60), apply=True, registry=registry
            )
        recorded = registry.leverage_changes("main")
    assert [(o.outcome, o.code) for o in report.outcomes] == [("refused", "59107")]
    assert transport.paths.count("/api/v5/account/set-leverage") == 1
    assert recorded[0]["code"] == "59107"


def test_a_target_above_the_tier_max_is_clamped_before_any_request() -> None:
    # 600 XRP contracts at 1.93 sit in the 25x tier; a calm market would ask for more.
    steps = [{"at": "+0s", "action": "open", "instId": "XRP-USDT-SWAP", "sz": "600", "px": "1.93"}]
    sc = scenario(name="tier", steps=steps, leverage=[{"instId": "XRP-USDT-SWAP", "lever": "5"}])
    config = LeverageConfig(target_vol=5.0, max_lever=100, window=60)
    with SimServer(SimExchange(sc)) as server, client_for(server) as client:
        report = recalculate(client, config, apply=True)
    row = report.plan.iloc[0]
    assert row["target"] == 25
    assert row["bound"] == "tier"
    assert [(o.outcome, o.to_lever) for o in report.outcomes] == [("applied", 25.0)]


def test_kill_switch_forbids_applying(tmp_path: Path) -> None:
    steps = [{"at": "+0s", "action": "open", "instId": "XRP-USDT-SWAP", "sz": "10", "px": "1.93"}]
    sc = scenario(name="kill", steps=steps, leverage=[{"instId": "XRP-USDT-SWAP", "lever": "2"}])
    with (
        SimServer(SimExchange(sc)) as server,
        client_for(server) as client,
        Registry(sqlite_url(tmp_path / "r.db")) as registry,
    ):
        report = recalculate(
            client, CONFIG.model_copy(update={"kill_switch": True}), apply=True, registry=registry
        )
        lever = client.leverage_info("cross", ["XRP-USDT-SWAP"])[0]["lever"]
        recorded = registry.leverage_changes("main")
    assert [o.outcome for o in report.outcomes] == ["blocked"]
    assert lever == "2"
    assert recorded[0]["outcome"] == "blocked"


def test_plan_json_uses_null_for_missing_volatility() -> None:
    with (
        SimServer(SimExchange(shipped("incident-2025-12-20"))) as server,
        client_for(server) as client,
    ):
        rows = recalculate(client, CONFIG).plan_json()
    sushi = next(r for r in rows if r["instId"] == "SUSHI-USDT-SWAP")
    assert sushi["volatility"] is None
    assert "N/A" in sushi["reason"]
    assert isinstance(pd.Series([r["action"] for r in rows]).tolist(), list)
