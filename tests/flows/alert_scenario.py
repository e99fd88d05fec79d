"""The incident's flows, run in a process of their own for tests/flows/test_alert_channels.py.

Prefect keeps per-process services (concurrency-slot clients, log and event workers) bound to
the API they first talked to; the alert test's own Prefect server therefore gets its own
process, so the session's test server and this one never share them.

    python -m tests.flows.alert_scenario SIMULATOR_URL   (PREFECT_API_URL, POSGUARD_CONFIG set)
"""

from __future__ import annotations

import json
import sys

from flows import recalculate_leverage, reconcile_positions
from tests.flows.helpers import advance, seed_bot_writes


def play(base: str) -> dict[str, object]:
    seed_bot_writes(base)
    reconcile_positions("main")  # DOGE's lever is unknown: lever > 0 fails
    advance(base, "+4m")
    reconcile_positions("main", run_expectations=False)  # BTC liquidated: confirmed
    # A minute on: a jump shorter than OKX's 30 s timestamp window is invisible to the client's
    # clock estimate, and observations closer than confirm_interval_seconds count once.
    advance(base, "+5m")
    reconcile_positions("main", run_expectations=False)  # still open: escalated
    return recalculate_leverage("main", dry_run=False)  # type: ignore[no-any-return]


if __name__ == "__main__":
    sys.stdout.write(json.dumps(play(sys.argv[1]), default=str) + "\n")
