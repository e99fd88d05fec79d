"""Leverage: resolution (position -> leverage-info -> unknown) and the recalculation policy.

Pure functions over frames; no I/O here.
"""

from posguard.leverage.resolve import LEVER_SOURCES, resolve_leverage

__all__ = ["LEVER_SOURCES", "resolve_leverage"]
