"""Served flow runs without a process per run.

Prefect's `serve` starts every flow run in a fresh interpreter, which imports pandas, Prefect,
GX and the flows again: seconds of CPU for a reconcile whose stages take a fraction of one
(issue 14). `WarmServer` is a long-lived process that has imported all of that once. It
registers the same deployments (schedules, parameters, tags: the UI shows and starts them as
before), polls the server for their scheduled runs like Prefect's runner does, claims each
with a Pending state, and runs it in one of its threads through Prefect's own engine
(`run_flow` with the flow run): the same states, logs, artifacts, events and concurrency
limits as a spawned run.

What it gives up, on purpose: a run cannot be killed from the UI. Cancelling a running one
lets its body finish (a leverage run still makes its calls) and leaves it "Cancelling" (the
engine's final state is refused), with its concurrency slot held until the lease expires.
A fault that kills the interpreter ends every run in it with no Crashed state, and Ctrl-C
waits for the runs in flight. Settings are read again when posguard.toml changes (each run on
one version, tasks.context); deployments, schedules and automations only at start. posguard's
runs are short and turn their errors into states; the spawning
`serve` stays available (`posguard serve --cold`).
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any
from uuid import UUID

from prefect import Flow
from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.client.schemas.objects import FlowRun
from prefect.client.schemas.responses import FlowRunResponse
from prefect.deployments.runner import RunnerDeployment
from prefect.events import emit_event
from prefect.exceptions import Abort
from prefect.flow_engine import run_flow
from prefect.states import Crashed, Pending
from prefect.types._datetime import now
from prefect.utilities.engine import propose_state_sync

logger = logging.getLogger("posguard.warm")

HEARTBEAT_SECONDS = 15.0


class _ThreadTimeoutNotice(logging.Filter):
    """Prefect warns, on every task run with a timeout outside the main thread, that the
    timeout cannot interrupt a blocking call. posguard's tasks bound their I/O themselves
    (httpx timeouts on every OKX call, the database driver's), and the task timeout still
    applies once a call returns: the notice is said once when serving starts, not per task."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = str(record.msg)
        return not (message.startswith("Timeout of") and "worker thread" in message)


_THREAD_TIMEOUT_NOTICE = _ThreadTimeoutNotice()


class WarmServer:
    """Runs the scheduled and on-demand runs of `deployments` in this process's threads."""

    def __init__(
        self,
        deployments: Sequence[RunnerDeployment],
        flows: Sequence[Flow[..., Any]],
        *,
        limit: int = 8,
        poll_seconds: float = 1.0,
        pool: str | None = None,
        name: str = "posguard-warm",
    ) -> None:
        """Serve `deployments`; or, with `pool`, be a worker of that work pool: run what is
        due on it (deployments someone else created) whose flow is one of `flows`."""
        by_name = {flow.name: flow for flow in flows}
        missing = sorted({d.flow_name or "" for d in deployments} - set(by_name))
        if missing:
            raise ValueError(f"no flow object for the deployments of {', '.join(missing)}")
        self._deployments = list(deployments)
        self._by_name = by_name
        self._limit = limit
        self._poll_seconds = poll_seconds
        self.pool = pool
        self.name = name
        self._flow_names: dict[UUID, str] = {}  # pool mode: flow id -> name, read once each
        self._last_heartbeat = 0.0
        self._last_claim = 0.0
        self._flows: dict[UUID, Flow[..., Any]] = {}
        self._running: set[UUID] = set()
        self._lock = threading.Lock()
        self.stopping = threading.Event()
        self.registered = threading.Event()  # every deployment exists on the server

    def register(self) -> list[UUID]:
        """Create or update every deployment on the server; returns their ids (none for a
        pool's worker: the pool's deployments are made by whoever deploys to it)."""
        for deployment in self._deployments:
            deployment_id = deployment.apply()
            if not isinstance(deployment_id, UUID):
                raise TypeError("RunnerDeployment.apply returned a coroutine in sync code")
            self._flows[deployment_id] = self._by_name[deployment.flow_name or ""]
        return list(self._flows)

    def serve(self) -> None:
        """Register, then run what is due until `stopping` is set (Ctrl-C sets it)."""
        self.register()
        self.registered.set()
        # One filter object: serving twice in a process does not stack filters.
        logging.getLogger("prefect.task_runs").addFilter(_THREAD_TIMEOUT_NOTICE)
        logger.info(
            "serving %d deployments warm (%d runs at once); task timeouts apply after a "
            "blocking call returns (OKX and database calls have their own timeouts)",
            len(self._flows),
            self._limit,
        )
        with (
            get_client(sync_client=True) as client,
            ThreadPoolExecutor(self._limit, thread_name_prefix="warm-run") as pool,
        ):
            while not self.stopping.is_set():
                try:
                    self._poll(client, pool)
                except Exception:  # the server restarting: poll again, never stop serving
                    logger.exception("polling for scheduled runs failed; retrying")
                self.stopping.wait(self._poll_seconds)

    def serve_until_stopped(self) -> None:
        """`serve` as a process's main loop: SIGTERM and Ctrl-C stop it after the runs in
        flight."""
        signal.signal(signal.SIGTERM, lambda *_: self.stopping.set())
        try:
            self.serve()
        except KeyboardInterrupt:
            self.stopping.set()

    def _due(self, client: SyncPrefectClient) -> list[FlowRun | FlowRunResponse]:
        soon = now("UTC") + timedelta(seconds=1)
        if self.pool is None:
            return list(
                client.get_scheduled_flow_runs_for_deployments(
                    deployment_ids=list(self._flows), scheduled_before=soon
                )
            )
        if time.monotonic() - self._last_heartbeat > HEARTBEAT_SECONDS:
            # The pool's worker list in the UI, and the pool "ready" while someone polls it.
            client.send_worker_heartbeat(
                self.pool, self.name, heartbeat_interval_seconds=HEARTBEAT_SECONDS
            )
            self._last_heartbeat = time.monotonic()
        runs: list[FlowRun | FlowRunResponse] = [
            response.flow_run
            for response in client.get_scheduled_flow_runs_for_work_pool(
                self.pool, scheduled_before=soon
            )
        ]
        return [run for run in runs if self._flow_of(client, run) is not None]

    def _flow_of(
        self, client: SyncPrefectClient, flow_run: FlowRun | FlowRunResponse
    ) -> Flow[..., Any] | None:
        if self.pool is None:
            return self._flows.get(flow_run.deployment_id) if flow_run.deployment_id else None
        if flow_run.flow_id not in self._flow_names:
            self._flow_names[flow_run.flow_id] = client.read_flow(flow_run.flow_id).name
        return self._by_name.get(self._flow_names[flow_run.flow_id])

    def _poll(self, client: SyncPrefectClient, pool: ThreadPoolExecutor) -> None:
        due = self._due(client)
        due.sort(
            key=lambda run: (run.next_scheduled_start_time is None, run.next_scheduled_start_time)
        )
        for flow_run in due:
            with self._lock:
                if flow_run.id in self._running:
                    continue
                busy = len(self._running)
                if busy >= self._limit:
                    return  # sorted: nothing later fits either
            if (
                self.pool
                and busy
                and time.monotonic() - self._last_claim < 2 * busy * self._poll_seconds
            ):
                # Another worker of the pool may be idle: a busy one leaves it
                # a couple of polls per run it holds before taking more (one process's
                # threads share one core; a round of 100 accounts is seconds of it).
                return
            flow = self._flow_of(client, flow_run)
            if flow is None or not self._claim(client, flow_run.id):
                continue
            self._last_claim = time.monotonic()
            with self._lock:
                self._running.add(flow_run.id)
            try:
                # Read again as the engine wants it (the schedule query answers a summary).
                full = client.read_flow_run(flow_run.id)
                pool.submit(self._execute, flow, full)
                self._started(full)
            except Exception as exc:
                # Claimed but not started: never leave it Pending, nor its slot taken.
                with self._lock:
                    self._running.discard(flow_run.id)
                self._crash(flow_run.id, exc)

    def _claim(self, client: SyncPrefectClient, flow_run_id: UUID) -> bool:
        """Pending, as Prefect's runner proposes it: the server may refuse (a deployment's
        concurrency limit, another server that took the run first)."""
        try:
            state = propose_state_sync(client, Pending(), flow_run_id=flow_run_id)
        except Abort as exc:
            logger.info("flow run %s not started: %s", flow_run_id, exc)
            return False
        return bool(state.is_pending())

    def _crash(self, flow_run_id: UUID, exc: BaseException) -> None:
        try:
            with get_client(sync_client=True) as client:
                propose_state_sync(
                    client,
                    Crashed(message=f"crashed in the warm server: {exc!r}"),
                    flow_run_id=flow_run_id,
                )
        except Exception:
            logger.exception("could not mark flow run %s crashed", flow_run_id)

    def _started(self, flow_run: FlowRun) -> None:
        """Said as an event (Prefect's workers say `prefect.worker.submitted-flow-run`): which
        process took which run, for the UI's event feed and for tests."""
        emit_event(
            event="posguard.worker.started-flow-run",
            resource={
                "prefect.resource.id": f"posguard.worker.{self.name}",
                "prefect.resource.name": self.name,
            },
            related=[
                {
                    "prefect.resource.id": f"prefect.flow-run.{flow_run.id}",
                    "prefect.resource.role": "flow-run",
                    "prefect.resource.name": flow_run.name,
                }
            ],
            payload={"pool": self.pool},
        )

    def _execute(self, flow: Flow[..., Any], flow_run: FlowRun) -> None:
        try:
            run_flow(flow, flow_run=flow_run, return_type="state")
        except BaseException as exc:  # the engine records flow errors; this is the rest
            logger.exception("flow run %s crashed outside its flow", flow_run.id)
            self._crash(flow_run.id, exc)
        finally:
            with self._lock:
                self._running.discard(flow_run.id)
