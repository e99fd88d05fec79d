"""guard-account and reconcile-positions against the simulator's incident, end to end."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterName,
)

from flows import guard_account, reconcile_positions
from posguard.registry import Registry
from tasks.context import reload_settings, settings
from tests.flows.conftest import Incident
from tests.flows.helpers import advance, artifact_keys, events_named, now, seed_bot_writes
from tests.sim.conftest import MAIN

DESK = {**MAIN, "name": "desk", "api_key": "sim-desk-key", "secret_key": "sim-desk-secret"}


@contextmanager
def configured(config: Path) -> Iterator[None]:
    previous = os.environ.get("POSGUARD_CONFIG")
    os.environ["POSGUARD_CONFIG"] = str(config)
    reload_settings()
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("POSGUARD_CONFIG", None)
        else:
            os.environ["POSGUARD_CONFIG"] = previous
        reload_settings()


def test_guard_account_on_the_incident(incident: Incident) -> None:
    started = now()
    base = incident.server.base_url
    seed_bot_writes(base)
    first = guard_account("main")
    assert first["instruments"]["failing"] == 0
    reconcile = first["reconcile"]
    assert reconcile["positions"] == 5
    assert reconcile["failing_expectation_rows"] >= 1
    plan = {row["instId"]: row for row in first["leverage"]["plan"]}
    assert plan["SUSHI-USDT-SWAP"]["volatility"] is None
    assert plan["DOGE-USDT-SWAP"]["action"] == "skip"

    cycles = {}
    for moment in ("+2m27s", "+2m58s", "+4m", "+4m30s"):
        advance(base, moment)
        cycles[moment] = [
            (e["instId"], e["kind"], e["status"], e["cause"])
            for e in reconcile_positions("main")["drift_events"]
        ]
    assert cycles["+2m27s"] == [("XRP-USDT-SWAP", "DRIFT_REMOVE", "suspected", "unknown")]
    assert cycles["+2m58s"] == [("XRP-USDT-SWAP", "DRIFT_REMOVE", "resolved", "spurious")]
    assert cycles["+4m"] == [("BTC-USDT-SWAP", "DRIFT_REMOVE", "confirmed", "liquidated")]
    assert cycles["+4m30s"] == []

    with Registry(settings().resolved_registry_url) as registry:
        stored = registry.events("main")
    xrp = [(e["status"], e["cause"]) for e in stored if e["inst_id"] == "XRP-USDT-SWAP"]
    assert ("confirmed", "unknown") not in xrp  # the flap never became a confirmed removal
    assert len({e["id"] for e in stored}) == len(stored)

    keys = artifact_keys()
    for key in (
        "positions-main",
        "expectations-positions-main",
        "failed-expectations-positions-main",
        "drift-main",
        "leverage-plan-main",
        "expectations-instruments-main",
    ):
        assert key in keys

    failed = events_named("posguard.expectation.failed", started)
    assert any(
        e.payload["instId"] == "DOGE-USDT-SWAP" and e.payload["expectation"] == "lever > 0"
        for e in failed
    )
    # A standing failure alerts once, not once per run (four runs validated it).
    doge_alerts = [
        e
        for e in failed
        if e.payload["instId"] == "DOGE-USDT-SWAP" and e.payload["expectation"] == "lever > 0"
    ]
    assert len(doge_alerts) == 1
    doge = doge_alerts[0]
    roles = {r.role: r.id for r in doge.related}
    assert roles["account"] == "posguard.account.main"
    assert roles["instrument"] == "posguard.instrument.DOGE-USDT-SWAP"
    confirmed = events_named("posguard.drift.confirmed", started)
    assert [(e.payload["instId"], e.payload["cause"]) for e in confirmed] == [
        ("BTC-USDT-SWAP", "liquidated")
    ]


def test_the_fan_outs_guard_runs_plan_leverage_and_instruments_only_when_due(
    incident: Incident,
) -> None:
    """Team mode with a run per account: every run reconciles; instruments and leverage run
    as their schedules say (claimed in the registry, so across the team's workers), not in
    every run. On demand (the default) all three run."""
    seed_bot_writes(incident.server.base_url)
    first = guard_account("main", when_due=True)
    assert first["instruments"]["failing"] == 0
    assert first["leverage"]["plan"]
    second = guard_account("main", when_due=True)
    assert second["reconcile"]["positions"] == 5
    assert second["instruments"] == "not due"
    assert second["leverage"] == "not due"
    on_demand = guard_account("main")
    assert on_demand["leverage"]["plan"]


def test_instruments_checked_by_hand_are_not_due_again_for_the_fan_out(
    incident: Incident,
) -> None:
    """A run by hand checks the instruments as a due one would: the team's next run does not
    check them again at once. Its leverage plan (a dry run here) leaves the schedule's due."""
    seed_bot_writes(incident.server.base_url)
    by_hand = guard_account("main")
    assert by_hand["instruments"]["failing"] == 0
    after = guard_account("main", when_due=True)
    assert after["instruments"] == "not due"
    assert after["leverage"]["plan"]


def test_flow_runs_are_named_after_the_account(incident: Incident) -> None:
    reconcile_positions("main", run_expectations=False)
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(name=FlowRunFilterName(like_="main-")), limit=5
        )
    assert runs
    assert all(run.name.startswith("main-2") for run in runs)
