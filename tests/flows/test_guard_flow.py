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
    FlowRunFilterParentFlowRunId,
)

from flows import guard_account, guard_batch, reconcile_positions
from posguard.registry import Registry
from posguard.sim import SimExchange, SimServer
from tasks.context import reload_settings, settings
from tests.flows.conftest import Incident
from tests.flows.helpers import advance, artifact_keys, events_named, now, seed_bot_writes
from tests.sim.conftest import MAIN, scenario

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


def test_flow_runs_are_named_after_the_account(incident: Incident) -> None:
    reconcile_positions("main", run_expectations=False)
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(name=FlowRunFilterName(like_="main-")), limit=5
        )
    assert runs
    assert all(run.name.startswith("main-2") for run in runs)


def test_a_batch_runs_every_account_and_keeps_a_failure_its_own(
    tmp_path: Path, prefect_server: None
) -> None:
    steps = [
        {"at": "+0s", "action": "open", "instId": "XRP-USDT-SWAP", "sz": "10", "px": "1.93"},
        {
            "at": "+0s",
            "action": "open",
            "account": "desk",
            "instId": "XRP-USDT-SWAP",
            "sz": "20",
            "px": "1.93",
        },
    ]
    exchange = SimExchange(scenario(name="batch", accounts=[MAIN, DESK], steps=steps))
    with SimServer(exchange) as server:
        config = tmp_path / "posguard.toml"
        lines = [
            f'state_dir = "{tmp_path / "state"}"',
            f'registry_url = "sqlite:///{tmp_path}/r.db"',
        ]
        for name, spec, secret in (
            ("main", MAIN, MAIN["secret_key"]),
            ("broken", MAIN, "not-the-secret"),  # a wrong secret: 50113, not retried
            ("desk", DESK, DESK["secret_key"]),
        ):
            lines += [
                f"[accounts.{name}]",
                f'api_key = "{spec["api_key"]}"',
                f'secret_key = "{secret}"',
                f'passphrase = "{spec["passphrase"]}"',
                "demo = true",
                f'base_url = "{server.base_url}"',
            ]
        config.write_text("\n".join(lines) + "\n")
        with configured(config):
            state = guard_batch(
                ["main", "broken", "desk"], run_expectations=False, return_state=True
            )
    assert state.is_failed()
    assert "broken" in state.message
    assert "main" not in state.message
    assert "desk" not in state.message
    assert "not-the-secret" not in state.message
    with get_client(sync_client=True) as client:
        children = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                parent_flow_run_id=FlowRunFilterParentFlowRunId(
                    any_=[state.state_details.flow_run_id]
                )
            )
        )
    outcome = {c.parameters["account"]: c.state.name for c in children}
    # The account after the broken one still ran: a failure stays its own.
    assert outcome == {"main": "Completed", "broken": "Failed", "desk": "Completed"}
