"""Fetch tasks: instruments, and one account's state (positions, leverage, history, fills)."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from prefect import task

from posguard import frames
from posguard.okx import OkxClient
from posguard.registry import Registry
from posguard.stages import fetch as fetch_stage
from posguard.stages.fetch import AccountSnapshot, fetch_snapshot
from tasks.context import okx, registry, settings
from tasks.retry import RETRYING


@dataclass
class AccountState:
    snapshot: AccountSnapshot
    history: pd.DataFrame
    fills: pd.DataFrame
    # None: positions-history (fills) were read completely over the lookback. An epoch ms:
    # the walk stopped at its page limit, and records older than this may exist unread.
    history_covers_from_ms: int | None = None
    fills_covers_from_ms: int | None = None


@task(name="fetch-instruments", **RETRYING)
def fetch_instruments(account: str, inst_type: str = "SWAP") -> pd.DataFrame:
    """The instruments of the account's environment (demo specs can differ from production)."""
    with okx(account) as client:
        return fetch_stage.fetch_instruments(client, inst_type)


@task(name="fetch-account-state", **RETRYING)
def fetch_account_state(account: str, changed_at_ms: int | None = None) -> AccountState:
    """Positions (leverage resolved), then positions-history and fills as evidence.

    Any failure fails the task (and so the cycle): a partial read is "not observed". Evidence
    cut at the client's page limit is not a failure but partial evidence: the state says from
    when on it is complete (`history_covers_from_ms`, `fills_covers_from_ms`). A run started
    by a pushed change (`changed_at_ms`, OKX's time of it; 0: unknown, taken as now) reads
    once the change is older than the grace window: younger evidence cannot conclude (the
    bot may still be recording it).
    """
    with okx(account) as client, registry() as store:
        return read_account_state(client, store, changed_at_ms)


def read_account_state(
    client: OkxClient, store: Registry, changed_at_ms: int | None = None
) -> AccountState:
    """The body of `fetch-account-state`, for callers that hold a client and a registry."""
    if changed_at_ms is not None:
        grace_seconds = settings().drift.grace_seconds
        fetch_stage.settle_after_change(
            client,
            changed_at_ms,
            grace_ms=int(grace_seconds * 1000),
            longest_seconds=grace_seconds + 1,
        )
    lookback_ms = int(settings().drift.lookback_seconds * 1000)
    snapshot = fetch_snapshot(client, registry_clock=store.clock_ms)
    since = snapshot.started_ms - lookback_ms
    history_pages = client.positions_history(inst_type="SWAP", before_ms=since)
    history = frames.parse_positions_history(history_pages.records)
    fill_pages = client.fills(inst_type="SWAP", begin_ms=since)
    fills = frames.parse_fills(fill_pages.records)
    return AccountState(
        snapshot,
        history,
        fills,
        history_covers_from_ms=history_pages.partial_from_ms(snapshot.started_ms),
        fills_covers_from_ms=fill_pages.partial_from_ms(snapshot.started_ms),
    )
