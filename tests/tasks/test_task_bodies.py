"""The task bodies called as plain functions (`task.fn(...)`), with fakes at the seams only:
the OKX simulator serving the 2025-12-20 incident, and a real SQLite registry file.

What each task returns is asserted value by value: the specs and positions fetched, the
failure a validation names, the drift a reconcile cycle decides, and what the registry
keeps of runs and alerted failures.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import pandas as pd

from expectations.report import FailingRow
from posguard.frames import parse_leverage_info, parse_positions
from posguard.leverage import resolve_leverage
from posguard.registry import Registry
from posguard.settings import Settings
from posguard.sim import SimExchange, SimServer
from tasks.fetch import fetch_account_state, fetch_instruments
from tasks.reconcile import reconcile_account
from tasks.runs import previous_failures, record_run, remember_failures
from tasks.validate import validate_positions
from tests.flows.conftest import write_settings
from tests.flows.helpers import advance, seed_bot_writes
from tests.sim.conftest import shipped
from tests.tasks.conftest import INCIDENT, INCIDENT_START_MS, configured

DOGE_LEVERAGE_FAILURE = (
    "leverage-info failed for DOGE-USDT-SWAP (cross): 51000 Parameter instId error"
)


def lever(value: Any) -> float | None:
    """A resolved lever as a number, None when it stayed unknown (NaN in the frame)."""
    return None if value is None or math.isnan(value) else float(value)


# -- fetch ----------------------------------------------------------------------------------


def test_fetch_instruments_reads_the_contract_specs_of_the_environment(
    prefect_server: None, main_account: Settings
) -> None:
    """The specs come from the account's environment as numbers: XRP-USDT-SWAP is 100 XRP per
    contract, BTC-USDT-SWAP 0.01 BTC, DOGE-USDT-SWAP 1000 DOGE, all linear and ctMult 1."""
    frame = fetch_instruments.fn("main")
    specs = frame.set_index("instId")
    assert set(frame["instType"]) == {"SWAP"}
    assert specs.index.is_unique
    assert specs.loc["XRP-USDT-SWAP", ["ctVal", "ctMult", "ctType", "ctValCcy"]].tolist() == [
        100.0,
        1.0,
        "linear",
        "XRP",
    ]
    assert specs.loc["XRP-USDT-SWAP", "lotSz"] == 0.1
    assert specs.loc["XRP-USDT-SWAP", "maxLever"] == 50.0
    assert specs.loc["BTC-USDT-SWAP", "ctVal"] == 0.01
    assert specs.loc["DOGE-USDT-SWAP", "ctVal"] == 1000.0
    assert frame["ctVal"].dtype == "float64"


def test_fetch_account_state_reads_the_open_positions_with_their_leverage(
    prefect_server: None, main_account: Settings
) -> None:
    """The incident's five open positions; ETH's empty lever resolved from leverage-info
    (3x), DOGE's left unknown with the refusal as its reason; the opening fills as evidence,
    no positions-history yet, and both read completely."""
    state = fetch_account_state.fn("main")
    positions = state.snapshot.positions
    assert positions["is_open"].all()
    found = sorted(
        (r.instId, r.mgnMode, r.posSide, r.pos, lever(r.lever), r.lever_source)
        for r in positions.itertuples()
    )
    assert found == [
        ("BTC-USDT-SWAP", "isolated", "net", 5.0, 20.0, "position"),
        ("DOGE-USDT-SWAP", "cross", "net", 30.0, None, "unknown"),
        ("ETH-USDT-SWAP", "cross", "net", 12.0, 3.0, "leverage_info"),
        ("SUSHI-USDT-SWAP", "cross", "net", 400.0, 2.0, "position"),
        ("XRP-USDT-SWAP", "cross", "net", 108.0, 5.0, "position"),
    ]
    doge = positions.set_index("instId").loc["DOGE-USDT-SWAP"]
    assert doge["lever_reason"] == DOGE_LEVERAGE_FAILURE
    assert state.snapshot.leverage_failures == {("DOGE-USDT-SWAP", "cross"): DOGE_LEVERAGE_FAILURE}
    xrp = positions.set_index("instId").loc["XRP-USDT-SWAP"]
    assert (xrp["markPx"], xrp["notionalUsd"]) == (1.93, 20844.0)  # 108 x 100 XRP x 1.93
    assert state.snapshot.account == "main"
    assert state.snapshot.config.pos_mode == "net_mode"
    # OKX time when the positions request was sent: the incident's first seconds.
    assert INCIDENT_START_MS <= state.snapshot.started_ms < INCIDENT_START_MS + 60_000
    # The same moment on the registry's clock (the host's, for SQLite), for the race guard.
    registry_ms = state.snapshot.registry_started_ms
    assert registry_ms is not None
    assert abs(registry_ms - time.time() * 1000) < 60_000
    assert sorted(zip(state.fills["instId"], state.fills["fillSz"], strict=True)) == [
        ("BTC-USDT-SWAP", 5.0),
        ("DOGE-USDT-SWAP", 30.0),
        ("ETH-USDT-SWAP", 12.0),
        ("SUSHI-USDT-SWAP", 400.0),
        ("XRP-USDT-SWAP", 108.0),
    ]
    assert state.history.empty
    assert (state.history_covers_from_ms, state.fills_covers_from_ms) == (None, None)


# -- validate -------------------------------------------------------------------------------


def okx_position(inst_id: str, pos: str, px: str, lever: str, notional_usd: str) -> dict[str, str]:
    """One cross net position as OKX's /account/positions sends it."""
    return {
        "instType": "SWAP",
        "instId": inst_id,
        "mgnMode": "cross",
        "posSide": "net",
        "pos": pos,
        "avgPx": px,
        "markPx": px,
        "lever": lever,
        "notionalUsd": notional_usd,
        "liqPx": "",
        "posId": f"id-{inst_id}",
        "cTime": str(INCIDENT_START_MS),
        "uTime": str(INCIDENT_START_MS),
    }


RECORDS = [
    okx_position("XRP-USDT-SWAP", "108", "1.93", "5", "20844"),
    okx_position("DOGE-USDT-SWAP", "30", "0.15", "", "4500"),  # 30 x 1000 DOGE x 0.15
]


def test_validate_positions_fails_lever_above_zero_for_an_unresolvable_empty_lever(
    main_account: Settings, instruments: pd.DataFrame
) -> None:
    """DOGE's lever is "" and leverage-info has no row for it: "lever > 0" fails naming DOGE
    (and only DOGE) with the reason, every other rule passes, and the failure's Data Docs
    page is built under the settings' state_dir."""
    positions = resolve_leverage(parse_positions(RECORDS), parse_leverage_info([]))
    report = validate_positions.fn(positions, instruments, "net_mode")
    assert not report.success
    assert [r.expectation for r in report.failed] == ["lever > 0"]
    assert report.failed[0].failing == [
        FailingRow(
            "DOGE-USDT-SWAP",
            "net",
            "cross",
            'lever is unknown (lever is "" and leverage-info has no row for this instId '
            "and mgnMode)",
        )
    ]
    assert report.failure_keys() == {("lever > 0", "DOGE-USDT-SWAP", "net", "cross")}
    assert report.data_docs is not None
    page = Path(unquote(urlparse(report.data_docs).path))
    assert page.is_relative_to(main_account.state_dir / "data-docs")
    assert page.is_file()
    assert "DOGE-USDT-SWAP" in page.read_text(encoding="utf-8")


def test_validate_positions_passes_once_leverage_info_resolves_the_lever(
    main_account: Settings, instruments: pd.DataFrame
) -> None:
    """The same positions with leverage-info answering 4x for DOGE: every rule passes, and
    no Data Docs are built (they cost a second run, spent only on failures)."""
    leverage = parse_leverage_info(
        [{"instId": "DOGE-USDT-SWAP", "mgnMode": "cross", "posSide": "net", "lever": "4"}]
    )
    positions = resolve_leverage(parse_positions(RECORDS), leverage)
    assert positions["lever_source"].tolist() == ["position", "leverage_info"]
    report = validate_positions.fn(positions, instruments, "net_mode")
    assert report.success, [r.to_dict() for r in report.failed]
    assert report.failed == []
    assert "lever > 0" in [r.expectation for r in report.results]
    assert report.data_docs is None


# -- reconcile ------------------------------------------------------------------------------


def test_reconcile_account_suspects_a_registry_row_the_exchange_no_longer_lists(
    prefect_server: None, tmp_path: Path
) -> None:
    """The bot's rows agree with the exchange at +0s: no drift. At +2m27s the positions
    answer lacks XRP-USDT-SWAP while the registry still holds 108 contracts of it: a
    suspected DRIFT_REMOVE, cause unknown (no close in history or fills), stored once in the
    registry with the cycle's run id."""
    with (
        SimServer(SimExchange(shipped(INCIDENT))) as server,
        configured(write_settings(tmp_path, server.base_url)) as loaded,
    ):
        assert seed_bot_writes(server.base_url) == 5
        instruments = fetch_instruments.fn("main")
        calm = reconcile_account.fn(
            "main", fetch_account_state.fn("main"), instruments, run_id="cycle-0"
        )
        assert (calm.events, calm.stored, calm.skipped) == ([], [], None)

        advance(server.base_url, "+2m27s")
        state = fetch_account_state.fn("main")
        assert "XRP-USDT-SWAP" not in set(state.snapshot.positions["instId"])
        outcome = reconcile_account.fn("main", state, instruments, run_id="cycle-1")
        with Registry(loaded.resolved_registry_url) as registry:
            stored = registry.events("main")

    assert outcome.skipped is None
    assert [
        (e.inst_id, e.pos_side, e.mgn_mode, e.kind, e.status, e.cause) for e in outcome.events
    ] == [("XRP-USDT-SWAP", "net", "cross", "DRIFT_REMOVE", "suspected", "unknown")]
    assert outcome.stored == outcome.events
    event = outcome.events[0].to_json()
    assert event["evidence"]["exchange"] is None
    assert (event["evidence"]["registry"]["pos"], event["evidence"]["registry"]["lever"]) == (
        "108",
        "5",
    )
    assert [
        (row["id"], row["inst_id"], row["kind"], row["status"], row["cause"], row["run_id"])
        for row in stored
    ] == [(event["id"], "XRP-USDT-SWAP", "DRIFT_REMOVE", "suspected", "unknown", "cycle-1")]


# -- runs and alerted failures --------------------------------------------------------------


def test_record_run_keeps_the_run_and_its_summary_in_the_registry(
    registry_only: Settings,
) -> None:
    """A finished run is one registry row with its flow, status and summary (JSON); a run
    without an id (outside a flow run) records nothing."""
    summary = {"account": "main", "positions": 4, "alerts": 1, "skipped": None}
    record_run.fn("run-1", "main", "reconcile-positions", "completed", summary)
    record_run.fn(None, "main", "reconcile-positions", "completed", {"positions": 9})
    with Registry(registry_only.resolved_registry_url) as registry:
        rows = registry.runs("main")
    assert [(r["id"], r["account"], r["flow"], r["status"]) for r in rows] == [
        ("run-1", "main", "reconcile-positions", "completed")
    ]
    assert json.loads(rows[0]["summary"]) == summary
    assert rows[0]["started_at_ms"] <= rows[0]["finished_at_ms"]


def test_alerted_failures_round_trip_through_the_registry(registry_only: Settings) -> None:
    """What was alerted on comes back as it was saved, per account; saving replaces it
    (a failure that cleared is forgotten, so it alerts again if it comes back)."""
    doge = ("lever > 0", "DOGE-USDT-SWAP", "net", "cross")
    xrp = ("notional consistent with ctVal", "XRP-USDT-SWAP", "net", "cross")
    assert previous_failures.fn("main") == set()

    remember_failures.fn("main", {doge, xrp})
    assert previous_failures.fn("main") == {doge, xrp}
    assert previous_failures.fn("desk") == set()

    remember_failures.fn("main", {doge})
    assert previous_failures.fn("main") == {doge}
    remember_failures.fn("main", set())
    assert previous_failures.fn("main") == set()
