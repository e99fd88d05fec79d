"""`posguard serve` / `python -m deployments.serve`: serve every account's deployments.

Needs a running Prefect server (PREFECT_API_URL): schedules only run there.
"""

from __future__ import annotations

import sys

from prefect import serve

from deployments.alerting import ensure_alerting
from deployments.build import deployments_for
from posguard.errors import PosguardError
from posguard.settings import load_settings


def main(scheduled: bool = True, paused: bool = False, cold: bool = False) -> int:
    """Serve every account's deployments: warm (runs in this process's threads, imports paid
    once) unless `cold` (Prefect's serve: a fresh interpreter per run)."""
    try:
        settings = load_settings()
    except PosguardError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not settings.accounts:
        print(
            "error: no accounts configured; add [accounts.NAME] to posguard.toml", file=sys.stderr
        )
        return 2
    if settings.mode == "team":
        from deployments.team import team_up
        from posguard.settings import config_file_path

        return team_up(settings, config_file_path(), scheduled=scheduled)
    ensure_alerting(settings.alerts)
    deployments = deployments_for(settings, scheduled=scheduled, paused=paused)
    if cold:
        # Without pause_on_shutdown=False a restart would leave every schedule paused.
        serve(*deployments, pause_on_shutdown=False, limit=8)
        return 0
    from deployments.warm import WarmServer
    from flows import guard_account, recalculate_leverage, reconcile_positions, sync_instruments

    warm = WarmServer(
        deployments,
        [sync_instruments, reconcile_positions, recalculate_leverage, guard_account],
        limit=8,
    )
    warm.serve_until_stopped()
    return 0


if __name__ == "__main__":
    sys.exit(
        main(
            scheduled="--no-schedules" not in sys.argv,
            paused="--paused" in sys.argv,
            cold="--cold" in sys.argv,
        )
    )
