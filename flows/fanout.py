"""`guard-accounts`: one guard-account flow run per account, so a work pool's workers share
them and one account's failure stays its own."""

from __future__ import annotations

import time
from typing import Any, Literal

from prefect import flow, get_run_logger
from prefect.client.orchestration import get_client
from prefect.deployments import run_deployment

from tasks.context import settings


@flow(name="guard-accounts", log_prints=False)
def guard_accounts(
    accounts: list[str] | None = None,
    policy: Literal["report", "heal"] = "report",
    dry_run: bool = True,
    run_expectations: bool = True,
    wait_seconds: float = 1800,
) -> dict[str, str]:
    """Trigger `guard-account/<account>` for every account (default: all configured) and
    wait for them; returns each account's final state."""
    logger = get_run_logger()
    names = accounts or sorted(settings().accounts)
    triggered: dict[str, Any] = {}
    for account in names:
        triggered[account] = run_deployment(
            name=f"guard-account/{account}",
            timeout=0,
            as_subflow=False,
            parameters={
                "account": account,
                "policy": policy,
                "dry_run": dry_run,
                "run_expectations": run_expectations,
            },
        )
    states: dict[str, str] = {}
    deadline = time.monotonic() + wait_seconds
    with get_client(sync_client=True) as client:
        while len(states) < len(triggered) and time.monotonic() < deadline:
            for account, flow_run in triggered.items():
                if account in states:
                    continue
                state = client.read_flow_run(flow_run.id).state
                if state is not None and state.is_final():
                    states[account] = state.name
            time.sleep(1)
    for account in triggered:
        states.setdefault(account, "not finished")
    failed = {a: s for a, s in states.items() if s != "Completed"}
    if failed:
        logger.warning("accounts not completed: %s", failed)
    return states
