"""Live leverage needs two keys: the run's dry_run=false and this host's `[leverage] apply`.

A run from Prefect that asks to apply on a host whose posguard.toml does not allow it changes
nothing: every change of its plan is recorded as refused by configuration.
"""

from __future__ import annotations

from flows import recalculate_leverage
from posguard.registry import Registry
from posguard.stages.leverage_apply import REFUSED_BY_CONFIGURATION
from tasks.context import settings
from tests.flows.conftest import Incident


def test_a_run_asking_to_apply_on_a_host_that_does_not_allow_it_changes_nothing(
    incident: Incident,
) -> None:
    assert settings().leverage.apply is False  # the default: runs may not change leverage
    report = recalculate_leverage("main", dry_run=False)
    changes = [o for o in report["outcomes"] if o["outcome"] != "duplicate"]
    assert changes, report["outcomes"]  # the incident's plan does want changes
    assert {o["outcome"] for o in changes} == {"blocked"}
    assert {o["reason"] for o in changes} == {REFUSED_BY_CONFIGURATION}
    with Registry(settings().resolved_registry_url) as registry:
        recorded = registry.leverage_changes("main")
    assert recorded
    assert {r["outcome"] for r in recorded} == {"blocked"}
    # Nothing reached the exchange: the plan's current leverage is still what it read.
    again = recalculate_leverage("main", dry_run=True)
    before = {(p["instId"], p["mgnMode"]): p["lever"] for p in report["plan"]}
    after = {(p["instId"], p["mgnMode"]): p["lever"] for p in again["plan"]}
    assert after == before
