"""The reconcile task: one engine cycle against the registry (posguard.stages.cycle.run_cycle)."""

from __future__ import annotations

import pandas as pd
from prefect import task

from posguard.drift.model import HealPolicy
from posguard.stages.cycle import CycleOutcome, run_cycle
from tasks.context import registry, settings
from tasks.fetch import AccountState
from tasks.retry import LOCAL


@task(name="reconcile", **LOCAL)
def reconcile_account(
    account: str,
    state: AccountState,
    instruments: pd.DataFrame,
    policy: HealPolicy | None = None,
    run_id: str | None = None,
) -> CycleOutcome:
    lot_sizes = {
        str(i): float(v)
        for i, v in zip(instruments["instId"], instruments["lotSz"], strict=True)
        if pd.notna(v)
    }
    with registry() as store:
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
        )


@task(name="record-instruments", **LOCAL)
def record_instruments(account: str, instruments: pd.DataFrame) -> int:
    with registry() as store:
        return store.record_instruments(settings().account(account).environment, instruments)
