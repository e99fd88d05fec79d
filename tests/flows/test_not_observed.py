"""A code "0" answer without data is "not observed" through the whole reconcile flow."""

from __future__ import annotations

import json
from pathlib import Path

from flows import reconcile_positions
from posguard.registry import Registry
from posguard.sim import SimExchange
from tasks.context import settings
from tests.flows.conftest import flows_against
from tests.flows.helpers import advance
from tests.sim.conftest import scenario

OPEN = [{"at": "+0s", "action": "open", "instId": "XRP-USDT-SWAP", "sz": "10", "px": "1.93"}]
START_MS = 1766188800000  # 2025-12-20T00:00:00Z, the scenarios' default start


def test_answers_without_data_conclude_nothing_even_under_heal(
    tmp_path: Path, prefect_server: None
) -> None:
    # Read as "no positions", two such answers would confirm a DRIFT_REMOVE and heal the
    # registry to 0; they are failed reads, so nothing is decided and nothing is written.
    faults = [{"endpoint": "positions", "kind": "no_data", "times": 2}]  # data absent
    exchange = SimExchange(scenario(name="no-data", steps=OPEN, faults=faults))
    with flows_against(exchange, tmp_path) as running:
        with Registry(settings().resolved_registry_url) as registry:
            registry.write(
                "main",
                "XRP-USDT-SWAP",
                pos="10",
                avg_px="1.93",
                lever="10",
                at_ms=START_MS - 60_000,
            )
        states = []
        for moment in ("+30s", "+60s", "+90s"):
            advance(running.server.base_url, moment)
            states.append(
                reconcile_positions(
                    "main", policy="heal", run_expectations=False, return_state=True
                )
            )
        with Registry(settings().resolved_registry_url) as registry:
            events = registry.events("main")
            rows = registry.rows("main")
            runs = registry.runs("main")
    first, second, third = states
    for failed in (first, second):
        assert failed.is_failed()
        assert "not observed" in failed.message
        assert "/api/v5/account/positions" in failed.message
        assert "without a 'data' member" in failed.message
    assert third.is_completed()  # the fault is over: the account is observed again
    assert events == []
    assert [(r["inst_id"], r["pos"]) for r in rows] == [("XRP-USDT-SWAP", "10")]
    # Each run is recorded, the silent ones with why: `posguard status` reads them.
    assert [r["status"] for r in runs] == ["not_observed", "not_observed", "completed"]
    assert "without a 'data' member" in json.loads(runs[0]["summary"])["not_observed"]
    seen = json.loads(runs[2]["summary"])["open_positions"]
    assert [(p["instId"], p["pos"], p["lever_source"]) for p in seen] == [
        ("XRP-USDT-SWAP", 10.0, "position")
    ]
