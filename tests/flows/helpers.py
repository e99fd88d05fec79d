"""Reading back what flows left on the Prefect server: artifacts, events, task runs."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
from prefect.events.filters import EventFilter, EventNameFilter, EventOccurredFilter
from prefect.types import DateTime

from deployments.warm import WarmServer
from posguard.registry import Registry
from posguard.sim.bot import apply_registry_writes
from tasks.context import settings


def advance(base_url: str, to: str) -> None:
    httpx.post(f"{base_url}/__sim__/advance", json={"to": to}).raise_for_status()


def seed_bot_writes(base_url: str) -> int:
    writes = httpx.get(f"{base_url}/__sim__/registry-writes").json()
    with Registry(settings().resolved_registry_url) as registry:
        return apply_registry_writes(registry, writes)


def artifact_keys(prefix: str = "") -> set[str]:
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            limit=200, artifact_filter=ArtifactFilter(key=ArtifactFilterKey(like_=prefix or None))
        )
    return {a.key for a in artifacts if a.key}


def events_named(name: str, since: Any, *, at_least: int = 1, timeout: float = 30) -> list[Any]:
    """Events of one name since a moment; waits for the server to persist them."""
    deadline = time.monotonic() + timeout
    found: list[Any] = []
    while time.monotonic() < deadline:
        with get_client(sync_client=True) as client:
            page = client.read_events(
                filter=EventFilter(
                    event=EventNameFilter(name=[name]), occurred=EventOccurredFilter(since=since)
                ),
                limit=50,
            )
        found = list(page.events)
        if len(found) >= at_least:
            return found
        time.sleep(0.5)
    return found


def now() -> Any:
    return DateTime.now("UTC")


@contextmanager
def serving(server: WarmServer) -> Iterator[WarmServer]:
    """`server` serving in a thread of this process, its deployments registered; stopped
    (and checked stopped) on the way out."""
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    assert server.registered.wait(timeout=60)
    try:
        yield server
    finally:
        server.stopping.set()
        thread.join(timeout=60)
    assert not thread.is_alive()
