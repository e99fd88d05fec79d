"""posguard: a position-integrity pipeline for OKX derivatives accounts.

The library (this package) never imports Prefect; `flows/`, `tasks/` and `deployments/` do.
"""

__version__ = "0.1.0"
