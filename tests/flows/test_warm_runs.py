"""Served runs in the serving process (deployments/warm.py): scheduled and on-demand runs of
the served deployments run in its threads, with Prefect's states; a failing run is its own."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator

import pytest
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import FlowRun
from prefect.deployments import run_deployment

from deployments.warm import WarmServer
from tests.flows.helpers import serving

RAN: list[tuple[int, str, int]] = []


@flow(name="warm-probe")
def probe(n: int = 0) -> int:
    RAN.append((os.getpid(), threading.current_thread().name, n))
    if n < 0:
        raise ValueError("a negative probe fails")
    return n * 2


@pytest.fixture
def warm(prefect_server: None) -> Iterator[WarmServer]:
    server = WarmServer(
        [probe.to_deployment(name="probe", parameters={"n": 1})], [probe], limit=2, poll_seconds=0.2
    )
    with serving(server):
        yield server


def final(name: str, **parameters: int) -> FlowRun:
    run = run_deployment(name=name, parameters=parameters, timeout=120, poll_interval=0.5)
    assert isinstance(run, FlowRun)
    with get_client(sync_client=True) as client:
        return client.read_flow_run(run.id)


def test_an_on_demand_run_runs_in_the_serving_process(warm: WarmServer) -> None:
    RAN.clear()
    done = final("warm-probe/probe", n=21)
    assert done.state is not None
    assert done.state.is_completed(), done.state
    assert len(RAN) == 1
    pid, thread, n = RAN[0]
    assert (pid, n) == (os.getpid(), 21)
    assert thread.startswith("warm-run")  # one of the server's threads, no new process
    assert done.start_time is not None
    assert done.end_time is not None


def test_a_failing_run_fails_alone_and_serving_goes_on(warm: WarmServer) -> None:
    failed = final("warm-probe/probe", n=-1)
    assert failed.state is not None
    assert failed.state.is_failed()
    assert "negative probe" in (failed.state.message or "")
    after = final("warm-probe/probe", n=2)
    assert after.state is not None
    assert after.state.is_completed()


def test_a_flow_without_its_object_is_refused_at_start() -> None:
    @flow(name="warm-other")
    def other() -> None:
        return None

    with pytest.raises(ValueError, match="warm-other"):
        WarmServer([other.to_deployment(name="x")], [probe])


def test_a_pool_worker_runs_the_pools_runs_in_its_process_and_says_which(
    prefect_server: None,
) -> None:
    """Team mode's workers: deployments made by someone else on a work pool; every run of
    them in the worker's own threads (the imports paid once per worker, not once per run)."""
    from contextlib import suppress

    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.events.filters import EventFilter, EventNameFilter
    from prefect.exceptions import ObjectAlreadyExists

    pool = "warm-test-pool"
    with get_client(sync_client=True) as client:
        with suppress(ObjectAlreadyExists):
            client.create_work_pool(WorkPoolCreate(name=pool, type="process"))
        flow_id = client.create_flow(probe)
        deployment_id = client.create_deployment(
            flow_id=flow_id, name="pooled", work_pool_name=pool, parameters={"n": 1}
        )
    worker = WarmServer([], [probe], limit=2, poll_seconds=0.2, pool=pool, name="warm-tester")
    RAN.clear()
    with serving(worker):
        runs = [
            run_deployment(name="warm-probe/pooled", parameters={"n": n}, timeout=120)
            for n in (3, 4)
        ]
    assert all(isinstance(r, FlowRun) and r.state and r.state.is_completed() for r in runs)
    assert sorted(n for _, _, n in RAN) == [3, 4]
    # Both in this process: no interpreter per run.
    assert {pid for pid, _, _ in RAN} == {os.getpid()}
    assert all(thread.startswith("warm-run") for _, thread, _ in RAN)
    with get_client(sync_client=True) as client:
        pooled = client.read_deployment(deployment_id)
        started = client.read_events(
            filter=EventFilter(event=EventNameFilter(name=["posguard.worker.started-flow-run"])),
            limit=20,
        ).events
        workers = client.read_workers_for_work_pool(pool)
    assert pooled.work_pool_name == pool
    assert any(e.resource.id == "posguard.worker.warm-tester" for e in started)
    assert [w.name for w in workers] == ["warm-tester"]  # the UI lists it under the pool
