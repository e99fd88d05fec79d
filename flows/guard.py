"""`guard-account`: instruments, then positions, then leverage, for one account."""

from __future__ import annotations

from typing import Any, Literal

from prefect import flow

from flows.instruments import sync_instruments
from flows.leverage import recalculate_leverage
from flows.naming import run_name
from flows.reconcile import reconcile_positions


@flow(name="guard-account", flow_run_name=run_name, log_prints=False)
def guard_account(
    account: str = "main",
    policy: Literal["report", "heal"] = "report",
    dry_run: bool = True,
    run_expectations: bool = True,
) -> Any:
    """Run the three flows for one account (each a subflow with its own state in the UI)."""
    return {
        "instruments": sync_instruments(account, return_state=True).result(raise_on_failure=False),
        "reconcile": reconcile_positions(
            account, policy, run_expectations, return_state=True
        ).result(raise_on_failure=False),
        "leverage": recalculate_leverage(account, dry_run, return_state=True).result(
            raise_on_failure=False
        ),
    }
