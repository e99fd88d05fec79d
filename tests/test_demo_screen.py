"""The demo's live screen, rendered to text from a fixed input."""

from __future__ import annotations

import io
import re
from typing import Any

from rich.console import Console

from deployments.screen import ScreenData, demo_screen


def rendered(data: ScreenData) -> str:
    console = Console(record=True, width=110, color_system=None, file=io.StringIO())
    console.print(demo_screen(data))
    return console.export_text()


def account() -> dict[str, Any]:
    """An account as posguard.status reports it, after the incident's first findings."""
    return {
        "account": "main",
        "last_cycle": {
            "run": {
                "id": "run-7",
                "status": "completed",
                "started_at": "2025-12-20T00:03:00.000Z",
                "finished_at": "2025-12-20T00:03:01.000Z",
            },
            "observed": True,
            "why": None,
            "last_observed_snapshot": "2025-12-20T00:03:00.000Z",
            "memory_saved_at": "2025-12-20T00:03:01.000Z",
        },
        "positions": {
            "source": "exchange",
            "run": "run-7",
            "at": "2025-12-20T00:03:00.000Z",
            "rows": [
                {
                    "instId": "BTC-USDT-SWAP",
                    "posSide": "net",
                    "mgnMode": "cross",
                    "pos": 50.0,
                    "notional": 46000.0,
                    "lever": None,
                    "lever_source": "unknown",
                },
                {
                    "instId": "XRP-USDT-SWAP",
                    "posSide": "net",
                    "mgnMode": "cross",
                    "pos": 1.08,
                    "notional": 208.44,
                    "lever": 5.0,
                    "lever_source": "position",
                },
            ],
        },
        "discrepancies": [],
        "expectations": {
            "run": "run-7",
            "at": "2025-12-20T00:03:00.000Z",
            "evaluated": 6,
            "failing": [
                {
                    "expectation": "expect_lever_positive",
                    "instId": "BTC-USDT-SWAP",
                    "posSide": "net",
                    "mgnMode": "cross",
                    "detail": "lever unknown",
                }
            ],
        },
        "alerts": [],
        "alerts_total": 0,
        "leverage_plan": {
            "run": "run-8",
            "at": "2025-12-20T00:05:00.000Z",
            "rows": [
                {
                    "instId": "XRP-USDT-SWAP",
                    "posSide": "net",
                    "mgnMode": "cross",
                    "lever": 5.0,
                    "lever_source": "position",
                    "target": 3.2,
                    "upper": 20.0,
                    "bound": "config",
                    "action": "decrease",
                    "reason": "vol 0.078",
                }
            ],
        },
        "leverage_change": None,
    }


EVENTS = [
    {
        "at": "2025-12-20T00:02:27.000Z",
        "instId": "XRP-USDT-SWAP",
        "kind": "DRIFT_REMOVE",
        "status": "suspected",
        "cause": "unknown",
    },
    {
        "at": "2025-12-20T00:02:58.000Z",
        "instId": "XRP-USDT-SWAP",
        "kind": "DRIFT_REMOVE",
        "status": "resolved",
        "cause": "spurious",
    },
]


def test_the_screen_shows_each_section_of_an_account() -> None:
    text = rendered(
        ScreenData(
            at="2025-12-20T00:05:00.000Z",
            ui="http://127.0.0.1:4200",
            accounts=[account()],
            events={"main": EVENTS},
            alerts=[{"subject": "posguard: expect_lever_positive failed for main BTC-USDT-SWAP"}],
        )
    )
    assert "Prefect UI http://127.0.0.1:4200" in text
    assert "account main  last cycle 2025-12-20T00:03:00.000Z completed" in text
    assert "  last exchange snapshot concluded on: 2025-12-20T00:03:00.000Z\n" in text
    assert re.search(r"BTC-USDT-SWAP\s+net\s+50\s+46,000\.00\s+N/A\s+unknown", text)
    assert re.search(r"XRP-USDT-SWAP\s+net\s+1\.08\s+208\.44\s+5\s+position", text)
    assert re.search(r"expect_lever_positive\s+BTC-USDT-SWAP", text)
    assert re.search(r"00:02:27\s+XRP-USDT-SWAP\s+DRIFT_REMOVE\s+suspected\s+unknown", text)
    assert re.search(r"00:02:58\s+XRP-USDT-SWAP\s+DRIFT_REMOVE\s+resolved\s+spurious", text)
    assert re.search(r"XRP-USDT-SWAP\s+5 \(position\)\s+3\.2\s+20\s+decrease", text)
    assert "alerts received (1)" in text
    assert "expect_lever_positive failed for main BTC-USDT-SWAP" in text


def test_nothing_yet_and_a_failed_read_are_lines_not_gaps() -> None:
    quiet = account()
    quiet["last_cycle"]["run"] = None
    quiet["positions"] = {"source": "registry", "run": None, "at": None, "rows": []}
    quiet["expectations"] = None
    quiet["leverage_plan"] = None
    text = rendered(ScreenData("2025-12-20T00:00:05.000Z", "http://ui", [quiet]))
    assert "no reconcile run yet" in text
    assert "not evaluated yet" in text
    assert "no plan yet" in text
    assert "alerts received (0)" in text
    failed = rendered(
        ScreenData(
            "2025-12-20T00:00:05.000Z",
            "http://ui",
            [],
            problems=["registry not read: OperationalError: database is locked"],
        )
    )
    assert "! registry not read: OperationalError: database is locked" in failed


def test_an_unobserved_cycle_says_why() -> None:
    silent = account()
    silent["last_cycle"].update(observed=False, why="GET /api/v5/account/positions: timeout")
    text = rendered(ScreenData("2025-12-20T00:05:00.000Z", "http://ui", [silent]))
    assert "NOT observed: GET /api/v5/account/positions: timeout" in text
