"""One flow run, one version of the settings: an edit made during a run takes effect at the
next run, never between its stages (the settings follow their files: posguard.settings)."""

from __future__ import annotations

import importlib
import inspect
import os
import pkgutil
from pathlib import Path
from typing import Any

import cloudpickle
import pytest
from prefect import Flow, flow, task

from tasks.context import PINNED_MARK, one_settings_per_run, settings
from tests.tasks.conftest import configured


def every_flow() -> dict[str, Flow[Any, Any]]:
    """Every flow defined or exposed in flows/ (the package, its modules, subpackages), found
    rather than listed: a new one is held to the rule without anyone adding it here."""
    import flows

    names = ["flows"] + [info.name for info in pkgutil.walk_packages(flows.__path__, "flows.")]
    found: dict[str, Flow[Any, Any]] = {}
    seen: set[int] = set()
    for module_name in names:
        for name, value in vars(importlib.import_module(module_name)).items():
            if isinstance(value, Flow) and id(value) not in seen:
                seen.add(id(value))
                found[f"{inspect.unwrap(value.fn).__module__}.{name}"] = value
    return found


FLOWS = every_flow()


def write(config: Path, grace: float) -> None:
    config.write_text(f"[drift]\ngrace_seconds = {grace}\n")
    stamp = config.stat()  # older than the window in which files are compared by content
    os.utime(config, ns=(stamp.st_atime_ns, stamp.st_mtime_ns - 10_000_000_000))


@task
def grace_now() -> float:
    return settings().drift.grace_seconds


@task
def edit(config: Path, grace: float) -> None:
    write(config, grace)


@flow
@one_settings_per_run
def a_run(config: Path) -> list[Any]:
    before = grace_now()
    edit(config, 2)
    # A task in one of Prefect's threads, and the flow body itself.
    return [before, grace_now.submit().result(), settings().drift.grace_seconds]


@pytest.mark.usefixtures("prefect_server")
def test_a_run_sees_the_settings_it_started_with_and_the_next_run_the_edit(
    tmp_path: Path,
) -> None:
    config = tmp_path / "posguard.toml"
    write(config, 4)
    with configured(config):
        assert a_run(config) == [4, 4, 4]
        assert a_run(config) == [2, 2, 2]
        assert settings().drift.grace_seconds == 2  # outside a run: the file as it is


def test_the_flows_are_found() -> None:
    assert {
        "flows.fanout.guard_accounts",
        "flows.guard.guard_account",
        "flows.instruments.sync_instruments",
        "flows.leverage.recalculate_leverage",
        "flows.reconcile.reconcile_positions",
        "flows.round.guard_round",
    } <= set(FLOWS)


@pytest.mark.parametrize("where", list(FLOWS))
def test_every_flow_runs_on_one_version_of_the_settings(where: str) -> None:
    flow_ = FLOWS[where]
    assert getattr(flow_.fn, PINNED_MARK, False), where
    # Prefect versions a flow by its function's file, and serve pickles it.
    assert inspect.getsourcefile(flow_.fn) == inspect.getsourcefile(inspect.unwrap(flow_.fn))
    assert cloudpickle.loads(cloudpickle.dumps(flow_)).name == flow_.name
