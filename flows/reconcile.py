"""`reconcile-positions`: fetch, validate and reconcile one account; one run at a time."""

from __future__ import annotations

import time
from typing import Any, Literal

from prefect import flow, get_run_logger
from prefect.concurrency.sync import concurrency
from prefect.runtime import flow_run
from prefect.states import Failed

from flows.limits import ensure_account_limit
from flows.naming import run_name
from posguard.errors import PosguardError
from tasks.context import one_settings_per_run, settings
from tasks.fetch import fetch_account_state, fetch_instruments
from tasks.publish import publish_drift, publish_positions, publish_validation
from tasks.reconcile import cycle_summary, reconcile_account
from tasks.runs import previous_failures, record_run, remember_failures
from tasks.validate import validate_positions


@flow(name="reconcile-positions", flow_run_name=run_name, log_prints=False)
@one_settings_per_run
def reconcile_positions(
    account: str = "main",
    policy: Literal["report", "heal"] = "report",
    run_expectations: bool = True,
    changed_at_ms: int | None = None,
    pushed: list[dict[str, Any]] | None = None,
) -> Any:
    """Positions vs the registry: drift is declared on evidence only (design.md rules 1-8).

    `changed_at_ms`: set by the change trigger (posguard watch), OKX's time of the pushed
    change (0: unknown, taken as now). Holding the account's slot, the run waits until the
    change has passed the grace window, so that its evidence can conclude (waiting before
    taking the slot measured slower: the slot's acquisition backs off behind scheduled
    runs).

    `pushed`: the changes the stream pushed (the event's payload). A pushed change that shows
    what this run's snapshot shows, the grace window earlier, is one more observation of a
    discrepancy: with the snapshot it confirms at once what would wait for the next poll."""
    logger = get_run_logger()
    run_id = str(flow_run.id) if flow_run.id else None
    try:
        # Before its limit is made: team mode's trigger takes the name from an event.
        settings().account(account)
    except PosguardError as exc:
        logger.error("%s", exc)
        return Failed(message=str(exc))
    limit = ensure_account_limit(account)
    with concurrency(limit, occupy=1, strict=True, timeout_seconds=600):
        held_from = time.time()
        try:
            instruments = fetch_instruments(account)
            state = fetch_account_state(account, changed_at_ms)
        except PosguardError as exc:
            # Not observed is never "flat": no drift is concluded from a failed read.
            logger.error("account %s not observed this cycle: %s", account, exc)
            # Recorded, so that `posguard status` can tell a silent account from a quiet one.
            record_run(
                run_id,
                account,
                "reconcile-positions",
                "not_observed",
                {"account": account, "not_observed": str(exc)},
            )
            return Failed(message=f"not observed: {exc}")
        positions = state.snapshot.positions
        open_positions = publish_positions(account, positions, instruments)
        # Drift first: its alert is what a run started by a pushed change is waited for;
        # the engine reads the snapshot, not the validation report.
        outcome = reconcile_account(
            account, state, instruments, policy, run_id=run_id, pushed=pushed
        )
        alerts = publish_drift(account, outcome.stored)
        failing = 0
        expectations = None
        if run_expectations:
            report = validate_positions(positions, instruments, state.snapshot.config.pos_mode)
            alerted = previous_failures(account)
            failing = publish_validation(account, report, already_alerted=alerted)
            failing_now = report.failure_keys()
            if failing_now != alerted:
                remember_failures(account, failing_now)
            expectations = report.to_json()
        held_until = time.time()
    summary = {
        **cycle_summary(
            account,
            positions,
            open_positions,
            outcome,
            failing=failing,
            alerts=alerts,
            expectations=expectations,
        ),
        # When this run held the account's reconcile slot (epoch seconds).
        "held": [held_from, held_until],
    }
    record_run(run_id, account, "reconcile-positions", "completed", summary)
    logger.info(
        "account %s: %s open positions, %s failing rows, %s drift events",
        account,
        summary["positions"],
        failing,
        len(outcome.events),
    )
    return summary
