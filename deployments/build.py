"""The deployments: each flow, per account, with its schedule (settings.schedules)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from prefect.schedules import Interval

from flows import guard_account, recalculate_leverage, reconcile_positions, sync_instruments
from posguard.settings import Settings


def deployments_for(
    settings: Settings, *, scheduled: bool = True, paused: bool = False
) -> list[Any]:
    """RunnerDeployments for `serve`; without schedules (or paused) they run on demand."""
    plans = settings.schedules
    built: list[Any] = []
    for account in sorted(settings.accounts):
        tags = ["posguard", f"account:{account}"]

        def every(seconds: int, account: str = account) -> dict[str, Any]:
            if not scheduled:
                return {}
            return {
                "schedule": Interval(timedelta(seconds=seconds), parameters={"account": account})
            }

        built += [
            sync_instruments.to_deployment(
                name=account,
                paused=paused,
                parameters={"account": account},
                tags=tags,
                description=f"Instrument specs for {account}, validated and recorded",
                **every(plans.instruments_seconds),
            ),
            reconcile_positions.to_deployment(
                name=account,
                paused=paused,
                parameters={"account": account, "policy": settings.drift.heal},
                tags=tags,
                description=f"Positions of {account} vs the registry",
                **every(plans.reconcile_seconds),
            ),
            recalculate_leverage.to_deployment(
                name=account,
                paused=paused,
                parameters={"account": account, "dry_run": plans.leverage_dry_run},
                tags=tags,
                description=f"Volatility-targeted leverage plan for {account}",
                **every(plans.leverage_seconds),
            ),
            guard_account.to_deployment(
                name=account,
                parameters={"account": account, "policy": settings.drift.heal},
                tags=tags,
                description=f"All of the above for {account}, on demand",
            ),
        ]
    return built
