"""posguard's own client against the simulator: endpoints, auth, faults, formulas."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from posguard import frames
from posguard.errors import (
    AuthError,
    ExchangeTimeoutError,
    MalformedResponseError,
    RateLimitedError,
    RejectedError,
    TransientExchangeError,
    is_retryable,
)
from posguard.notional import classify_notional, position_notional
from posguard.okx import OkxClient
from posguard.settings import AccountSettings
from posguard.sim import SimExchange, SimServer
from tests.sim.conftest import MAIN, client_for, control, scenario, shipped


def open_step(inst_id: str, sz: str, px: str, **extra: str) -> dict[str, str]:
    return {"at": "+0s", "action": "open", "instId": inst_id, "sz": sz, "px": px, **extra}


def test_incident_positions_have_okx_numbers() -> None:
    with (
        SimServer(SimExchange(shipped("incident-2025-12-20"))) as server,
        client_for(server) as client,
    ):
        positions = frames.parse_positions(client.positions(), account="main")
        instruments = frames.parse_instruments(client.instruments("SWAP"))
    merged = position_notional(positions, instruments).set_index("instId")
    xrp = merged.loc["XRP-USDT-SWAP"]
    assert xrp["pos"] == 108
    assert xrp["ctVal"] == 100
    assert xrp["notionalUsd"] == pytest.approx(20_844.0)
    assert xrp["notional"] == pytest.approx(20_844.0)
    assert xrp["lever"] == 5
    assert pd_isna(merged.loc["ETH-USDT-SWAP", "lever"])  # the lever "" fault
    assert pd_isna(merged.loc["DOGE-USDT-SWAP", "lever"])
    verdicts = classify_notional(merged["notionalUsd"], merged["notional"], merged["ctVal"])
    assert set(verdicts) == {"ok"}
    btc = merged.loc["BTC-USDT-SWAP"]
    assert btc["mgnMode"] == "isolated"
    assert btc["liqPx"] < btc["avgPx"]  # a long's liquidation price is below entry


def pd_isna(value: object) -> bool:
    import pandas as pd

    return bool(pd.isna(value))


def test_inverse_position_formulas() -> None:
    sc = scenario(name="inv", steps=[open_step("BTC-USD-SWAP", "3", "92000", mgnMode="isolated")])
    with SimServer(SimExchange(sc)) as server, client_for(server) as client:
        record = client.positions()[0]
    assert record["notionalUsd"] == "300"  # 3 x 100 USD, fixed
    assert record["ccy"] == "BTC"
    assert record["imr"] == ""  # isolated
    assert float(record["margin"]) == pytest.approx(300 / 92000 / 10)


def test_liquidation_history_and_fills_after_advance() -> None:
    with (
        SimServer(SimExchange(shipped("incident-2025-12-20"))) as server,
        client_for(server) as client,
    ):
        control(server, "advance", {"to": "+4m"})
        held = {r["instId"] for r in client.positions()}
        history = frames.parse_positions_history(client.positions_history().records)
        fills = frames.parse_fills(client.fills(inst_type="SWAP").records)
    assert "BTC-USDT-SWAP" not in held
    liquidation = history[history["instId"] == "BTC-USDT-SWAP"].iloc[0]
    assert liquidation["type"] == 3
    assert liquidation["direction"] == "long"
    assert 104 in fills[fills["instId"] == "BTC-USDT-SWAP"]["subType"].tolist()


def test_xrp_flap_is_one_poll_and_back_with_same_identity() -> None:
    with (
        SimServer(SimExchange(shipped("incident-2025-12-20"))) as server,
        client_for(server) as client,
    ):
        before = {r["instId"]: r for r in client.positions()}["XRP-USDT-SWAP"]
        control(server, "advance", {"to": "+2m27s"})
        assert "XRP-USDT-SWAP" not in {r["instId"] for r in client.positions()}
        control(server, "advance", {"to": "+2m58s"})
        after = {r["instId"]: r for r in client.positions()}["XRP-USDT-SWAP"]
    assert (after["posId"], after["cTime"]) == (before["posId"], before["cTime"])


def test_zero_size_record_after_a_full_close_when_asked_by_instid() -> None:
    with SimServer(SimExchange(shipped("cause-closed"))) as server, client_for(server) as client:
        control(server, "advance", {"to_end": True})
        assert client.positions() == []
        zero = client.positions(inst_ids=["XRP-USDT-SWAP"])
    parsed = frames.parse_positions(zero)
    assert parsed["is_open"].tolist() == [False]
    assert zero[0]["lever"] == ""


def test_reopened_position_gets_a_new_ctime() -> None:
    with SimServer(SimExchange(shipped("cause-reopened"))) as server, client_for(server) as client:
        first = client.positions()[0]
        control(server, "advance", {"to_end": True})
        second = client.positions()[0]
    assert second["cTime"] != first["cTime"]


def test_leverage_info_set_leverage_and_exchange_rules() -> None:
    with (
        SimServer(SimExchange(shipped("incident-2025-12-20"))) as server,
        client_for(server) as client,
    ):
        rows = client.leverage_info("cross", ["XRP-USDT-SWAP", "ETH-USDT-SWAP"])
        assert {(r["instId"], r["lever"]) for r in rows} == {
            ("XRP-USDT-SWAP", "5"),
            ("ETH-USDT-SWAP", "3"),
        }
        with pytest.raises(RejectedError) as too_high:
            client.set_leverage(lever="75", mgn_mode="cross", inst_id="XRP-USDT-SWAP")
        assert too_high.value.code == "59102"
        assert client.set_leverage(lever="8", mgn_mode="cross", inst_id="XRP-USDT-SWAP")
        assert client.leverage_info("cross", ["XRP-USDT-SWAP"])[0]["lever"] == "8"
        with pytest.raises(RejectedError) as failing:
            client.leverage_info("cross", ["DOGE-USDT-SWAP"])
        assert failing.value.code == "51000"


def test_position_tiers_cap_leverage_by_size() -> None:
    # 600 XRP contracts at 1.93 are 115,800 USD: the second tier, capped at 25x.
    sc = scenario(name="tier", steps=[open_step("XRP-USDT-SWAP", "600", "1.93")])
    with SimServer(SimExchange(sc)) as server, client_for(server) as client:
        tiers = client.position_tiers("SWAP", "cross", inst_family="XRP-USDT")
        second = next(t for t in tiers if t["tier"] == "2")
        assert float(second["minSz"]) <= 600 <= float(second["maxSz"])
        assert second["maxLever"] == "25"
        with pytest.raises(RejectedError) as caught:
            client.set_leverage(lever="40", mgn_mode="cross", inst_id="XRP-USDT-SWAP")
        assert caught.value.code == "59104"
        client.set_leverage(lever="25", mgn_mode="cross", inst_id="XRP-USDT-SWAP")


def test_pending_orders_block_leverage_changes() -> None:
    with (
        SimServer(SimExchange(shipped("pending-orders"))) as server,
        client_for(server) as client,
        pytest.raises(RejectedError) as caught,
    ):
        client.set_leverage(lever="3", mgn_mode="cross", inst_id="XRP-USDT-SWAP")
    assert caught.value.code == "59107"
    assert not is_retryable(caught.value)


def test_every_fault_is_observable_through_the_client() -> None:
    with SimServer(SimExchange(shipped("faults-showcase"))) as server:
        base = server.base_url
        account = AccountSettings(
            api_key=MAIN["api_key"],
            secret_key=MAIN["secret_key"],
            passphrase=MAIN["passphrase"],
            demo=True,
            base_url=base,
        )
        client = OkxClient(base_url=base, account_name="main", account=account, timeout_seconds=0.5)
        with client:
            for _ in range(2):
                with pytest.raises(TransientExchangeError) as outage:
                    client.positions()
                assert outage.value.code == "50001"
            assert client.positions()  # the third call succeeds
            control(server, "advance", {"to": "+30s"})
            with pytest.raises(RateLimitedError):
                client.positions()
            control(server, "advance", {"to": "+40s"})
            with pytest.raises(MalformedResponseError):
                client.positions()
            control(server, "advance", {"to": "+50s"})
            with pytest.raises(ExchangeTimeoutError):
                client.positions()
            control(server, "advance", {"to": "+60s"})
            with pytest.raises(MalformedResponseError, match="without a 'data' member"):
                client.positions()  # code "0" without data is not "no positions"
            control(server, "advance", {"to": "+75s"})
            stale = client.positions()
            control(server, "advance", {"to": "+85s"})
            fresh = client.positions()
    assert stale[0]["pos"] == "10"  # the snapshot from 20 s earlier, before the partial close
    assert fresh[0]["pos"] == "5"


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("secret_key", "wrong-secret", "50113"),
        ("api_key", "unknown-key", "50111"),
        ("passphrase", "wrong-pass", "50105"),
        ("demo", False, "50101"),
    ],
)
def test_credentials_are_checked(field: str, value: object, code: str) -> None:
    with (
        SimServer(SimExchange(scenario(name="auth"))) as server,
        client_for(server, **{field: value}) as client,
        pytest.raises(AuthError) as caught,
    ):
        client.positions()
    assert caught.value.code == code
    assert "wrong-secret" not in str(caught.value)


def test_stale_timestamp_is_50102_and_the_client_resyncs(sim: SimServer) -> None:
    account = AccountSettings(
        api_key=MAIN["api_key"],
        secret_key=MAIN["secret_key"],
        passphrase=MAIN["passphrase"],
        demo=True,
        base_url=sim.base_url,
    )
    # A machine clock a minute behind, and a client that has not synced yet.
    behind = OkxClient(
        base_url=sim.base_url,
        account_name="main",
        account=account,
        wall_clock_ms=lambda: time.time_ns() // 1_000_000 - 60_000,
        auto_sync_clock=False,
    )
    with behind:
        assert behind.positions() == []  # 50102, re-sync from public/time, success
        # Synced to the exchange's (simulated) clock: the records' own time line.
        local = time.time_ns() // 1_000_000 - 60_000
        assert local + behind.clock_offset_ms == pytest.approx(sim.exchange.now_ms(), abs=2_000)


def test_rate_limit_per_account_is_enforced_by_the_simulator(sim: SimServer) -> None:
    url = f"{sim.base_url}/api/v5/public/time"
    # At once, not one after another: on a busy machine twelve requests in a row can take
    # longer than the 2-second window. The window's arithmetic is tested below on a fake clock.
    with ThreadPoolExecutor(max_workers=20) as pool:
        codes = list(pool.map(lambda _: httpx.get(url).json()["code"], range(20)))
    assert codes.count("50011") >= 1, codes  # 10 per 2 s per address


def test_the_sliding_window_allows_its_limit_per_window_on_its_clock() -> None:
    from posguard.sim.limits import SlidingWindow

    now = [100.0]
    window = SlidingWindow(clock=lambda: now[0])
    assert [window.allow("ip", 10, 2.0) for _ in range(12)] == [True] * 10 + [False] * 2
    assert window.allow("other-ip", 10, 2.0)  # one key's budget is not another's
    now[0] += 1.9
    assert not window.allow("ip", 10, 2.0)
    now[0] += 0.2  # the first ten are older than the window now
    assert [window.allow("ip", 10, 2.0) for _ in range(11)] == [True] * 10 + [False]


def test_unknown_path_is_the_gateway_404(sim: SimServer) -> None:
    response = httpx.get(f"{sim.base_url}/api/v5/account/nothing")
    assert response.status_code == 404
    assert response.json()["code"] == 404


def test_candles_history_and_paging(sim: SimServer) -> None:
    with client_for(sim) as client:
        latest = client.candles("XRP-USDT-SWAP", limit=300, max_pages=10)
        older = client.candles("XRP-USDT-SWAP", limit=300, max_pages=12, history=True)
    assert len(latest) == 1440
    assert len(older) == 3000
    assert latest.complete  # a short page: all the simulator keeps
    assert older.complete
    frame = frames.parse_candles(latest.records, inst_id="XRP-USDT-SWAP")
    assert frame["ts"].is_monotonic_increasing
    assert frame["confirm"].iloc[-1] == 0  # the bar still forming


def test_too_little_candle_history() -> None:
    with (
        SimServer(SimExchange(shipped("incident-2025-12-20"))) as server,
        client_for(server) as client,
    ):
        assert len(client.candles("SUSHI-USDT-SWAP", limit=100)) == 3


def test_control_api_steps_and_wall_clock() -> None:
    sc = scenario(name="wall", clock="wall", steps=[open_step("XRP-USDT-SWAP", "1", "2")])
    with SimServer(SimExchange(sc)) as server, client_for(server) as client:
        assert len(client.positions()) == 1
        control(
            server,
            "step",
            {"action": "open", "instId": "ETH-USDT-SWAP", "sz": "2", "account": "main"},
        )
        assert len(client.positions()) == 2
        state = control(server, "state")
        started = state["now_ms"]
        time.sleep(0.05)
        assert control(server, "state")["now_ms"] > started
