"""The reconcile deployment's trigger: a `posguard.position.changed` event on an account starts
that account's reconcile run (deployments/build.py), served warm; the same event sent twice
(a notice published again) starts one run, another account's event none."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId
from prefect.client.schemas.objects import FlowRun
from prefect.events import emit_event

from deployments.build import deployments_for, trigger_name
from deployments.warm import WarmServer
from deployments.watch import event_of
from flows import reconcile_positions
from posguard.watch import Change, Notice
from tasks.context import reload_settings, settings
from tests.flows.conftest import Incident
from tests.flows.helpers import serving

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]


@pytest.fixture
def served(incident: Incident) -> Iterator[Any]:
    (reconcile,) = [d for d in deployments_for(settings()) if d.name == "main-on-change"]
    assert reconcile.schedules == []  # the scheduled deployment stays apart
    server = WarmServer([reconcile], [reconcile_positions], limit=2, poll_seconds=0.2)
    with serving(server):
        yield server


def notice(account: str, after: str = "0") -> Notice:
    change = Change(
        "BTC-USDT-SWAP", "net", "cross", "2", after, "77", "1766188800000", 1766189040000,
        "event_update", "10",
    )  # fmt: skip
    return Notice(account, (change,), {change.key: "liquidation"})


def runs_of(deployment_name: str) -> list[FlowRun]:
    with get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name(deployment_name)
        return list(
            client.read_flow_runs(
                deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment.id]))
            )
        )


def test_a_change_event_starts_the_accounts_reconcile_run_once(served: WarmServer) -> None:
    with get_client(sync_client=True) as client:
        automations = client.read_automations_by_name(trigger_name("main"))
    assert len(automations) == 1
    assert automations[0].trigger.expect == {"posguard.position.changed"}  # type: ignore[union-attr]

    emit_event(**event_of(notice("someone-else")))
    fields = event_of(notice("main"))
    assert fields["resource"]["prefect.resource.id"] == "posguard.account.main"
    assert fields["payload"]["causes"] == {"BTC-USDT-SWAP net cross": "liquidation"}
    emit_event(**fields)
    emit_event(**fields)  # the same notice again: the same event id

    deadline = time.monotonic() + 90
    runs: list[FlowRun] = []
    while time.monotonic() < deadline:
        runs = runs_of("reconcile-positions/main-on-change")
        if runs and all(r.state is not None and r.state.is_final() for r in runs):
            break
        time.sleep(0.5)
    assert len(runs) == 1, [(r.name, r.state) for r in runs]
    (run,) = runs
    assert run.state is not None
    assert run.state.is_final(), run.state
    assert run.parameters["account"] == "main"
    assert run.parameters["changed_at_ms"] == 1766189040000  # the venue's time of the change
    # The pushed changes, as JSON (not their text): the engine's second observation.
    assert run.parameters["pushed"] == fields["payload"]["changes"]
    assert run.parameters["pushed"][0]["venue_ms"] == 1766189040000
    assert (run.idempotency_key or "").startswith("automation "), run.idempotency_key
    time.sleep(2)  # a second run from the repeated event would have been created by now
    assert len(runs_of("reconcile-positions/main-on-change")) == 1

    # A change without a venue time (seen missing from a snapshot): the run gets 0, "now".
    untimed = notice("main")
    untimed = Notice("main", (replace(untimed.changes[0], venue_ms=None),), {})
    emit_event(**event_of(untimed))
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        runs = [r for r in runs_of("reconcile-positions/main-on-change") if r.id != run.id]
        if runs and runs[0].state is not None and runs[0].state.is_final():
            break
        time.sleep(0.5)
    (second,) = runs
    assert second.parameters["changed_at_ms"] == 0
    assert second.state is not None
    assert second.state.is_completed(), second.state


def test_no_trigger_when_the_watch_trigger_is_off(incident: Incident) -> None:
    config = incident.folder / "posguard.toml"
    with config.open("a") as extra:
        extra.write("\n[watch]\ntrigger = false\n")
    reload_settings()
    deployments = deployments_for(settings(), scheduled=False)
    assert [d for d in deployments if d.triggers] == []
    assert "main-on-change" not in {d.name for d in deployments}


def test_an_event_for_an_account_not_configured_fails_its_run_naming_it(incident: Incident) -> None:
    """Team mode's one trigger takes the account from the event: a name nobody configured is a
    failed run that says so, and leaves no concurrency limit behind (found by the review)."""
    from flows.limits import limit_name

    state = reconcile_positions(account="ghost", return_state=True)
    assert state.is_failed()
    assert "account 'ghost' is not configured (configured: main)" in (state.message or "")
    with get_client(sync_client=True) as client:
        names = {limit.name for limit in client.read_global_concurrency_limits(limit=200)}
    assert limit_name("ghost") not in names
