"""The ground-truth soak: simulated account lives through the real reconciliation path."""

from posguard.soak.runner import SoakPlan, SoakResult, run_life, run_soak

__all__ = ["SoakPlan", "SoakResult", "run_life", "run_soak"]
