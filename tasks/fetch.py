"""Fetch tasks: instruments, and one account's state (positions, leverage, history, fills)."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from prefect import task

from posguard import frames, snapshot
from posguard.snapshot import AccountSnapshot, fetch_snapshot
from tasks.context import okx, registry, settings
from tasks.retry import RETRYING


@dataclass
class AccountState:
    snapshot: AccountSnapshot
    history: pd.DataFrame
    fills: pd.DataFrame


@task(name="fetch-instruments", **RETRYING)
def fetch_instruments(account: str, inst_type: str = "SWAP") -> pd.DataFrame:
    """The instruments of the account's environment (demo specs can differ from production)."""
    with okx(account) as client:
        return snapshot.fetch_instruments(client, inst_type)


@task(name="fetch-account-state", **RETRYING)
def fetch_account_state(account: str) -> AccountState:
    """Positions (leverage resolved), then positions-history and fills as evidence.

    Any failure fails the task (and so the cycle): a partial read is "not observed".
    """
    lookback_ms = int(settings().drift.lookback_seconds * 1000)
    with okx(account) as client, registry() as store:
        snapshot = fetch_snapshot(client, registry_clock=store.clock_ms)
        since = snapshot.started_ms - lookback_ms
        history = frames.parse_positions_history(
            client.positions_history(inst_type="SWAP", before_ms=since)
        )
        fills = frames.parse_fills(client.fills(inst_type="SWAP", begin_ms=since))
    return AccountState(snapshot, history, fills)
