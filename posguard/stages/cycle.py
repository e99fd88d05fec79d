"""One reconciliation cycle against the registry: the code the flows, `replay` and the soak
share.

A cycle is one registry transaction: read the engine's memory (locked) and the registry
after the snapshot, run the pure engine, write heals with compare-and-set, save the memory,
store the events (each once). All of it commits together or none of it does: a crash or a
database error anywhere loses nothing and doubles nothing, and a discrepancy decided but not
stored is decided again on the next cycle. A compare-and-set lost to a concurrent writer
(`ConflictError`) rolls the cycle back and decides it again from fresh reads.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import pandas as pd

from posguard.drift import CycleInput, DriftEvent, DriftSettings, Pushed, reconcile
from posguard.drift.engine import forget_healed, healed_event
from posguard.errors import ConflictError
from posguard.registry import Registry

logger = logging.getLogger("posguard.stages.cycle")

ATTEMPTS = 3
# Points inside a cycle's transaction where a crash is survivable; `checkpoint` is called
# with each, in this order (tests kill the process there).
WRITE_POINTS = ("heal", "memory", "events", "commit", "committed")


@dataclass
class CycleOutcome:
    events: list[DriftEvent]
    stored: list[DriftEvent]
    skipped: str | None = None
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
    registry_at_ms: int | None = None,
    history_covers_from_ms: int | None = None,
    fills_covers_from_ms: int | None = None,
    pushed: Sequence[Pushed] = (),
    checkpoint: Callable[[str], None] | None = None,
) -> CycleOutcome:
    """One cycle for one account. `at_ms` is when the snapshot began on OKX's clock,
    `registry_at_ms` the same moment on the registry's clock (None: the same clock)."""
    settings = settings or DriftSettings()
    reached = checkpoint or (lambda _point: None)
    notes: list[str] = []
    for attempt in range(1, ATTEMPTS + 1):
        clock = time.perf_counter()
        try:
            with registry.cycle(account) as tx:
                memory, version = tx.memory()
                cycle = CycleInput(
                    account=account,
                    at_ms=at_ms,
                    positions=positions,
                    # Read after the snapshot began: writes the bot made meanwhile are
                    # visible to the race guard (recorded after the snapshot began).
                    registry=tx.positions(),
                    history=history,
                    fills=fills,
                    lot_sizes=dict(lot_sizes or {}),
                    failures=list(failures or []),
                    registry_at_ms=registry_at_ms,
                    history_covers_from_ms=history_covers_from_ms,
                    fills_covers_from_ms=fills_covers_from_ms,
                    pushed=list(pushed),
                )
                read = time.perf_counter()
                result = reconcile(cycle, memory, settings)
                engine = time.perf_counter()
                timings = {"registry_read": read - clock, "engine": engine - read}
                if result.skipped is not None:
                    logger.warning(
                        "account %s: no conclusion this cycle (%s)", account, result.skipped
                    )
                    return CycleOutcome([], [], skipped=result.skipped, timings=timings)
                events = list(result.events)
                for heal in result.heals:
                    reached("heal")
                    tx.heal(heal)
                    events.append(healed_event(heal))
                    forget_healed(result.memory, heal)
                reached("memory")
                tx.save_memory(result.memory, version)
                reached("events")
                stored = tx.append_events(events, run_id=run_id)
                reached("commit")
            reached("committed")
            timings["registry_write"] = time.perf_counter() - engine
            if result.guarded:
                notes.append(f"{len(result.guarded)} keys written by the bot during the snapshot")
            return CycleOutcome(
                events, stored, heals=len(result.heals), notes=notes, timings=timings
            )
        except ConflictError as exc:
            # Nothing of this attempt was stored; decide again on what the registry says now.
            logger.warning("account %s: attempt %s rolled back: %s", account, attempt, exc)
            notes.append(str(exc))
    return CycleOutcome(
        [],
        [],
        skipped=f"no conclusion: the registry kept changing under {ATTEMPTS} attempts",
        notes=notes,
    )
