"""Recording flow runs in the registry: what each run found, for people and for the demo."""

from __future__ import annotations

from typing import Any

from prefect import task

from posguard.registry.alerts import FailureKey
from tasks.context import registry
from tasks.retry import LOCAL


@task(name="record-run", **LOCAL)
def record_run(
    run_id: str | None, account: str, flow: str, status: str, summary: dict[str, Any]
) -> None:
    if run_id is None:
        return
    with registry() as store:
        store.record_run(run_id, account, flow, status, summary)


@task(name="previous-failures", **LOCAL)
def previous_failures(account: str) -> set[FailureKey]:
    """What the account's last validation already alerted on (to alert once)."""
    with registry() as store:
        return store.alerted_failures(account)


@task(name="remember-failures", **LOCAL)
def remember_failures(account: str, failing: set[FailureKey]) -> None:
    """What this validation alerted on, for the next run to compare with."""
    with registry() as store:
        store.save_alerted_failures(account, failing)
