"""The fetch stage says when positions-history and fills were cut at the client's page limit."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from posguard.sim import SimExchange
from tasks.fetch import AccountState, fetch_account_state
from tests.flows.conftest import flows_against
from tests.flows.helpers import advance
from tests.sim.conftest import scenario

START_MS = 1766188800000  # 2025-12-20T00:00:00Z, the scenarios' default start


def round_trips(count: int) -> list[dict[str, Any]]:
    """`count` opens and closes of XRP, one second apart: a close is a history record."""
    steps: list[dict[str, Any]] = []
    for i in range(count):
        steps.append({"at": f"+{2 * i}s", "action": "open", "instId": "XRP-USDT-SWAP", "sz": "1"})
        steps.append({"at": f"+{2 * i + 1}s", "action": "close", "instId": "XRP-USDT-SWAP"})
    return steps


def state_after(tmp_path: Path, count: int) -> AccountState:
    exchange = SimExchange(scenario(name="busy-bot", steps=round_trips(count)))
    with flows_against(exchange, tmp_path) as running:
        advance(running.server.base_url, f"+{2 * count + 10}s")
        # The task's body, outside a flow run.
        return fetch_account_state.fn("main")


def test_a_busy_hour_is_partial_evidence_with_its_horizon(
    tmp_path: Path, prefect_server: None
) -> None:
    # 1,050 closes and 2,100 fills within the lookback: more than 10 pages of 100 each.
    state = state_after(tmp_path, 1050)
    assert len(state.history) == 1000
    assert len(state.fills) == 1000
    oldest_close = int(state.history["uTime"].min())
    oldest_fill = int(state.fills["ts"].min())
    assert state.history_covers_from_ms == oldest_close
    assert state.fills_covers_from_ms == oldest_fill
    # The 1,000 newest closes: close i happens at start + (2i + 1) s.
    assert oldest_close == START_MS + (2 * 50 + 1) * 1000


def test_a_quiet_hour_is_complete_evidence(tmp_path: Path, prefect_server: None) -> None:
    state = state_after(tmp_path, 40)
    assert len(state.history) == 40
    assert len(state.fills) == 80
    assert state.history_covers_from_ms is None
    assert state.fills_covers_from_ms is None
