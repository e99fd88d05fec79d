"""Team mode end to end: Prefect on PostgreSQL, two warm pool workers, the guard flow fanned
out over 20 simulator accounts (in rounds, then one account per run); every account's events
land once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    DeploymentFilter,
    DeploymentFilterId,
    FlowFilter,
    FlowFilterName,
    TaskRunFilter,
    TaskRunFilterName,
    TaskRunFilterState,
    TaskRunFilterStateType,
)
from prefect.client.schemas.objects import FlowRun, StateType
from prefect.deployments import run_deployment
from prefect.events import Event
from prefect.events.filters import EventFilter, EventNameFilter
from prefect.settings import PREFECT_API_URL, temporary_settings

from deployments.build import TEAM_ON_CHANGE
from deployments.team import Team, TeamOptions, deploy_to_pool
from deployments.watch import event_of
from posguard.registry import Registry
from posguard.settings import load_settings
from posguard.sim import SimExchange, SimServer
from posguard.watch import Change, Notice
from tests.conftest import ROOT
from tests.helpers import free_port
from tests.sim.conftest import scenario

ACCOUNTS = [f"acct{n:02d}" for n in range(20)]


def changed_run(api_url: str, account: str, venue_ms: int) -> FlowRun:
    """posguard watch's event for a change on `account` (posted as any host's watcher would
    send it): the team's one on-change deployment runs that account's reconcile on the pool."""
    change = Change(
        "XRP-USDT-SWAP", "net", "cross", "10", "0", "1", str(venue_ms), venue_ms + 1000,
        "event_update", "5",
    )  # fmt: skip
    event = Event(**event_of(Notice(account, (change,), {})))
    posted = httpx.post(f"{api_url}/events", json=[event.model_dump(mode="json")], timeout=10)
    assert posted.status_code == 204, posted.text
    deadline = time.monotonic() + 120
    with get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name(f"reconcile-positions/{TEAM_ON_CHANGE}")
        while time.monotonic() < deadline:
            runs = client.read_flow_runs(
                deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment.id]))
            )
            if runs and runs[0].state is not None and runs[0].state.is_final():
                return runs[0]
            time.sleep(0.5)
    raise AssertionError(f"no on-change run finished for {account}: {runs}")


ADMIN = "host=127.0.0.1 port=5432 dbname=postgres"


@pytest.fixture
def databases() -> Iterator[tuple[str, str]]:
    suffix = uuid.uuid4().hex[:10]
    names = (f"posguard_prefect_{suffix}", f"posguard_registry_{suffix}")
    try:
        with psycopg.connect(ADMIN, autocommit=True, connect_timeout=3) as admin:
            admin.execute(f'CREATE DATABASE "{names[1]}"')
    except psycopg.OperationalError:
        pytest.fail("team mode needs the local PostgreSQL at 127.0.0.1:5432")
    try:
        yield names
    finally:
        with psycopg.connect(ADMIN, autocommit=True) as admin:
            for name in names:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize(
    "redis_url",
    [
        # Each on a worker of its own from the start.
        pytest.param(None, id="in-memory-messaging", marks=pytest.mark.xdist_group("team")),
        pytest.param(
            "redis://127.0.0.1:6379/0",
            id="redis-messaging",
            marks=pytest.mark.xdist_group("team-redis"),
        ),
    ],
)
def test_guard_flow_for_20_accounts_on_a_postgres_server_with_two_workers(
    tmp_path: Path, databases: tuple[str, str], redis_url: str | None
) -> None:
    prefect_db, registry_db = databases
    accounts = [
        {"name": a, "api_key": f"{a}-key", "secret_key": f"{a}-secret", "passphrase": f"{a}-pass"}
        for a in ACCOUNTS
    ]
    steps = []
    for account in ACCOUNTS:  # each account's XRP position is closed on the exchange
        steps += [
            {
                "at": "+0s",
                "action": "open",
                "account": account,
                "instId": "XRP-USDT-SWAP",
                "sz": "10",
                "px": "1.93",
            },
            {"at": "+1s", "action": "close", "account": account, "instId": "XRP-USDT-SWAP"},
        ]
    exchange = SimExchange(scenario(name="team", accounts=accounts, steps=steps))
    exchange.advance(seconds=10)
    registry_url = f"postgresql+psycopg://127.0.0.1:5432/{registry_db}"
    with SimServer(exchange) as sim:
        lines = [f'state_dir = "{tmp_path}"', f'registry_url = "{registry_url}"', ""]
        for spec in accounts:
            lines += [
                f"[accounts.{spec['name']}]",
                f'api_key = "{spec["api_key"]}"',
                f'secret_key = "{spec["secret_key"]}"',
                f'passphrase = "{spec["passphrase"]}"',
                "demo = true",
                f'base_url = "{sim.base_url}"',
                "",
            ]
        config = tmp_path / "posguard.toml"
        config.write_text("\n".join(lines))
        settings = load_settings(config)
        with Registry(registry_url) as registry:
            for account in ACCOUNTS:  # the bot still believes in its position
                registry.write(account, "XRP-USDT-SWAP", pos="10", at_ms=exchange.start_ms - 60_000)
        options = TeamOptions(
            database_url=f"postgresql+asyncpg://127.0.0.1:5432/{prefect_db}",
            workers=2,
            redis_url=redis_url,
            # Two runs per worker: the one holding the fan-out has room for one batch, so the
            # other worker must take batches too (checked below).
            runs_per_worker=2,
            port=free_port(),
            state_dir=tmp_path,
            config=config,
        )
        began = time.monotonic()
        with Team(options) as team, temporary_settings({PREFECT_API_URL: team.server.api_url}):
            up = time.monotonic()
            deploy_to_pool(settings)
            # Validation is tested elsewhere; without it no run pays GX's import.
            fan_out = run_deployment(
                name="guard-accounts/all",
                timeout=800,
                parameters={"run_expectations": False, "accounts_per_run": 4},
            )
            ran = time.monotonic()
            assert fan_out.state is not None
            assert fan_out.state.is_completed(), fan_out.state
            # One flow run per account too (no batch): two accounts again, nothing new to say;
            # through `posguard team run --json`, as a user starts it. Once (the in-memory
            # run): the rounds already showed every account's events through the broker.
            singles = ACCOUNTS[:2] if redis_url is None else []
            if singles:
                single = subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "posguard.cli",
                        "team",
                        "run",
                        "--json",
                        "--config",
                        str(config),
                        "--accounts-per-run",
                        "1",
                        *[arg for account in singles for arg in ("--account", account)],
                    ],
                    cwd=ROOT,
                    env={**os.environ, "PREFECT_API_URL": team.server.api_url},
                    capture_output=True,
                    text=True,
                    timeout=300,
                )
                assert single.returncode == 0, single.stderr[-3000:]
                # stdout is one JSON object; progress went to stderr.
                assert json.loads(single.stdout) == dict.fromkeys(singles, "Completed")
                assert "guard runs finished (2 accounts): 2/2 (100%)" in single.stderr
                on_change = changed_run(team.server.api_url, ACCOUNTS[0], exchange.start_ms)
                assert on_change.parameters["account"] == ACCOUNTS[0]
                assert on_change.parameters["pushed"][0]["instId"] == "XRP-USDT-SWAP"
                assert on_change.state is not None
                assert on_change.state.is_completed(), on_change.state
            with get_client(sync_client=True) as client:
                runs = client.read_flow_runs(
                    flow_filter=FlowFilter(name=FlowFilterName(any_=["guard-account"])),
                    limit=100,
                )
                batches = client.read_flow_runs(
                    flow_filter=FlowFilter(name=FlowFilterName(any_=["guard-round"])), limit=100
                )
                # Task runs reach the server as events (the task-run recorder writes them):
                # every account settled in a round is there, whichever broker carried it.
                settled: set[str] = set()
                deadline = time.monotonic() + 60
                while len(settled) < len(ACCOUNTS) and time.monotonic() < deadline:
                    task_runs = client.read_task_runs(
                        task_run_filter=TaskRunFilter(
                            name=TaskRunFilterName(like_="settle-"),
                            state=TaskRunFilterState(
                                type=TaskRunFilterStateType(any_=[StateType.COMPLETED])
                            ),
                        ),
                        limit=100,
                    )
                    settled = {t.name.removeprefix("settle-") for t in task_runs}
                    time.sleep(1)
                submitted = client.read_events(
                    filter=EventFilter(
                        event=EventNameFilter(name=["posguard.worker.started-flow-run"])
                    ),
                    limit=50,
                ).events
    print(
        f"team up {up - began:.1f} s, 20 accounts {ran - up:.1f} s, "
        f"down {time.monotonic() - ran:.1f} s"
    )
    guard_runs = [r for r in runs if r.state and r.state.is_final()]
    assert len(guard_runs) == len(singles)  # after the rounds, accounts on their own
    assert all(r.state.is_completed() for r in guard_runs)
    assert sorted(r.parameters["account"] for r in guard_runs) == sorted(singles)
    assert len(batches) == 5  # 20 accounts in rounds of 4
    assert sorted(a for b in batches for a in b.parameters["accounts"]) == sorted(ACCOUNTS)
    # Both workers ran flow runs (the pool's work was shared, not done by one of them).
    by_worker: dict[str, int] = {}
    for event in submitted:
        by_worker[event.resource.id] = by_worker.get(event.resource.id, 0) + 1
    assert len(by_worker) == 2, by_worker
    assert sum(by_worker.values()) >= 6 + len(singles)  # the fan-out, five rounds, singles
    assert all(b.state is not None and b.state.is_completed() for b in batches)
    with Registry(registry_url) as registry:
        events = registry.events()
    per_account: dict[str, list[tuple[str, str]]] = {}
    for event in events:
        per_account.setdefault(event["account"], []).append((event["status"], event["cause"]))
    assert settled == set(ACCOUNTS)
    assert sorted(per_account) == ACCOUNTS
    for account in ACCOUNTS:
        assert per_account[account] == [("confirmed", "closed")], account
