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
def fetch_account_state(account: str) -> AccountState:
    """Positions (leverage resolved), then positions-history and fills as evidence.

    Any failure fails the task (and so the cycle): a partial read is "not observed". Evidence
    cut at the client's page limit is not a failure but partial evidence: the state says from
    when on it is complete (`history_covers_from_ms`, `fills_covers_from_ms`).
    """
    with okx(account) as client, registry() as store:
        return read_account_state(client, store)


@task(name="settle-change", **RETRYING)
def settle_change(account: str, changed_at_ms: int) -> int:
    """A run started by a pushed change waits, before taking the account's slot, until the
    change is older than the grace window on OKX's clock (younger evidence cannot conclude:
    the bot may still be recording it). Returns that moment (OKX's epoch ms)."""
    grace_seconds = settings().drift.grace_seconds
    with okx(account) as client:
        moment = fetch_stage.settle_moment(changed_at_ms, client, int(grace_seconds * 1000))
        assert moment is not None  # changed_at_ms is given
        # 100 ms past the window: the engine's "older than" is strict.
        fetch_stage.wait_for_venue(client, moment + 100, longest_seconds=grace_seconds + 1)
    return moment


@task(name="already-observed", **RETRYING)
def already_observed(account: str, moment_ms: int) -> bool:
    """Whether a cycle of the account has judged a snapshot taken after `moment_ms` (OKX's
    clock): then the change this run was started for is already reconciled, and a burst of
    changes gives one more cycle, not one per event."""
    with registry() as store:
        memory, _ = store.load_memory(account)
    return memory.last_snapshot_ms is not None and memory.last_snapshot_ms > moment_ms


def read_account_state(client: OkxClient, store: Registry) -> AccountState:
    """The body of `fetch-account-state`, for callers that hold a client and a registry."""
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
