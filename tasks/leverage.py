"""The leverage task: plan, and apply when asked (posguard.stages.leverage_plan)."""

from __future__ import annotations

from prefect import task

from posguard.stages.leverage_plan import LeverageReport, recalculate
from tasks.context import okx, registry, settings
from tasks.retry import RETRYING


@task(name="recalculate-leverage", **RETRYING)
def recalculate_leverage(account: str, apply: bool, run_id: str | None = None) -> LeverageReport:
    config = settings()
    with okx(account) as client:
        if not apply:
            return recalculate(
                client, config.leverage, account_override=config.account(account).leverage
            )
        with registry() as store:
            return recalculate(
                client,
                config.leverage,
                account_override=config.account(account).leverage,
                apply=True,
                # The second key: this host's own configuration, never the run's parameters.
                host_allows=config.leverage.apply,
                registry=store,
                run_id=run_id,
            )
