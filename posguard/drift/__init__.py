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
    Cause,
    DriftEvent,
    DriftSettings,
    EngineMemory,
    HealAction,
    Kind,
    Pending,
    Pushed,
    Seen,
    Status,
    iso_ms,
)

__all__ = [
    "CAUSES",
    "KINDS",
    "REGISTRY_COLUMNS",
    "STATUSES",
    "Cause",
    "CycleInput",
    "CycleResult",
    "DriftEvent",
    "DriftSettings",
    "EngineMemory",
    "HealAction",
    "Kind",
    "Pending",
    "Pushed",
    "Seen",
    "Status",
    "empty_registry",
    "iso_ms",
    "reconcile",
]
