"""Prefect flows: wiring only."""

from flows.guard import guard_account
from flows.instruments import sync_instruments
from flows.leverage import recalculate_leverage
from flows.reconcile import reconcile_positions
from flows.round import guard_round

__all__ = [
    "guard_account",
    "guard_round",
    "recalculate_leverage",
    "reconcile_positions",
    "sync_instruments",
]
