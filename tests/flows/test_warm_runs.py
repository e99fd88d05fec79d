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
    serving = threading.Thread(target=server.serve, daemon=True)
    serving.start()
    assert server.registered.wait(timeout=60)
    try:
        yield server
    finally:
        server.stopping.set()
        serving.join(timeout=60)
    assert not serving.is_alive()


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
