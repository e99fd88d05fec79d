"""Prefect flows: wiring only."""

from flows.guard import guard_account, guard_batch
from flows.instruments import sync_instruments
from flows.leverage import recalculate_leverage
from flows.reconcile import reconcile_positions

__all__ = [
    "guard_account",
    "guard_batch",
    "recalculate_leverage",
    "reconcile_positions",
    "sync_instruments",
]
