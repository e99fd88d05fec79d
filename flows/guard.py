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
) -> Any:
    """Run the three flows for one account (each a subflow with its own state in the UI).

    A failed subflow does not stop the others (leverage is still planned when a reconcile
    cycle was not observed), but it fails this run: a red account must not look green.
    """
    states = {
        "instruments": ended(sync_instruments(account, return_state=True)),
        "reconcile": ended(
            reconcile_positions(account, policy, run_expectations, return_state=True)
        ),
        "leverage": ended(recalculate_leverage(account, dry_run, return_state=True)),
    }
    failed = [name for name, state in states.items() if not state.is_completed()]
    if failed:
        return Failed(message=f"{account}: {', '.join(failed)} did not complete")
    return {name: state.result() for name, state in states.items()}
