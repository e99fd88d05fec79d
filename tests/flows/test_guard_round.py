"""guard-round: several accounts in one flow run, each account's outcome its own."""

from __future__ import annotations

import json
from pathlib import Path

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterId,
    TaskRunFilter,
    TaskRunFilterFlowRunId,
)

from flows.round import guard_round
from posguard.registry import Registry
from posguard.sim import SimExchange, SimServer
from tests.flows.helpers import events_named, now
from tests.flows.test_artifact_contents import artifacts_of
from tests.flows.test_guard_flow import DESK, configured
from tests.sim.conftest import MAIN, scenario


def test_a_round_settles_every_account_and_keeps_a_failure_its_own(
    tmp_path: Path, prefect_server: None
) -> None:
    started = now()
    # main's XRP is closed on the exchange while the bot still believes in it; desk's is open.
    steps = [
        {"at": "+0s", "action": "open", "instId": "XRP-USDT-SWAP", "sz": "10", "px": "1.93"},
        {"at": "+1s", "action": "close", "instId": "XRP-USDT-SWAP"},
        {
            "at": "+0s",
            "action": "open",
            "account": "desk",
            "instId": "XRP-USDT-SWAP",
            "sz": "20",
            "px": "1.93",
        },
    ]
    exchange = SimExchange(scenario(name="round", accounts=[MAIN, DESK], steps=steps))
    exchange.advance(seconds=10)
    registry_url = f"sqlite:///{tmp_path}/r.db"
    with SimServer(exchange) as server:
        config = tmp_path / "posguard.toml"
        lines = [f'state_dir = "{tmp_path / "state"}"', f'registry_url = "{registry_url}"']
        # The bot's writes below are seconds old: past no grace period, so judged at once.
        lines += ["[drift]", "grace_seconds = 0"]
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
        # The bot wrote a minute before the scenario began, on the exchange's timeline (the
        # simulator's clock stands still while the registry's runs: without this, how long
        # the test took to get here would decide whether the close came after the write).
        before = exchange.start_ms - 60_000
        with Registry(registry_url, clock=lambda: before) as registry:
            registry.write("main", "XRP-USDT-SWAP", pos="10", at_ms=before)
            registry.write("desk", "XRP-USDT-SWAP", pos="20", at_ms=before)
        with Registry(registry_url) as registry:
            # Another worker of the team planned desk's leverage a moment ago: not due here.
            assert registry.claim_due("leverage", ["desk"], 3600) == {"desk"}
        with configured(config):
            state = guard_round(["main", "broken", "desk"], return_state=True)
    assert state.is_failed()
    assert state.message is not None
    assert "broken" in state.message
    assert "main" not in state.message
    assert "desk" not in state.message
    assert "not-the-secret" not in state.message
    round_id = state.state_details.flow_run_id
    with get_client(sync_client=True) as client:
        (run,) = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[round_id]))
        )
        tasks = client.read_task_runs(
            task_run_filter=TaskRunFilter(flow_run_id=TaskRunFilterFlowRunId(any_=[round_id])),
            limit=100,
        )
    assert run.name.startswith("main..desk-")
    by_name = {t.name: t.state.name for t in tasks if t.state is not None}
    # Each observed account is settled in a task run of its own, named after it; the one
    # that could not be read is not settled (nothing is concluded from a failed read).
    assert by_name["settle-main"] == "Completed"
    assert by_name["settle-desk"] == "Completed"
    assert "settle-broken" not in by_name
    assert sum(1 for name in by_name if name.startswith("observe-accounts")) == 1
    # One GX run for the round, not one per account.
    assert sum(1 for name in by_name if name.startswith("validate-round")) == 1
    with Registry(registry_url) as registry:
        events = registry.events()
        runs = registry.runs()
    assert [(e["account"], e["status"], e["cause"]) for e in events] == [
        ("main", "confirmed", "closed")
    ]
    confirmed = events_named("posguard.drift.confirmed", started)
    assert {e.payload["account"] for e in confirmed} == {"main"}
    artifacts = artifacts_of(round_id)
    # Artifacts where there is something to read: the round's table, main's drift, and the
    # leverage plan that was due (main's: desk's was planned elsewhere within the period);
    # no per-account positions tables.
    assert set(artifacts) == {
        "round-main",
        "drift-main",
        "leverage-plan-main",
        "expectations-instruments-main",
    }
    rows = {row["account"]: row for row in json.loads(artifacts["round-main"].data)}
    assert list(rows) == ["main", "broken", "desk"]
    assert rows["broken"]["state"] == "not observed"
    assert "50113" in rows["broken"]["detail"]
    assert rows["main"]["state"] == "ok"
    assert rows["main"]["drift events"] == "XRP-USDT-SWAP confirmed closed"
    assert rows["desk"]["open positions"] == 1
    # What `posguard status` reads: a run record per account, the broken one not observed.
    recorded = {(r["account"], r["flow"]): r["status"] for r in runs}
    assert recorded[("main", "reconcile-positions")] == "completed"
    assert recorded[("desk", "reconcile-positions")] == "completed"
    assert recorded[("broken", "reconcile-positions")] == "not_observed"
    # The leverage plan was due for main only, however many workers run rounds.
    assert recorded[("main", "recalculate-leverage")] == "completed"
    assert ("desk", "recalculate-leverage") not in recorded
