"""`recalculate-leverage`: the volatility-targeted plan, applied only when dry_run is False."""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger
from prefect.runtime import flow_run
from prefect.states import Failed

from flows.naming import run_name
from posguard.errors import PosguardError
from tasks.context import one_settings_per_run
from tasks.leverage import recalculate_leverage as recalculate_task
from tasks.publish import publish_leverage
from tasks.runs import record_run


@flow(name="recalculate-leverage", flow_run_name=run_name, log_prints=False)
@one_settings_per_run
def recalculate_leverage(account: str = "main", dry_run: bool = True) -> Any:
    """Plan per OKX leverage scope (a cross scope in long/short mode covers both legs): the
    current lever and source, volatility, bound and its source, target, action, why."""
    logger = get_run_logger()
    run_id = str(flow_run.id) if flow_run.id else None
    try:
        report = recalculate_task(account, apply=not dry_run, run_id=run_id)
    except PosguardError as exc:
        logger.error("leverage of %s not recalculated: %s", account, exc)
        return Failed(message=f"leverage not recalculated: {exc}")
    publish_leverage(account, report)
    summary = {
        "account": account,
        "plan": report.plan_json(),
        "outcomes": [o.to_json() for o in report.outcomes],
    }
    record_run(run_id, account, "recalculate-leverage", "completed", summary)
    return summary
