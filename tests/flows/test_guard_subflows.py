"""How guard-account runs its subflows (flows.guard.Subflows): each in turn, failures kept,
results as the subflows returned them."""

from __future__ import annotations

from typing import Any

import pytest
from prefect import flow
from prefect.states import Failed

from flows.guard import Subflows


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
