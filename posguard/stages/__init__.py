"""The I/O stages of a cycle, each over whole frames: fetch (one account's snapshot and
evidence), cycle (one reconciliation against the registry), leverage_plan and
leverage_apply (the leverage recalculation and its writes), replay (a timeline through
the same cycle). The pure rules they call live in drift, leverage, notional and frames."""
