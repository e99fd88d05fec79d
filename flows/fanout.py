"""`guard-accounts`: the accounts fanned out as separate flow runs, so a work pool's workers
share them and one account's failure stays its own.

With `accounts_per_run` 1 every account is a `guard-account/<account>` run; with more
(team.accounts_per_run, 10 by default), accounts go in batches to `guard-round/all` runs, each
account's outcome its own task runs (`observe-<account>`, `settle-<account>`). Either way the
result is every account's final state.
"""

from __future__ import annotations

import time
from typing import Literal
from uuid import UUID

from prefect import flow, get_run_logger
from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.client.schemas.objects import FlowRun
from prefect.deployments import run_deployment

from posguard.progress import Progress
from tasks.context import one_settings_per_run, registry, settings
from tasks.round import account_run_id

# A round's per-account run records, as the account states of single runs read.
ROUND_STATES = {"completed": "Completed", "not_observed": "Failed", "failed": "Failed"}


@flow(name="guard-accounts", log_prints=False)
@one_settings_per_run
def guard_accounts(
    accounts: list[str] | None = None,
    policy: Literal["report", "heal"] = "report",
    dry_run: bool | None = None,
    run_expectations: bool = True,
    wait_seconds: float = 1800,
    accounts_per_run: int | None = None,
) -> dict[str, str]:
    """Trigger the guard runs for every account (default: all configured) and wait for
    them; returns each account's final state ("not finished" past `wait_seconds`).
    `dry_run` None: as `schedules.leverage_dry_run` says (and the host's `[leverage] apply`)."""
    logger = get_run_logger()
    names = accounts or sorted(settings().accounts)
    size = max(1, accounts_per_run or settings().team.accounts_per_run)
    if dry_run is None:
        dry_run = settings().schedules.leverage_dry_run
    common = {"policy": policy, "dry_run": dry_run, "run_expectations": run_expectations}
    triggered: dict[UUID, list[str]] = {}
    for start in range(0, len(names), size):
        chunk = names[start : start + size]
        if size == 1:
            run = run_deployment(
                name=f"guard-account/{chunk[0]}",
                timeout=0,
                as_subflow=False,
                # Instruments and leverage as their schedules say, not every round.
                parameters={"account": chunk[0], **common, "when_due": True},
            )
        else:
            run = run_deployment(
                name="guard-round/all",
                timeout=0,
                as_subflow=False,
                parameters={"accounts": chunk, **common},
            )
        if not isinstance(run, FlowRun):
            raise TypeError("run_deployment returned a coroutine in sync code")
        triggered[run.id] = chunk
    finished: dict[UUID, str] = {}
    deadline = time.monotonic() + wait_seconds
    progress = Progress(f"guard runs finished ({len(names)} accounts)", len(triggered))
    with get_client(sync_client=True) as client:
        while len(finished) < len(triggered) and time.monotonic() < deadline:
            for run_id in triggered:
                if run_id in finished:
                    continue
                state = client.read_flow_run(run_id).state
                if state is not None and state.is_final():
                    finished[run_id] = state.name or state.type.value
            progress.update(len(finished))
            time.sleep(1)
        states = _account_states(client, triggered, finished, batched=size > 1)
    failed = {a: s for a, s in states.items() if s != "Completed"}
    if failed:
        logger.warning("accounts not completed: %s", failed)
    return states


def _account_states(
    client: SyncPrefectClient,
    triggered: dict[UUID, list[str]],
    finished: dict[UUID, str],
    *,
    batched: bool,
) -> dict[str, str]:
    states: dict[str, str] = {}
    if not batched:
        for run_id, (account,) in triggered.items():
            states[account] = finished.get(run_id, "not finished")
        return states
    # A round records each account's outcome in the registry under a run id derived from the
    # round's (its task runs reach the server later, through events).
    expected = {
        str(account_run_id(str(run_id), account)): account
        for run_id in finished
        for account in triggered[run_id]
    }
    with registry() as store:
        recorded = store.run_statuses(list(expected))
    for run_key, status in recorded.items():
        states[expected[run_key]] = ROUND_STATES.get(status, status)
    for run_id, chunk in triggered.items():
        for account in chunk:
            # A round that crashed before settling an account recorded nothing for it.
            states.setdefault(account, "not finished" if run_id not in finished else "not run")
    return states
