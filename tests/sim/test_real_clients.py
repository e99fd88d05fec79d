"""ccxt's okx and python-okx, unchanged apart from the base URL, against the simulator."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from posguard.sim import SimExchange, SimServer
from tests.sim.conftest import MAIN, control, shipped

ccxt = pytest.importorskip("ccxt")
okx_account = pytest.importorskip("okx.Account")
okx_market = pytest.importorskip("okx.MarketData")
okx_public = pytest.importorskip("okx.PublicData")
okx_trade = pytest.importorskip("okx.Trade")


@pytest.fixture(scope="module")
def server() -> Iterator[SimServer]:
    with SimServer(SimExchange(shipped("incident-2025-12-20"))) as running:
        control(running, "advance", {"to": "+4m"})  # past the liquidation
        yield running


@contextmanager
def ccxt_client(server: SimServer, secret: str = MAIN["secret_key"]) -> Iterator[Any]:
    exchange = ccxt.okx(
        {"apiKey": MAIN["api_key"], "secret": secret, "password": MAIN["passphrase"]}
    )
    exchange.set_sandbox_mode(True)  # demo trading: x-simulated-trading: 1
    exchange.urls["api"] = {"rest": server.base_url}
    try:
        yield exchange
    finally:
        exchange.session.close()


def test_ccxt_reads_everything(server: SimServer) -> None:
    with ccxt_client(server) as exchange:
        check_ccxt_reads(exchange)


def check_ccxt_reads(exchange: Any) -> None:
    markets = exchange.load_markets()
    xrp = markets["XRP/USDT:USDT"]
    assert xrp["contractSize"] == 100
    assert markets["BTC/USD:BTC"]["inverse"]
    positions = exchange.fetch_positions()
    by_symbol = {p["symbol"]: p for p in positions}
    assert by_symbol["XRP/USDT:USDT"]["contracts"] == 108
    assert by_symbol["XRP/USDT:USDT"]["notional"] == pytest.approx(20_844, rel=1e-3)
    assert by_symbol["ETH/USDT:USDT"]["leverage"] is None  # lever "" stays unknown
    single = exchange.fetch_position("XRP/USDT:USDT")
    assert single["contracts"] == 108
    leverage = exchange.fetch_leverage("XRP/USDT:USDT", {"marginMode": "cross"})
    assert leverage["longLeverage"] == 5
    candles = exchange.fetch_ohlcv("XRP/USDT:USDT", "1m", limit=50)
    assert len(candles) == 50
    assert candles[0][0] < candles[-1][0]
    trades = exchange.fetch_my_trades("BTC/USDT:USDT")
    assert trades
    history = exchange.fetch_positions_history(["BTC/USDT:USDT"])
    assert history
    assert history[0]["symbol"] == "BTC/USDT:USDT"


def test_ccxt_sets_leverage(server: SimServer) -> None:
    with ccxt_client(server) as exchange:
        exchange.load_markets()
        exchange.set_leverage(6, "XRP/USDT:USDT", {"mgnMode": "cross"})
        leverage = exchange.fetch_leverage("XRP/USDT:USDT", {"marginMode": "cross"})
    assert leverage["longLeverage"] == 6


def test_ccxt_wrong_secret_is_rejected_with_okx_code(server: SimServer) -> None:
    with ccxt_client(server, secret="not-the-secret") as exchange:
        exchange.load_markets()
        with pytest.raises(ccxt.AuthenticationError, match="50113"):
            exchange.fetch_positions()


@contextmanager
def okx_clients(server: SimServer, secret: str = MAIN["secret_key"]) -> Iterator[dict[str, Any]]:
    creds = {
        "api_key": MAIN["api_key"],
        "api_secret_key": secret,
        "passphrase": MAIN["passphrase"],
        "flag": "1",
        "domain": server.base_url,
        "debug": False,
    }
    clients = {
        "account": okx_account.AccountAPI(**creds),
        "market": okx_market.MarketAPI(**creds),
        "public": okx_public.PublicAPI(**creds),
        "trade": okx_trade.TradeAPI(**creds),
    }
    try:
        yield clients
    finally:
        for client in clients.values():
            client.close()


# python-okx 0.4.4 posts its JSON body with httpx's deprecated `data=<str>`: its warning,
# not ours, and only on its POSTs.
PYOKX_DATA_WARNING = "ignore:Use 'content=<...>' to upload raw bytes:DeprecationWarning"


@pytest.mark.filterwarnings(PYOKX_DATA_WARNING)
def test_python_okx_reads_and_sets(server: SimServer) -> None:
    with okx_clients(server) as api:
        check_python_okx(api)


def check_python_okx(api: dict[str, Any]) -> None:
    instruments = api["public"].get_instruments(instType="SWAP")
    assert instruments["code"] == "0"
    assert {"XRP-USDT-SWAP", "BTC-USD-SWAP"} <= {i["instId"] for i in instruments["data"]}
    tiers = api["public"].get_position_tiers(instType="SWAP", tdMode="cross", instFamily="XRP-USDT")
    assert tiers["code"] == "0"
    assert tiers["data"]
    positions = api["account"].get_positions(instType="SWAP")
    assert positions["code"] == "0"
    assert {p["instId"] for p in positions["data"]} >= {"XRP-USDT-SWAP", "ETH-USDT-SWAP"}
    leverage = api["account"].get_leverage(mgnMode="cross", instId="XRP-USDT-SWAP")
    assert leverage["code"] == "0"
    changed = api["account"].set_leverage(lever="7", mgnMode="cross", instId="XRP-USDT-SWAP")
    assert changed["code"] == "0"
    assert changed["data"][0]["lever"] == "7"
    config = api["account"].get_account_config()
    assert config["data"][0]["posMode"] == "net_mode"
    history = api["account"].get_positions_history(instType="SWAP")
    assert any(h["type"] == "3" for h in history["data"])
    candles = api["market"].get_candlesticks(instId="XRP-USDT-SWAP", bar="1m", limit="20")
    assert len(candles["data"]) == 20
    older = api["market"].get_history_candlesticks(instId="XRP-USDT-SWAP", limit="20")
    assert len(older["data"]) == 20
    fills = api["trade"].get_fills(instType="SWAP")
    assert fills["code"] == "0"
    assert fills["data"]
    fills_history = api["trade"].get_fills_history(instType="SWAP")
    assert fills_history["code"] == "0"
    assert fills_history["data"]


def test_python_okx_wrong_secret_gets_okx_code(server: SimServer) -> None:
    with okx_clients(server, secret="not-the-secret") as api:
        answer = api["account"].get_positions()
    assert answer["code"] == "50113"
