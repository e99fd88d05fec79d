"""Prefect flows: wiring only (sync-instruments, reconcile-positions, recalculate-leverage)."""
