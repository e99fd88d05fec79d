"""`guard-round`: a batch of accounts in one flow run, for team mode's hundreds of accounts.

The per-account flows cost their orchestration (four flow runs, a dozen API calls, a GX run and
four artifacts each) many times over what the account's work costs. A round shares what can be
shared and keeps each account's outcome its own:
- instruments once per environment (validated and recorded when `instruments_seconds` says
  so), public data (tiers, candles) through the process's cache;
- the accounts observed eight at a time in one task run (`observe-accounts`: a failed read
  is that account's "not observed", never its drift);
- every observed account's positions validated in one GX run (failing rows named by account);
- each account settled on its own (`settle-<account>`: reconcile cycle, alerts, run record,
  the leverage plan every `leverage_seconds`, applied only as `leverage_dry_run` and the
  host's `[leverage] apply` allow);
- every account's strict concurrency slot held for the round (flows/limits.py), so an
  on-demand run of one account waits for it rather than racing it.
The round's table artifact lists every account's outcome; the round fails when any account
did, naming them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import pandas as pd
from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact
from prefect.futures import PrefectFuture
from prefect.runtime import flow_run
from prefect.states import Failed
from prefect.task_runners import ThreadPoolTaskRunner

from flows.limits import account_slots
from flows.naming import batch_name
from posguard.errors import PosguardError
from posguard.registry import Registry
from tasks.context import one_settings_per_run, settings, shared_registry
from tasks.fetch import fetch_instruments
from tasks.publish import artifact_key, publish_validation
from tasks.reconcile import record_instruments
from tasks.round import (
    Settled,
    account_run_id,
    observe_accounts,
    settle_account,
    shared_volatility,
    validate_round,
)
from tasks.validate import validate_instruments

if TYPE_CHECKING:
    from expectations.report import ValidationReport

# Eight accounts' reads in flight at once: the simulator and OKX answer in tens of ms, and
# each account's own rate limits still apply inside its client.
_ROUND_RUNNER: Any = ThreadPoolTaskRunner(max_workers=8)


@flow(
    name="guard-round",
    flow_run_name=batch_name,
    log_prints=False,
    task_runner=_ROUND_RUNNER,
)
@one_settings_per_run
def guard_round(
    accounts: list[str],
    policy: Literal["report", "heal"] = "report",
    dry_run: bool | None = None,
    run_expectations: bool = True,
) -> Any:
    """Guard `accounts` in one run: instruments, positions, validation, reconcile, leverage."""
    logger = get_run_logger()
    config = settings()
    round_id = str(flow_run.id) if flow_run.id else None
    apply = not (config.schedules.leverage_dry_run if dry_run is None else dry_run)
    outcome: dict[str, str] = {}
    rows: dict[str, dict[str, Any]] = {}
    registry = shared_registry()
    with account_slots(accounts):
        instruments, unread = _instruments(accounts, registry, logger)
        observed = observe_accounts([a for a in accounts if a in instruments], registry)
        states = observed.states
        for account, reason in {**unread, **observed.missed}.items():
            # Not observed is never "flat": no drift is concluded from a failed read.
            logger.error("account %s not observed this round: %s", account, reason)
            outcome[account] = "not observed"
            rows[account] = {"account": account, "state": "not observed", "detail": reason}
            _record(registry, round_id, account, "not_observed", {"not_observed": reason})
        reports: dict[str, ValidationReport] = {}
        unvalidated = None
        if run_expectations and states:
            try:
                reports = validate_round(states, instruments)
            except Exception as exc:  # its task run is Failed with the traceback
                # The accounts are still reconciled: a validation that could not run says
                # nothing about drift. The round fails at its end, naming why.
                logger.error("expectations not run this round: %s", exc)
                unvalidated = f"expectations not run: {exc}"
        # Due across the team (the registry's marks), not per worker: a round that lands on
        # another worker does not plan the account's leverage again within the period.
        planning = registry.claim_due("leverage", list(states), config.schedules.leverage_seconds)
        volatility: dict[str, Any] = {}
        unplanned = None
        if planning:
            try:
                volatility = shared_volatility({a: states[a] for a in planning})
            except Exception as exc:  # its task run is Failed with the traceback
                # Reconciliation does not need it; the plans are due again next round.
                logger.error("leverage not planned this round: %s", exc)
                registry.give_back_due("leverage", planning)
                planning = set()
                unplanned = f"leverage not planned: {exc}"
        settling: dict[str, PrefectFuture[Settled]] = {
            account: settle_account.submit(
                account,
                state,
                instruments[account],
                reports.get(account),
                registry,
                policy=policy,
                round_id=round_id,
                leverage=account in planning,
                apply_leverage=apply,
                volatility=volatility.get(config.account(account).environment),
            )
            for account, state in states.items()
        }
        for account, settle in settling.items():
            try:
                settled = settle.result()
            except Exception as exc:  # the account's task run is Failed with the traceback
                logger.error("account %s not settled: %s", account, exc)
                if account in planning:
                    # Its leverage plan (after the cycle) did not happen: due again.
                    registry.give_back_due("leverage", [account])
                outcome[account] = "failed"
                rows[account] = {"account": account, "state": "failed", "detail": str(exc)}
                _record(registry, round_id, account, "failed", {"failed": str(exc)})
                continue
            outcome[account] = "failed expectations" if settled.failures else "Completed"
            rows[account] = _row(settled)
    create_table_artifact(
        key=artifact_key("round", *(accounts[:1] or ["empty"])),
        table=[rows.get(a, {"account": a, "state": outcome.get(a, "not run")}) for a in accounts],
        description=f"Guard round over {len(accounts)} accounts: one row per account",
    )
    failed = {a: s for a, s in outcome.items() if s not in ("Completed", "failed expectations")}
    unfinished = [reason for reason in (unvalidated, unplanned) if reason]
    if failed or unfinished:
        said = [f"accounts not completed: {failed}"] if failed else []
        return Failed(message="; ".join([*said, *unfinished]))
    return outcome


def _record(
    registry: Registry, round_id: str | None, account: str, status: str, detail: dict[str, str]
) -> None:
    run_id = account_run_id(round_id, account)
    if run_id is not None:
        registry.record_run(
            run_id, account, "reconcile-positions", status, {"account": account, **detail}
        )


def _row(settled: Settled) -> dict[str, Any]:
    summary = settled.summary
    events = summary["drift_events"]
    plan = (settled.leverage or {}).get("plan") or []
    return {
        "account": settled.account,
        "state": "failed expectations" if settled.failures else "ok",
        "open positions": summary["positions"],
        "failing expectation rows": summary["failing_expectation_rows"],
        "drift events": ", ".join(f"{e['instId']} {e['status']} {e['cause']}" for e in events[:5])
        + (f" (+{len(events) - 5})" if len(events) > 5 else ""),
        "leverage changes planned": sum(1 for p in plan if p["action"] in ("raise", "lower"))
        if settled.leverage
        else None,
    }


def _instruments(
    accounts: list[str], registry: Registry, logger: Any
) -> tuple[dict[str, pd.DataFrame], dict[str, str]]:
    """Each account's instruments, read once per environment; the accounts of an environment
    whose read failed, with the reason (they are not observed this round)."""
    by_environment: dict[str, list[str]] = {}
    for account in accounts:
        by_environment.setdefault(settings().account(account).environment, []).append(account)
    found: dict[str, pd.DataFrame] = {}
    unread: dict[str, str] = {}
    for environment, members in by_environment.items():
        try:
            frame = fetch_instruments(members[0])
        except PosguardError as exc:
            logger.error("instruments of %s not read: %s", environment, exc)
            unread.update(dict.fromkeys(members, f"instruments not read: {exc}"))
            continue
        every = settings().schedules.instruments_seconds
        if registry.claim_due("instruments", [environment], every):
            try:
                report = validate_instruments(frame)
                publish_validation(members[0], report, what="instruments")
                record_instruments(members[0], frame)
            except BaseException:
                # Claimed for the whole team: a check that did not happen is due again.
                registry.give_back_due("instruments", [environment])
                raise
        found.update(dict.fromkeys(members, frame))
    return found, unread
