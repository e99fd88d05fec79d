"""The deployments, declared once: each flow per account, with its schedule, parameters,
tags and concurrency (settings.schedules).

`planned` is the declaration. From it come the deployments `posguard serve` registers
(`deployments_for`) and `prefect.yaml` for `prefect deploy --all` on a process work pool
(`prefect_yaml`; `python -m deployments.build > prefect.yaml` writes it, and a test checks the
committed file is what the example settings give).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import prefect
import yaml
from prefect import Flow
from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
from prefect.events import DeploymentEventTrigger, DeploymentTriggerTypes, TriggerTypes
from prefect.schedules import Interval

from flows import guard_account, recalculate_leverage, reconcile_positions, sync_instruments
from posguard.settings import Settings
from tasks.publish import POSITION_CHANGED, account_resource

POOL = "posguard"


@dataclass(frozen=True)
class Planned:
    """One deployment of one flow for one account."""

    flow: Flow[..., Any]
    entrypoint: str
    account: str
    parameters: dict[str, Any]
    description: str
    interval_seconds: int | None = None  # None: on demand only
    # A run that finds the previous one still running is cancelled, not queued: late runs
    # must not pile up behind a slow or stopped worker (the flow also takes a strict
    # per-account concurrency limit).
    cancel_new: bool = False
    tags: list[str] = field(default_factory=list)
    # Started by posguard watch's `posguard.position.changed` events on the account.
    on_change: bool = False
    name: str = ""  # the deployment's name; default: the account's

    @property
    def deployment_name(self) -> str:
        return self.name or self.account


def planned(settings: Settings) -> list[Planned]:
    plans = settings.schedules
    out: list[Planned] = []
    for account in sorted(settings.accounts):
        tags = ["posguard", f"account:{account}"]
        out += [
            Planned(
                sync_instruments,
                "flows/instruments.py:sync_instruments",
                account,
                {"account": account},
                f"Instrument specs for {account}, validated and recorded",
                plans.instruments_seconds,
                tags=tags,
            ),
            Planned(
                reconcile_positions,
                "flows/reconcile.py:reconcile_positions",
                account,
                {"account": account, "policy": settings.drift.heal},
                f"Positions of {account} vs the registry",
                plans.reconcile_seconds,
                cancel_new=True,
                tags=tags,
            ),
            *(
                [
                    # Beside the schedule, not instead of it: a run per pushed change, with no
                    # deployment limit (a scheduled run in progress must not cancel it); the
                    # flow's strict per-account limit runs them one after the other.
                    Planned(
                        reconcile_positions,
                        "flows/reconcile.py:reconcile_positions",
                        account,
                        {"account": account, "policy": settings.drift.heal},
                        f"Positions of {account} vs the registry, when posguard watch sees "
                        "them change (OKX's private stream)",
                        tags=[*tags, "on-change"],
                        on_change=True,
                        name=f"{account}-on-change",
                    )
                ]
                if settings.watch.trigger
                else []
            ),
            Planned(
                recalculate_leverage,
                "flows/leverage.py:recalculate_leverage",
                account,
                {"account": account, "dry_run": plans.leverage_dry_run},
                f"Volatility-targeted leverage plan for {account}",
                plans.leverage_seconds,
                tags=tags,
            ),
            Planned(
                guard_account,
                "flows/guard.py:guard_account",
                account,
                {
                    "account": account,
                    "policy": settings.drift.heal,
                    "dry_run": plans.leverage_dry_run,
                },
                f"All of the above for {account}, on demand",
                tags=tags,
            ),
        ]
    return out


def _limit(plan: Planned) -> ConcurrencyLimitConfig | None:
    if not plan.cancel_new:
        return None
    return ConcurrencyLimitConfig(limit=1, collision_strategy=ConcurrencyLimitStrategy.CANCEL_NEW)


def trigger_name(account: str) -> str:
    return f"position-changed-{account}"


# What a run started by a change is told: OKX's time of the change (0 when the push had none:
# the run then waits the grace window from now) and the pushed changes themselves, its second
# observation (a string that is one template alone keeps the value's JSON type).
CHANGE_PARAMETERS = {
    "changed_at_ms": "{{ (event.payload.venue_ms or 0) }}",
    "pushed": "{{ event.payload.changes }}",
}
TEAM_ON_CHANGE = "on-change"  # team mode's one on-change deployment, for every account


def _trigger_spec(plan: Planned) -> dict[str, Any]:
    """The deployment trigger, as prefect.yaml writes it and DeploymentEventTrigger takes it:
    a run per `posguard.position.changed` event whose resource is this account."""
    return {
        "name": trigger_name(plan.account),
        "enabled": True,
        "match": {"prefect.resource.id": account_resource(plan.account)["prefect.resource.id"]},
        "expect": [POSITION_CHANGED],
        "parameters": {**plan.parameters, **CHANGE_PARAMETERS},
    }


def team_trigger_spec(settings: Settings) -> dict[str, Any]:
    """Team mode's trigger: one automation for every account (hundreds of accounts would be
    hundreds of automations), the account taken from the event's payload."""
    return {
        "name": "position-changed-any-account",
        "enabled": True,
        "match": {"prefect.resource.id": account_resource("*")["prefect.resource.id"]},
        "expect": [POSITION_CHANGED],
        "parameters": {
            "account": "{{ event.payload.account }}",
            "policy": settings.drift.heal,
            **CHANGE_PARAMETERS,
        },
    }


def event_trigger(spec: dict[str, Any]) -> DeploymentEventTrigger:
    return DeploymentEventTrigger(
        name=spec["name"],
        enabled=True,
        match=spec["match"],
        expect=set(spec["expect"]),
        parameters=spec["parameters"],
    )


def _triggers(plan: Planned) -> list[DeploymentTriggerTypes | TriggerTypes]:
    return [event_trigger(_trigger_spec(plan))] if plan.on_change else []


def deployments_for(
    settings: Settings, *, scheduled: bool = True, paused: bool = False
) -> list[Any]:
    """RunnerDeployments for `serve`; without schedules (or paused) they run on demand."""
    built: list[Any] = []
    for plan in planned(settings):
        schedule: dict[str, Any] = {}
        if scheduled and plan.interval_seconds is not None:
            schedule["schedule"] = Interval(
                timedelta(seconds=plan.interval_seconds), parameters={"account": plan.account}
            )
        built.append(
            plan.flow.to_deployment(
                name=plan.deployment_name,
                paused=paused,
                parameters=plan.parameters,
                tags=plan.tags,
                description=plan.description,
                concurrency_limit=_limit(plan),
                triggers=_triggers(plan),
                **schedule,
            )
        )
    return built


HEADER = """\
# Generated by `python -m deployments.build > prefect.yaml` from posguard.example.toml: edit
# deployments/build.py (the one declaration), not this file.
# `prefect deploy --all` deploys posguard's flows for each account to a process work pool
# (prefect work-pool create posguard --type process; then POSGUARD_PROJECT_DIR=$PWD prefect
# worker start --pool posguard). `posguard serve` registers the same deployments without a pool.
"""


def prefect_yaml(settings: Settings) -> str:
    """prefect.yaml for every account of `settings`, from the same declaration."""
    deployments: list[dict[str, Any]] = []
    for plan in planned(settings):
        entry: dict[str, Any] = {
            "name": plan.deployment_name,
            "entrypoint": plan.entrypoint,
            "description": plan.description,
            "parameters": dict(plan.parameters),
            "tags": list(plan.tags),
        }
        if plan.cancel_new:
            entry["concurrency_limit"] = {"limit": 1, "collision_strategy": "CANCEL_NEW"}
        if plan.interval_seconds is not None:
            entry["schedules"] = [{"interval": plan.interval_seconds, "timezone": "UTC"}]
        if plan.on_change:
            entry["triggers"] = [{"type": "event", **_trigger_spec(plan)}]
        entry["work_pool"] = {"name": POOL}
        deployments.append(entry)
    document = {
        "name": "posguard",
        "prefect-version": prefect.__version__,  # the pinned version, not a second copy
        "pull": [
            {
                "prefect.deployments.steps.set_working_directory": {
                    "directory": "{{ $POSGUARD_PROJECT_DIR }}"
                }
            }
        ],
        "deployments": deployments,
    }
    return HEADER + "\n" + yaml.safe_dump(document, sort_keys=False, width=100)


if __name__ == "__main__":
    from posguard.settings import load_settings

    example = sys.argv[1] if len(sys.argv) > 1 else "posguard.example.toml"
    sys.stdout.write(prefect_yaml(load_settings(Path(example))))
