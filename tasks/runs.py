"""Recording flow runs in the registry: what each run found, for people and for the demo."""

from __future__ import annotations

import json
from typing import Any

from prefect import task

from tasks.context import registry
from tasks.retry import LOCAL


@task(name="record-run", **LOCAL)
def record_run(
    run_id: str | None, account: str, flow: str, status: str, summary: dict[str, Any]
) -> None:
    if run_id is None:
        return
    with registry() as store:
        store.start_run(run_id, account, flow)
        store.finish_run(run_id, status, summary)


FailureKey = tuple[str, str, str, str]  # (expectation, instId, posSide, mgnMode)


@task(name="previous-failures", **LOCAL)
def previous_failures(account: str) -> set[FailureKey]:
    """What the last reconcile run of the account already alerted on (to alert once)."""
    with registry() as store:
        runs = [r for r in store.runs(account) if r["flow"] == "reconcile-positions"]
    for run in reversed(runs):
        summary = json.loads(run["summary"] or "{}")
        expectations = summary.get("expectations")
        if expectations is not None:
            return {
                (result["expectation"], row["instId"], row["posSide"], row["mgnMode"])
                for result in expectations["results"]
                if not result["success"]
                for row in result["failing"]
            }
    return set()
