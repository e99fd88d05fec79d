"""Retries through is_retryable, and one reconciliation per account at a time."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterId,
    TaskRunFilter,
    TaskRunFilterName,
)

from flows import reconcile_positions
from posguard.registry import Registry
from posguard.sim import SimExchange
from tasks.context import settings
from tests.flows.conftest import flows_against
from tests.sim.conftest import scenario

OPEN = [{"at": "+0s", "action": "open", "instId": "XRP-USDT-SWAP", "sz": "10", "px": "1.93"}]


def task_runs(flow_run_id: str, name: str) -> list[object]:
    with get_client(sync_client=True) as client:
        return list(
            client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])),
                task_run_filter=TaskRunFilter(name=TaskRunFilterName(like_=name)),
            )
        )


def test_50001_twice_is_retried_twice_then_succeeds(tmp_path: Path, prefect_server: None) -> None:
    faults = [
        {"endpoint": "positions", "kind": "http_error", "http": 503, "code": "50001", "times": 2}
    ]
    with flows_against(SimExchange(scenario(name="retry", steps=OPEN, faults=faults)), tmp_path):
        state = reconcile_positions("main", run_expectations=False, return_state=True)
    assert state.is_completed()
    runs = task_runs(str(state.state_details.flow_run_id), "fetch-account-state")
    assert [r.run_count for r in runs] == [3]  # two retries
    assert runs[0].state.is_completed()


def test_an_auth_error_fails_at_once_without_retry(tmp_path: Path, prefect_server: None) -> None:
    with flows_against(
        SimExchange(scenario(name="auth", steps=OPEN)), tmp_path, secret_key="not-the-secret"
    ):
        state = reconcile_positions("main", run_expectations=False, return_state=True)
    assert state.is_failed()
    assert "50113" in state.message
    assert "not-the-secret" not in state.message
    runs = task_runs(str(state.state_details.flow_run_id), "fetch-account-state")
    assert [r.run_count for r in runs] == [1]


def test_two_reconciliations_of_one_account_do_not_overlap(
    tmp_path: Path, prefect_server: None
) -> None:
    ada = [
        *OPEN,
        {"at": "+0s", "action": "open", "instId": "ADA-USDT-SWAP", "sz": "3", "px": "0.62"},
    ]
    with flows_against(SimExchange(scenario(name="twice", steps=ada)), tmp_path):
        with ThreadPoolExecutor(max_workers=2) as pool:
            futures = [
                pool.submit(reconcile_positions, "main", run_expectations=False) for _ in range(2)
            ]
            results = [f.result(timeout=300) for f in futures]
        with Registry(settings().resolved_registry_url) as registry:
            events = registry.events("main")
            _, version = registry.load_memory("main")
    (_, a_end), (b_start, _) = sorted(tuple(r["held"]) for r in results)
    assert a_end <= b_start  # one waited for the other
    ids = [e["id"] for e in events]
    assert len(ids) == len(set(ids))
    assert version == 2, (results, events)  # each run saved the engine's memory once, in turn
    statuses = sorted((e["inst_id"], e["status"]) for e in events)
    # Unknown positions: suspected by the first run; the second ran seconds later, which is
    # not a second observation (confirm_interval_seconds), so nothing is confirmed yet.
    assert statuses == [("ADA-USDT-SWAP", "suspected"), ("XRP-USDT-SWAP", "suspected")]
