"""The tasks of a guard round: many accounts in one flow run, each account's work its own.

An account is observed (`observe-<account>`), its positions validated with the round's other
accounts in one GX run, then settled (`settle-<account>`: the reconcile cycle, alerts, the
leverage plan when due, the run record). The task runs carry the account's outcome in the UI;
artifacts are written where there is something to read (failures, drift, a leverage plan) and
the round's own table lists every account.
"""

from __future__ import annotations

import contextvars
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE

from posguard.drift.model import HealPolicy
from posguard.errors import PosguardError
from posguard.frames.contract import positions_frame
from posguard.leverage.volatility import Volatility
from posguard.registry import Registry
from posguard.stages.leverage_plan import market_volatility, recalculate
from tasks.context import okx, settings
from tasks.fetch import AccountState, read_account_state
from tasks.publish import positions_table, publish_drift, publish_leverage, publish_validation
from tasks.reconcile import cycle_summary, reconcile_in
from tasks.retry import RETRYING, with_retries

if TYPE_CHECKING:
    from expectations.report import ValidationReport

# Submitted to the round's thread pool: a task timeout there cannot interrupt a blocking call
# (Prefect says so on every task run); the OKX client and the database bound their own calls.
_IN_POOL: dict[str, Any] = {"cache_policy": NO_CACHE, "timeout_seconds": None}


def account_run_id(
    round_id: str | None, account: str, flow: str = "reconcile-positions"
) -> str | None:
    """The registry's run id of one account's `flow` within a round: one row each, derived
    (the fan-out finds an account's outcome by it)."""
    if round_id is None:
        return None
    return str(uuid.uuid5(uuid.UUID(round_id), f"{flow}:{account}"))


@dataclass
class Observed:
    states: dict[str, AccountState] = field(default_factory=dict)
    # Why an account was not observed (its error's message): never its drift.
    missed: dict[str, str] = field(default_factory=dict)


# Retried inside, per account (a task retry would read every account again).
@task(name="observe-accounts", **_IN_POOL)
def observe_accounts(accounts: list[str], registry: Registry, parallel: int = 8) -> Observed:
    """Positions (leverage resolved) and their evidence for every account, `parallel` at a
    time. One task run for the round: a task run per account cost the Prefect server more
    than the account's reads. A failed read is that account's alone, retried here like a
    task's (`is_retryable`, backoff), and named in `missed`."""
    observed = Observed()

    def observe(account: str) -> AccountState:
        return with_retries(lambda: _observe(account, registry))

    with ThreadPoolExecutor(parallel, thread_name_prefix="observe") as pool:
        # In a copy of this context each: the run's settings (and Prefect's run context).
        futures = {
            account: pool.submit(contextvars.copy_context().run, observe, account)
            for account in accounts
        }
        for account, future in futures.items():
            try:
                observed.states[account] = future.result()
            except PosguardError as exc:
                observed.missed[account] = str(exc)
    return observed


def _observe(account: str, registry: Registry) -> AccountState:
    with okx(account) as client:
        return read_account_state(client, registry)


@task(name="validate-round", **_IN_POOL)
def validate_round(
    states: dict[str, AccountState], instruments: dict[str, pd.DataFrame]
) -> dict[str, ValidationReport]:
    """Every observed account's positions in one GX run per position mode."""
    from expectations.runner import shared_runner

    runner = shared_runner(settings().state_dir / "data-docs")
    contracts = {
        account: positions_frame(state.snapshot.positions, instruments[account], account)
        for account, state in states.items()
    }
    modes = {account: state.snapshot.config.pos_mode for account, state in states.items()}
    tolerance = settings().notional_tolerance
    reports = runner.validate_accounts(contracts, modes, tolerance=tolerance)
    if any(not report.success for report in reports.values()):
        # Data Docs cost a second run: built only when someone has failures to read.
        failing = [a for a, report in reports.items() if not report.success]
        reports.update(
            runner.validate_accounts(
                {a: contracts[a] for a in failing},
                modes,
                tolerance=tolerance,
                build_docs=True,
            )
        )
    return reports


@task(name="market-volatility", **{**RETRYING, **_IN_POOL})
def shared_volatility(states: dict[str, AccountState]) -> dict[str, dict[str, Volatility]]:
    """Each environment's volatility per instrument held open in any of these accounts: one
    candles read and one estimate per instrument for the round, not per account."""
    config = settings()
    wanted: dict[str, tuple[str, set[str]]] = {}
    for account, state in states.items():
        environment = config.account(account).environment
        positions = state.snapshot.positions
        ids = set(positions.loc[positions["is_open"], "instId"].astype(str))
        wanted.setdefault(environment, (account, set()))[1].update(ids)
    found: dict[str, dict[str, Volatility]] = {}
    for environment, (account, ids) in wanted.items():
        with okx(account) as client:
            found[environment] = market_volatility(client, sorted(ids), config.leverage)
    return found


@dataclass
class Settled:
    account: str
    summary: dict[str, Any]
    leverage: dict[str, Any] | None = None
    failures: list[str] = field(default_factory=list)


@task(name="settle-account", task_run_name="settle-{account}", **_IN_POOL)
def settle_account(
    account: str,
    state: AccountState,
    instruments: pd.DataFrame,
    report: ValidationReport | None,
    registry: Registry,
    *,
    policy: HealPolicy | None,
    round_id: str | None,
    leverage: bool,
    apply_leverage: bool,
    volatility: dict[str, Volatility] | None = None,
) -> Settled:
    """One account's reconcile cycle, alerts, leverage plan (when due) and run records."""
    run_id = account_run_id(round_id, account)
    positions = state.snapshot.positions
    failing = 0
    expectations = None
    if report is not None:
        alerted = registry.alerted_failures(account)
        failing_now = report.failure_keys()
        # Artifacts only when there is something to read: failures now, or failures that
        # the last run alerted on and that are gone (the artifact says so).
        if failing_now or alerted:
            failing = publish_validation.fn(account, report, already_alerted=alerted)
        if failing_now != alerted:
            registry.save_alerted_failures(account, failing_now)
        expectations = report.to_json()
    outcome = reconcile_in(registry, account, state, instruments, policy, round_id)
    alerts = publish_drift.fn(account, outcome.stored)
    summary = cycle_summary(
        account,
        positions,
        positions_table(positions, instruments),
        outcome,
        failing=failing,
        alerts=alerts,
        expectations=expectations,
    )
    if run_id is not None:
        registry.record_run(run_id, account, "reconcile-positions", "completed", summary)
    settled = Settled(account, summary)
    if report is not None and not report.success:
        settled.failures.append(f"{len(report.failed)} expectations failed")
    if leverage:
        settled.leverage = plan_leverage(
            account, state, registry, round_id, apply_leverage, volatility
        )
    return settled


def plan_leverage(
    account: str,
    state: AccountState,
    registry: Registry,
    round_id: str | None,
    apply: bool,
    volatility: dict[str, Volatility] | None,
) -> dict[str, Any]:
    """The leverage plan from the round's snapshot (no second positions read); applied only
    when the round asks and this host's configuration allows it (`[leverage] apply`)."""
    config = settings()
    with okx(account) as client:
        report = recalculate(
            client,
            config.leverage,
            account_override=config.account(account).leverage,
            apply=apply,
            host_allows=config.leverage.apply,
            registry=registry if apply else None,
            run_id=round_id,
            snapshot=state.snapshot,
            volatility=volatility,
        )
    publish_leverage.fn(account, report)
    summary = {
        "account": account,
        "plan": report.plan_json(),
        "outcomes": [o.to_json() for o in report.outcomes],
    }
    run_id = account_run_id(round_id, account, "recalculate-leverage")
    if run_id is not None:
        registry.record_run(run_id, account, "recalculate-leverage", "completed", summary)
    return summary
