"""Drift: the pure reconciliation engine (no I/O)."""

from posguard.drift.engine import (
    REGISTRY_COLUMNS,
    CycleInput,
    CycleResult,
    empty_registry,
    reconcile,
)
from posguard.drift.model import (
    CAUSES,
    KINDS,
    STATUSES,
    DriftEvent,
    DriftSettings,
    EngineMemory,
    HealAction,
    Pending,
    iso_ms,
)

__all__ = [
    "CAUSES",
    "KINDS",
    "REGISTRY_COLUMNS",
    "STATUSES",
    "CycleInput",
    "CycleResult",
    "DriftEvent",
    "DriftSettings",
    "EngineMemory",
    "HealAction",
    "Pending",
    "empty_registry",
    "iso_ms",
    "reconcile",
]
