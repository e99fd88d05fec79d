"""The reconcile task: one engine cycle against the registry (posguard.stages.cycle.run_cycle)."""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd
from prefect import task

from posguard.drift.model import HealPolicy
from posguard.drift.pushes import pushed_from
from posguard.registry import Registry
from posguard.stages.cycle import CycleOutcome, run_cycle
from tasks.context import registry, settings
from tasks.fetch import AccountState
from tasks.retry import LOCAL

logger = logging.getLogger("posguard.reconcile")


@task(name="reconcile", **LOCAL)
def reconcile_account(
    account: str,
    state: AccountState,
    instruments: pd.DataFrame,
    policy: HealPolicy | None = None,
    run_id: str | None = None,
    pushed: list[dict[str, Any]] | None = None,
) -> CycleOutcome:
    with registry() as store:
        return reconcile_in(store, account, state, instruments, policy, run_id, pushed)


def reconcile_in(
    store: Registry,
    account: str,
    state: AccountState,
    instruments: pd.DataFrame,
    policy: HealPolicy | None = None,
    run_id: str | None = None,
    pushed: list[dict[str, Any]] | None = None,
) -> CycleOutcome:
    """The body of `reconcile`, for callers that hold a registry (a round's)."""
    observations, problems = pushed_from(pushed)
    for problem in problems:
        # A push only adds to what the snapshot shows: without it the run still concludes.
        logger.warning("account %s: %s", account, problem)
    lot_sizes = {
        str(i): float(v)
        for i, v in zip(instruments["instId"], instruments["lotSz"], strict=True)
        if pd.notna(v)
    }
    return run_cycle(
        store,
        account,
        state.snapshot.started_ms,
        positions=state.snapshot.positions,
        history=state.history,
        fills=state.fills,
        lot_sizes=lot_sizes,
        settings=settings().drift.engine_settings(policy),
        run_id=run_id,
        registry_at_ms=state.snapshot.registry_started_ms,
        history_covers_from_ms=state.history_covers_from_ms,
        fills_covers_from_ms=state.fills_covers_from_ms,
        pushed=observations,
    )


def cycle_summary(
    account: str,
    positions: pd.DataFrame,
    open_positions: list[dict[str, Any]],
    outcome: CycleOutcome,
    *,
    failing: int,
    alerts: int,
    expectations: dict[str, Any] | None,
) -> dict[str, Any]:
    """What a reconcile run records (`posguard status` and the demo's screen read it)."""
    return {
        "account": account,
        "positions": int(positions["is_open"].sum()),
        "open_positions": open_positions,
        "failing_expectation_rows": failing,
        "drift_events": [e.to_json() for e in outcome.events],
        # Why the engine drew no conclusion this cycle (None: it did).
        "skipped": outcome.skipped,
        "alerts": alerts,
        "expectations": expectations,
        "reconcile_seconds": {k: round(v, 4) for k, v in outcome.timings.items()},
    }


@task(name="record-instruments", **LOCAL)
def record_instruments(account: str, instruments: pd.DataFrame) -> int:
    with registry() as store:
        return store.record_instruments(settings().account(account).environment, instruments)
