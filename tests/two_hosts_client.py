"""Run inside the worker host's namespace by tests/test_two_hosts.py: asks the server host's
API for a guard run as a person would, and reports what happened as one JSON line.

    python tests/two_hosts_client.py API_URL

PREFECT_API_URL, PREFECT_API_AUTH_STRING and POSGUARD_CONFIG come from the environment (set
before Prefect is imported, as Prefect reads them).
"""

from __future__ import annotations

import json
import sys

import httpx


def main(api_url: str) -> None:
    anonymous = httpx.post(f"{api_url}/flows/filter", json={}, timeout=10).status_code

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.objects import FlowRun
    from prefect.deployments import run_deployment
    from prefect.events.filters import EventFilter, EventNameFilter

    from posguard.registry import Registry
    from posguard.settings import load_settings

    # The run asks to apply leverage; the worker host's posguard.toml decides.
    run = run_deployment(
        name="guard-account/main",
        parameters={"account": "main", "dry_run": False, "run_expectations": False},
        timeout=300,
        poll_interval=1,
    )
    if not isinstance(run, FlowRun):
        raise TypeError("run_deployment returned a coroutine in sync code")
    with get_client(sync_client=True) as client:
        started = client.read_events(
            filter=EventFilter(event=EventNameFilter(name=["posguard.worker.started-flow-run"])),
            limit=20,
        ).events
    with Registry(load_settings().resolved_registry_url) as registry:
        changes = registry.leverage_changes("main")
    print(
        json.dumps(
            {
                "anonymous_status": anonymous,
                "state": run.state.name if run.state else None,
                "workers": sorted({e.resource.id for e in started}),
                "leverage_outcomes": sorted({c["outcome"] for c in changes}),
                "leverage_reasons": sorted({str(c["reason"]) for c in changes}),
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1])
