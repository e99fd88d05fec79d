"""`guard-account`: instruments, then positions, then leverage, for one account (several
accounts in one run: `guard-round`, flows/round.py)."""

from __future__ import annotations

from typing import Any, Literal

from prefect import State, flow
from prefect.states import Failed

from flows.instruments import sync_instruments
from flows.leverage import recalculate_leverage
from flows.naming import run_name
from flows.reconcile import reconcile_positions
from tasks.context import registry, settings


def ended(state: object) -> State[Any]:
    """A sync subflow called with `return_state=True` gives its final state (Prefect's types
    also allow an awaitable, for async callers)."""
    if not isinstance(state, State):
        raise TypeError(f"a subflow returned {type(state).__name__}, not its state")
    return state


@flow(name="guard-account", flow_run_name=run_name, log_prints=False)
def guard_account(
    account: str = "main",
    policy: Literal["report", "heal"] = "report",
    dry_run: bool = True,
    run_expectations: bool = True,
    when_due: bool = False,
) -> Any:
    """Run the three flows for one account (each a subflow with its own state in the UI).

    A failed subflow does not stop the others (leverage is still planned when a reconcile
    cycle was not observed), but it fails this run: a red account must not look green.
    `when_due` (the team's fan-out): instruments and leverage only when their schedules say
    so (`schedules.instruments_seconds` per environment, `leverage_seconds` per account),
    claimed in the registry across the team as rounds claim them; on demand, all three.
    """
    due = _due_jobs(account) if when_due else {"instruments", "leverage"}
    states: dict[str, State[Any]] = {}
    try:
        if "instruments" in due:
            states["instruments"] = ended(sync_instruments(account, return_state=True))
        states["reconcile"] = ended(
            reconcile_positions(account, policy, run_expectations, return_state=True)
        )
        if "leverage" in due:
            states["leverage"] = ended(recalculate_leverage(account, dry_run, return_state=True))
    except BaseException:
        # Claimed for the whole team: work that did not happen (a crash, a cancellation) is
        # due again at once.
        if when_due:
            _give_back(account, [job for job in due if job not in states])
        raise
    failed = [name for name, state in states.items() if not state.is_completed()]
    if when_due:
        _give_back(account, [n for n in failed if n in ("instruments", "leverage")])
    if failed:
        return Failed(message=f"{account}: {', '.join(failed)} did not complete")
    done: dict[str, Any] = {name: state.result() for name, state in states.items()}
    return {**done, **{job: "not due" for job in ("instruments", "leverage") if job not in due}}


def _due_jobs(account: str) -> set[str]:
    config = settings()
    environment = config.account(account).environment
    with registry() as store:
        due = set()
        if store.claim_due("instruments", [environment], config.schedules.instruments_seconds):
            due.add("instruments")
        try:
            if store.claim_due("leverage", [account], config.schedules.leverage_seconds):
                due.add("leverage")
        except BaseException:
            if due:  # the instruments check is not left claimed by a run that never starts
                store.give_back_due("instruments", [environment])
            raise
    return due


def _give_back(account: str, jobs: list[str]) -> None:
    """Claimed jobs whose flow failed are due again at the next run."""
    if not jobs:
        return
    with registry() as store:
        for job in jobs:
            key = settings().account(account).environment if job == "instruments" else account
            store.give_back_due(job, [key])
