"""Flow run names: the account and the time, so the UI's run list reads by itself."""

from __future__ import annotations

from datetime import UTC, datetime

from prefect.runtime import flow_run


def run_name() -> str:
    parameters = flow_run.parameters or {}
    account = parameters.get("account", "account")
    return f"{account}-{datetime.now(UTC):%Y%m%d-%H%M%S}"


def batch_name() -> str:
    accounts = list((flow_run.parameters or {}).get("accounts") or [])
    label = f"{accounts[0]}..{accounts[-1]}" if len(accounts) > 1 else "".join(accounts)
    return f"{label or 'batch'}-{datetime.now(UTC):%Y%m%d-%H%M%S}"
