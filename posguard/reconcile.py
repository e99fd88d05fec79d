"""One reconciliation cycle against the registry: the code the flows and `replay` share.

Reads the registry and the engine's memory, runs the pure engine, heals under the `heal`
policy, stores the events (each once) and saves the memory with compare-and-set.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import pandas as pd

from posguard.drift import CycleInput, DriftEvent, DriftSettings, reconcile
from posguard.registry import Registry, apply_heals

logger = logging.getLogger("posguard.reconcile")


@dataclass
class CycleOutcome:
    events: list[DriftEvent]
    stored: list[DriftEvent]
    skipped: str | None = None
    memory_saved: bool = True
    heals: int = 0
    notes: list[str] = field(default_factory=list)
    # Seconds spent reading the registry, in the pure engine, and writing (heals, memory,
    # events): where a slow cycle's time goes, without a profiler.
    timings: dict[str, float] = field(default_factory=dict)


def run_cycle(
    registry: Registry,
    account: str,
    at_ms: int,
    *,
    positions: pd.DataFrame | None,
    history: pd.DataFrame | None = None,
    fills: pd.DataFrame | None = None,
    failures: list[str] | None = None,
    lot_sizes: Mapping[str, float] | None = None,
    settings: DriftSettings | None = None,
    run_id: str | None = None,
) -> CycleOutcome:
    settings = settings or DriftSettings()
    clock = time.perf_counter()
    memory, version = registry.load_memory(account)
    cycle = CycleInput(
        account=account,
        at_ms=at_ms,
        positions=positions,
        # Read after the snapshot began: writes the bot made meanwhile are visible to the
        # race guard (their updated_at is newer than the snapshot).
        registry=registry.positions(account),
        history=history,
        fills=fills,
        lot_sizes=dict(lot_sizes or {}),
        failures=list(failures or []),
    )
    read = time.perf_counter()
    result = reconcile(cycle, memory, settings)
    engine = time.perf_counter()
    timings = {"registry_read": read - clock, "engine": engine - read}
    if result.skipped is not None:
        logger.warning("account %s: no conclusion this cycle (%s)", account, result.skipped)
        return CycleOutcome([], [], skipped=result.skipped, timings=timings)
    events = list(result.events)
    if result.heals:
        events += apply_heals(registry, result.heals, result.memory, at_ms)
    saved = registry.save_memory(account, result.memory, version)
    if not saved:
        # Another cycle for this account saved first (concurrency limits should prevent
        # it); its memory stands and ours is dropped, but no event is lost: ids are stable.
        logger.warning("account %s: engine memory changed concurrently; keeping the other", account)
    stored = registry.append_events(events, run_id=run_id)
    timings["registry_write"] = time.perf_counter() - engine
    return CycleOutcome(
        events, stored, memory_saved=saved, heals=len(result.heals), timings=timings
    )
