"""How guard-account runs its subflows (flows.guard.Subflows): each in turn, failures kept,
results as the subflows returned them."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from prefect import flow
from prefect.states import Failed

from flows.guard import Subflows, _update_claims
from posguard.errors import RegistryError
from tests.flows.conftest import Incident


class Cancelled(BaseException):
    """Stands for a cancellation or an interrupt: not an Exception."""


@flow
def completes() -> dict[str, int]:
    return {"rows": 3}


@flow
def raises() -> None:
    raise ValueError("instruments answered nothing")


@flow
def returns_failed() -> Any:
    return Failed(message="not observed: positions answered 503")


@flow
def guard_like() -> tuple[dict[str, Any], dict[str, str]]:
    subflows = Subflows()
    subflows.run("first", raises)
    subflows.run("second", returns_failed)
    subflows.run("third", completes)
    return subflows.done, subflows.failed


def test_failed_subflows_are_kept_and_the_next_ones_still_run(prefect_server: None) -> None:
    done, failed = guard_like()
    assert done == {"third": {"rows": 3}}
    assert list(failed) == ["first", "second"]
    assert "instruments answered nothing" in failed["first"]
    assert "not observed: positions answered 503" in failed["second"]


def test_a_cancellation_is_not_a_failure_and_propagates() -> None:
    subflows = Subflows()
    assert subflows.run("done", lambda: 1)

    def cancelled() -> None:
        raise Cancelled

    with pytest.raises(Cancelled):
        subflows.run("cut", cancelled)
    assert subflows.attempted() == {"done"}
    assert subflows.failed == {}


@flow
def claims_with_a_broken_registry(account: str) -> None:
    def refuse(_store: Any, job: str, _key: str) -> None:
        raise RegistryError(f"could not write the {job} claim: database is locked")

    _update_claims(account, ["instruments", "leverage"], "given back", refuse, "due later")


def test_a_registry_that_refuses_the_claims_bookkeeping_is_said_not_raised(
    incident: Incident, caplog: pytest.LogCaptureFixture
) -> None:
    """On the way out of a failed run, a give-back the registry refuses must neither crash
    the run nor hide why it failed: it is logged, with what it costs."""
    with caplog.at_level(logging.ERROR, logger="prefect.flow_runs"):
        claims_with_a_broken_registry("main")
    assert "main: instruments, leverage not given back in the registry" in caplog.text
    assert "database is locked" in caplog.text
    assert "due later" in caplog.text
