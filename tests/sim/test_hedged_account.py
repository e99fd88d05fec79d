"""The hedged-account scenario: leverage planned and applied per OKX scope, end to end."""

from __future__ import annotations

import json
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from posguard.cli import app
from posguard.okx import OkxClient
from posguard.settings import AccountSettings, LeverageConfig
from posguard.sim import SimExchange, SimServer
from posguard.sim.book import SimRefusal, leverage_rows, set_leverage
from posguard.stages.leverage_plan import recalculate
from tests.sim.conftest import MAIN, client_for, scenario, shipped
from tests.sim.test_cli_against_sim import settings_file

runner = CliRunner()
SET_LEVERAGE = "/api/v5/account/set-leverage"
# Calm enough that every target reaches its bound: the tier bounds show.
EAGER = LeverageConfig(target_vol=5.0, max_lever=100, window=60)


def eager_settings(folder: Path, base_url: str) -> str:
    path = settings_file(folder, base_url)
    path.write_text(path.read_text() + "\n[leverage]\ntarget_vol = 5.0\nmax_lever = 100\n")
    return str(path)


def legs_within_their_tiers(exchange: SimExchange) -> list[tuple[str, str, str, str, str]]:
    """Every position's leverage and the maxLever of the tier its size is in, per the simulator."""
    rows = []
    for position in exchange.state()["accounts"]["main"]["positions"]:
        inst = exchange.instrument(position["instId"])
        tier = inst.tier_for(abs(Decimal(position["pos"])))
        rows.append(
            (
                position["instId"],
                position["mgnMode"],
                position["posSide"],
                position["lever"],
                str(tier.max_lever),
            )
        )
    return rows


def test_plan_json_has_one_target_per_scope_and_apply_keeps_every_leg_in_its_tier(
    tmp_path: Path,
) -> None:
    exchange = SimExchange(shipped("hedged-account"))
    with SimServer(exchange) as server:
        config = eager_settings(tmp_path, server.base_url)
        planned = runner.invoke(app, ["leverage", "plan", "--config", config, "--json"])
        applied = runner.invoke(app, ["leverage", "apply", "--config", config, "--json"])
        again = runner.invoke(app, ["leverage", "plan", "--config", config, "--json"])
    assert planned.exit_code == 0, planned.output
    plan = json.loads(planned.output)["plan"]
    scopes = [(r["instId"], r["mgnMode"], r["posSide"]) for r in plan]
    assert sorted(scopes) == [
        ("BTC-USDT-SWAP", "isolated", "long"),
        ("BTC-USDT-SWAP", "isolated", "short"),
        ("ETH-USDT-SWAP", "cross", "long+short"),
        ("XRP-USDT-SWAP", "cross", "long+short"),
    ]
    by_scope: dict[tuple[str, str, str], dict[str, Any]] = dict(zip(scopes, plan, strict=True))
    xrp = by_scope[("XRP-USDT-SWAP", "cross", "long+short")]
    assert [(leg["posSide"], leg["size"], leg["tier_max"]) for leg in xrp["legs"]] == [
        ("long", 600.0, 25.0),
        ("short", 5.0, 50.0),
    ]
    assert (xrp["target"], xrp["upper"], xrp["bound"], xrp["action"]) == (
        25.0,
        25.0,
        "tier",
        "raise",
    )
    eth = by_scope[("ETH-USDT-SWAP", "cross", "long+short")]
    assert (eth["action"], eth["target"], eth["upper"], eth["bound"]) == (
        "keep",
        None,
        None,
        "unknown",
    )
    assert "past the last position tier" in eth["reason"]
    btc_short = by_scope[("BTC-USDT-SWAP", "isolated", "short")]
    assert (btc_short["target"], btc_short["bound"]) == (10.0, "tier")
    btc_long = by_scope[("BTC-USDT-SWAP", "isolated", "long")]
    assert btc_long["target"] == 100.0  # the short leg's tier does not bind an isolated long

    assert applied.exit_code == 0, applied.output
    outcomes = json.loads(applied.output)["outcomes"]
    assert sorted((o["instId"], o["posSide"], o["outcome"], o["to_lever"]) for o in outcomes) == [
        ("BTC-USDT-SWAP", "long", "applied", 100.0),
        ("BTC-USDT-SWAP", "short", "applied", 10.0),
        ("XRP-USDT-SWAP", "long+short", "applied", 25.0),
    ]
    levers = legs_within_their_tiers(exchange)
    assert len(levers) == 5
    for inst_id, mgn_mode, pos_side, lever, tier_max in levers:
        assert Decimal(lever) <= Decimal(tier_max), (inst_id, mgn_mode, pos_side, lever, tier_max)
    assert {(i, s): lever for i, _, s, lever, _ in levers} == {
        ("XRP-USDT-SWAP", "long"): "25",
        ("XRP-USDT-SWAP", "short"): "25",
        ("ETH-USDT-SWAP", "long"): "3",  # past the last tier: kept
        ("BTC-USDT-SWAP", "long"): "100",
        ("BTC-USDT-SWAP", "short"): "10",
    }
    assert {r["action"] for r in json.loads(again.output)["plan"]} == {"keep"}


def test_the_plan_table_has_a_bound_column(tmp_path: Path) -> None:
    with SimServer(SimExchange(shipped("hedged-account"))) as server:
        config = eager_settings(tmp_path, server.base_url)
        table = runner.invoke(app, ["leverage", "plan", "--config", config])
    assert table.exit_code == 0, table.output
    header, *lines = table.output.splitlines()
    assert header.split()[:10] == [
        "instId",
        "mgnMode",
        "posSide",
        "legs",
        "(contracts)",
        "lever",
        "source",
        "vol",
        "target",
        "bound",
    ]
    column = header.index("bound")
    bounds = {line.split()[0] + " " + line.split()[2]: line[column:].split()[:2] for line in lines}
    assert bounds["XRP-USDT-SWAP long+short"] == ["25x", "tier"]
    assert bounds["BTC-USDT-SWAP long"] == ["100x", "config"]
    assert bounds["ETH-USDT-SWAP long+short"][0] == "unknown"


class CountingTransport(httpx.HTTPTransport):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[dict[str, str]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == SET_LEVERAGE:
            self.writes.append(json.loads(request.content))
        return super().handle_request(request)


@pytest.mark.parametrize("config", [LeverageConfig(), EAGER], ids=["default", "eager"])
def test_never_two_set_leverage_calls_to_one_scope(config: LeverageConfig) -> None:
    transport = CountingTransport()
    exchange = SimExchange(shipped("hedged-account"))
    with SimServer(exchange) as server:
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
            report = recalculate(client, config, apply=True)
    scopes = Counter(
        (w["instId"], w["mgnMode"], w.get("posSide") if w["mgnMode"] == "isolated" else "")
        for w in transport.writes
    )
    assert scopes
    assert max(scopes.values()) == 1, scopes
    assert {o.outcome for o in report.outcomes} == {"applied"}
    assert all(
        w.get("posSide") in ("long", "short")
        for w in transport.writes
        if w["mgnMode"] == "isolated"
    )
    assert all("posSide" not in w for w in transport.writes if w["mgnMode"] == "cross")


# -- the simulator's own set-leverage rules, as OKX applies them per scope --------------------


def hedged_book() -> tuple[Any, Any]:
    exchange = SimExchange(shipped("hedged-account"))
    return exchange.accounts["main"], exchange.instrument("XRP-USDT-SWAP")


def test_sim_cross_leverage_in_long_short_mode_is_checked_against_both_legs() -> None:
    account, xrp = hedged_book()  # long 600 (tier 25x), short 5 (tier 50x)
    for sent_side in (None, "short"):
        with pytest.raises(SimRefusal) as refused:
            set_leverage(account, xrp, lever=Decimal(40), mgn_mode="cross", pos_side=sent_side)
        assert refused.value.code == "59104"
    answer = set_leverage(account, xrp, lever=Decimal(25), mgn_mode="cross", pos_side=None)
    assert answer[0]["posSide"] == ""
    rows = {r["posSide"]: r["lever"] for r in leverage_rows(account, xrp, "cross")}
    assert rows == {"long": "25", "short": "25"}  # one leverage for both legs


def test_sim_isolated_legs_are_checked_alone() -> None:
    exchange = SimExchange(shipped("hedged-account"))
    account, btc = exchange.accounts["main"], exchange.instrument("BTC-USDT-SWAP")
    set_leverage(account, btc, lever=Decimal(100), mgn_mode="isolated", pos_side="long")
    with pytest.raises(SimRefusal) as refused:  # the short leg's 2000 contracts: tier 10x
        set_leverage(account, btc, lever=Decimal(20), mgn_mode="isolated", pos_side="short")
    assert refused.value.code == "59104"
    with pytest.raises(SimRefusal) as missing:
        set_leverage(account, btc, lever=Decimal(5), mgn_mode="isolated", pos_side=None)
    assert missing.value.code == "51000"
    rows = {r["posSide"]: r["lever"] for r in leverage_rows(account, btc, "isolated")}
    assert rows == {"long": "100", "short": "3"}


def test_sim_net_mode_checks_the_tier_whatever_posside_is_sent() -> None:
    steps = [
        {
            "at": "+0s",
            "action": "open",
            "instId": "XRP-USDT-SWAP",
            "mgnMode": "isolated",
            "sz": "600",
        }
    ]
    exchange = SimExchange(scenario(name="net", steps=steps))
    account, xrp = exchange.accounts["main"], exchange.instrument("XRP-USDT-SWAP")
    for sent_side in (None, "long", "short"):
        with pytest.raises(SimRefusal) as refused:
            set_leverage(account, xrp, lever=Decimal(40), mgn_mode="isolated", pos_side=sent_side)
        assert refused.value.code == "59104", sent_side


def test_the_shipped_scenario_loads_with_every_step_applied() -> None:
    exchange = SimExchange(shipped("hedged-account"))
    assert [a for a in exchange.state()["applied"] if a["outcome"] != "ok"] == []
    assert exchange.accounts["main"].pos_mode == "long_short_mode"
    with SimServer(exchange) as server, client_for(server) as client:
        positions = client.positions()
    assert sorted((p["instId"], p["mgnMode"], p["posSide"]) for p in positions) == [
        ("BTC-USDT-SWAP", "isolated", "long"),
        ("BTC-USDT-SWAP", "isolated", "short"),
        ("ETH-USDT-SWAP", "cross", "long"),
        ("XRP-USDT-SWAP", "cross", "long"),
        ("XRP-USDT-SWAP", "cross", "short"),
    ]
