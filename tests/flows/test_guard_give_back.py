"""A due job claimed by a team's guard run and then failed is given back: due again at once,
for whichever worker runs next (the registry's side: tests/registry)."""

from __future__ import annotations

from pathlib import Path

from flows import guard_account
from posguard.registry import Registry
from posguard.sim import SimExchange
from tasks.context import settings
from tests.flows.conftest import flows_against
from tests.sim.conftest import scenario

OPEN = [{"at": "+0s", "action": "open", "instId": "XRP-USDT-SWAP", "sz": "10", "px": "1.93"}]
HOUR = 3600.0


def test_instruments_that_fail_in_a_due_run_are_due_again(
    tmp_path: Path, prefect_server: None
) -> None:
    faults = [{"endpoint": "instruments", "kind": "malformed", "times": 1000}]
    exchange = SimExchange(scenario(name="instruments-down", steps=OPEN, faults=faults))
    with flows_against(exchange, tmp_path):
        state = guard_account("main", when_due=True, return_state=True)
        environment = settings().account("main").environment
        with Registry(settings().resolved_registry_url) as registry:
            # Claiming succeeds only for a job nobody holds as done within the hour.
            due_again = registry.claim_due("instruments", [environment], HOUR)
            leverage_again = registry.claim_due("leverage", ["main"], HOUR)
            # Claimed now, as the next run would: no longer due.
            now_held = registry.claim_due("instruments", [environment], HOUR)
    assert state.is_failed()
    assert state.message == "main: instruments, reconcile, leverage did not complete"
    # Leverage reads the instruments too, so both failed and both are due again.
    assert due_again == {environment}
    assert leverage_again == {"main"}
    assert now_held == set()
