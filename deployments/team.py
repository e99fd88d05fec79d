"""Team mode: Prefect's server on PostgreSQL (and optionally Redis messaging), a work pool, and
warm workers that take its runs (`posguard team worker`, on this host or others; the server
beyond loopback only behind basic authentication). `posguard team` drives it.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Coroutine
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import httpx
import psycopg
from prefect import Flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import WorkPoolCreate
from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
from prefect.exceptions import ObjectAlreadyExists
from prefect.settings import (
    PREFECT_API_AUTH_STRING,
    PREFECT_API_URL,
    temporary_settings,
)
from prefect.settings.legacy import Setting
from psycopg.conninfo import make_conninfo
from pydantic import SecretStr
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from deployments.build import POOL, TEAM_ON_CHANGE, event_trigger, planned, team_trigger_spec
from deployments.server import PrefectServer, prefect_env
from posguard.errors import ConfigError
from posguard.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class TeamOptions:
    # The Prefect server's own database (created with pg_trgm when missing).
    database_url: str = "postgresql+asyncpg://127.0.0.1:5432/posguard_prefect"
    # Redis messaging (prefect-redis): tested (tests/test_team.py), off by default because
    # one host needs no broker; several Prefect servers need it.
    redis_url: str | None = None
    workers: int = 2
    runs_per_worker: int = 4
    port: int = 4200
    listen: str = "127.0.0.1"
    auth_string: SecretStr | None = None
    pool: str = POOL
    state_dir: Path = Path(".posguard/team")
    config: Path | None = None
    extra_env: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: Settings, config: Path | None = None) -> TeamOptions:
        team = settings.team
        return cls(
            database_url=team.prefect_database_url,
            redis_url=team.redis_url,
            workers=team.workers,
            runs_per_worker=team.runs_per_worker,
            port=team.port,
            listen=team.listen,
            auth_string=team.auth_string,
            pool=team.pool,
            state_dir=settings.state_dir / "team",
            config=config,
        )


def ensure_database(options: TeamOptions) -> None:
    """The server's database, with the pg_trgm extension Prefect needs."""
    try:
        url = make_url(options.database_url)
    except ArgumentError:
        raise ConfigError(
            "team.prefect_database_url is not a database URL; expected "
            "postgresql+asyncpg://HOST:PORT/DATABASE"
        ) from None
    if url.get_backend_name() != "postgresql" or not url.database:
        raise ConfigError(
            f"team.prefect_database_url must name a PostgreSQL database "
            f"(postgresql+asyncpg://HOST:PORT/DATABASE), got {url.render_as_string()}"
        )
    where = f"{url.host or 'localhost'}:{url.port or 5432}"
    given: dict[str, str | int | None] = {
        "host": url.host or "127.0.0.1",
        "port": url.port or 5432,
        "user": url.username,
        "password": url.password,
        "connect_timeout": 5,
    }
    params: dict[str, Any] = {k: v for k, v in given.items() if v is not None}
    try:
        admin = make_conninfo(dbname="postgres", **params)
        with psycopg.connect(admin, autocommit=True) as connection:
            exists = connection.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (url.database,)
            ).fetchone()
            if not exists:
                connection.execute(f'CREATE DATABASE "{url.database}"')
        with psycopg.connect(make_conninfo(dbname=url.database, **params), autocommit=True) as c:
            c.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    except psycopg.Error as exc:
        raise ConfigError(
            f"PostgreSQL at {where} is not usable for the Prefect server "
            f"({str(exc).strip()[:200]}); start it or set team.prefect_database_url"
        ) from None


def server_env(options: TeamOptions) -> dict[str, str]:
    env = {"PREFECT_SERVER_DATABASE_CONNECTION_URL": options.database_url, **options.extra_env}
    if options.redis_url:
        env.update(
            {
                "PREFECT_SERVER_EVENTS_MESSAGING_BROKER": "prefect_redis.messaging",
                "PREFECT_SERVER_EVENTS_MESSAGING_CACHE": "prefect_redis.messaging",
                "PREFECT_SERVER_EVENTS_CAUSAL_ORDERING": "prefect_redis.ordering",
                "PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE": "prefect_redis.lease_storage",
                "PREFECT_REDIS_MESSAGING_URL": options.redis_url,
            }
        )
    return env


def loaded(flow: Flow[..., Any] | Coroutine[Any, Any, Flow[..., Any]]) -> Flow[..., Any]:
    """`Flow.from_source` is sync-compatible: called from sync code it returns the flow."""
    if not isinstance(flow, Flow):
        raise TypeError("Flow.from_source returned a coroutine in sync code")
    return flow


def deploy_to_pool(settings: Settings, pool: str = POOL, *, scheduled: bool = False) -> list[str]:
    """Every account's guard flow, the batch flow and the fan-out flow as deployments on the
    process pool. With `scheduled` the fan-out runs every `schedules.reconcile_seconds`; the
    per-account and batch runs are what it (or a person, from the UI) triggers."""
    from flows.fanout import guard_accounts
    from flows.guard import guard_account
    from flows.reconcile import reconcile_positions
    from flows.round import guard_round

    with get_client(sync_client=True) as client, suppress(ObjectAlreadyExists):
        client.create_work_pool(WorkPoolCreate(name=pool, type="process"))
    source = str(ROOT)
    common: dict[str, Any] = {
        "work_pool_name": pool,
        "build": False,
        "push": False,
        "print_next_steps": False,
    }
    names: list[str] = []
    # Loaded once: from_source imports the flow's module, which would cost every account.
    per_account = loaded(guard_account.from_source(source, "flows/guard.py:guard_account"))
    # The per-account guard deployments as declared for `serve` and prefect.yaml.
    for plan in planned(settings):
        if plan.flow.name != "guard-account":
            continue
        per_account.deploy(
            name=plan.account,
            parameters=plan.parameters,
            tags=plan.tags,
            description=plan.description,
            **common,
        )
        names.append(f"guard-account/{plan.account}")
    loaded(guard_round.from_source(source, "flows/round.py:guard_round")).deploy(
        name="all", tags=["posguard"], parameters={"policy": settings.drift.heal}, **common
    )
    loaded(guard_accounts.from_source(source, "flows/fanout.py:guard_accounts")).deploy(
        name="all",
        tags=["posguard"],
        parameters={"policy": settings.drift.heal},
        interval=settings.schedules.reconcile_seconds if scheduled else None,
        # A round over hundreds of accounts can outlast the interval: the next scheduled
        # round is cancelled rather than piled on top of the running one.
        concurrency_limit=ConcurrencyLimitConfig(
            limit=1, collision_strategy=ConcurrencyLimitStrategy.CANCEL_NEW
        ),
        **common,
    )
    names += ["guard-round/all", "guard-accounts/all"]
    if settings.watch.trigger:
        # posguard watch on any host (one per batch of accounts) sends the events; a change
        # on any account starts its reconcile run on the pool, in the account's strict slot
        # (which a round holds while it checks the account).
        loaded(
            reconcile_positions.from_source(source, "flows/reconcile.py:reconcile_positions")
        ).deploy(
            name=TEAM_ON_CHANGE,
            tags=["posguard", "on-change"],
            description="Positions of the account an event names vs the registry, when "
            "posguard watch sees them change (OKX's private stream)",
            parameters={"policy": settings.drift.heal},
            triggers=[event_trigger(team_trigger_spec(settings))],
            **common,
        )
        names.append(f"reconcile-positions/{TEAM_ON_CHANGE}")
    return names


class Team:
    """The server and the workers, started and stopped together."""

    def __init__(self, options: TeamOptions) -> None:
        self.options = options
        home = options.state_dir.resolve() / "prefect"
        self.server = PrefectServer(
            home, options.port, host=options.listen, auth_string=options.auth_string
        )
        self.server.extra_env.update(server_env(options))
        self.workers: list[subprocess.Popen[bytes]] = []

    def start(self) -> Team:
        ensure_database(self.options)
        self.server.start()
        env = prefect_env(self.server.home, self.server.api_url, self.options.auth_string)
        if self.options.config is not None:
            env["POSGUARD_CONFIG"] = str(self.options.config.resolve())
        for number in range(self.options.workers):
            with (self.options.state_dir / f"worker-{number}.log").open("ab") as log:
                worker = subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "posguard.cli",
                        "team",
                        "worker",
                        "--name",
                        f"posguard-{number}",
                        "--pool",
                        self.options.pool,
                        "--limit",
                        str(self.options.runs_per_worker),
                        "--server",
                        self.server.api_url,
                    ],
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=ROOT,
                    start_new_session=True,
                )
            self.workers.append(worker)
        return self

    def stop(self) -> None:
        for worker in self.workers:
            worker.terminate()
        for worker in self.workers:
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                # A worker still shutting down after 30 s is killed, and reaped: an unreaped
                # child is a zombie (and a ResourceWarning in the team test).
                with suppress(ProcessLookupError):
                    os.killpg(worker.pid, signal.SIGKILL)  # its own session: children too
                worker.wait(timeout=30)
        self.server.stop()

    def __enter__(self) -> Team:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def check_api(pool: str) -> None:
    """Before serving: the team's API answers, accepts this host's auth string, and has the
    pool. Each failure says what to set."""
    from prefect.exceptions import ObjectNotFound

    url = PREFECT_API_URL.value() or "(PREFECT_API_URL not set)"
    try:
        with get_client(sync_client=True) as client:
            client.read_work_pool(pool)
    except ObjectNotFound:
        raise ConfigError(
            f"the team's API at {url} has no work pool {pool!r}: start `posguard team up` "
            f"there first, or pass the pool it uses (--pool)"
        ) from None
    except httpx.HTTPStatusError as exc:
        if exc.response.status_code == 401:
            raise ConfigError(
                f"the team's API at {url} refused this worker (401): set team.auth_string "
                f"(POSGUARD_TEAM__AUTH_STRING) on this host to the server's"
            ) from None
        raise ConfigError(f"the team's API at {url} answered {exc.response.status_code}") from None
    except httpx.HTTPError as exc:
        raise ConfigError(
            f"the team's API at {url} is not reachable ({type(exc).__name__}); check --server "
            f"and that port {urlsplit(url).port or 4200} is open to this host"
        ) from None


def team_worker(settings: Settings, *, name: str = "", pool: str = POOL, limit: int = 4) -> int:
    """`posguard team worker`: a warm worker of the team's pool (deployments/warm.py). The
    flows are imported here, once; every run of the pool whose flow is posguard's runs in
    this process's threads."""
    from deployments.warm import WarmServer
    from flows import (
        guard_account,
        guard_round,
        recalculate_leverage,
        reconcile_positions,
        sync_instruments,
    )
    from flows.fanout import guard_accounts

    worker = WarmServer(
        [],
        [
            guard_account,
            guard_round,
            guard_accounts,
            sync_instruments,
            reconcile_positions,
            recalculate_leverage,
        ],
        limit=limit,
        pool=pool,
        name=name or f"posguard-{socket.gethostname()}-{os.getpid()}",
    )
    check_api(pool)
    worker.serve_until_stopped()
    return 0


def client_settings(server: PrefectServer, options: TeamOptions) -> dict[Setting, Any]:
    values: dict[Setting, Any] = {PREFECT_API_URL: server.api_url}
    if options.auth_string is not None:
        values[PREFECT_API_AUTH_STRING] = options.auth_string.get_secret_value()
    return values


def _stop_on_sigterm(_signum: int, _frame: object) -> None:
    # The server and workers run in their own sessions: a SIGTERM must stop them too.
    raise KeyboardInterrupt


def team_up(settings: Settings, config: Path | None, *, scheduled: bool = True) -> int:
    """`posguard team up`: server, workers, alerting and deployments; hold until stopped."""
    from deployments.alerting import ensure_alerting

    if not settings.accounts:
        raise ConfigError("no accounts configured; add [accounts.NAME] or accounts_file")
    options = TeamOptions.from_settings(settings, config)
    if settings.team.listens_beyond_loopback and settings.team.auth_string is None:
        raise ConfigError(
            f"team.listen = {settings.team.listen!r} would open the Prefect API, which can start "
            f"leverage runs, to the network without authentication; set team.auth_string "
            f'("user:password", e.g. POSGUARD_TEAM__AUTH_STRING in this host\'s environment) '
            f"or listen on 127.0.0.1"
        )
    options.state_dir.mkdir(parents=True, exist_ok=True)
    ensure_database(options)  # a bad URL or a stopped PostgreSQL is reported before anything
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    with Team(options) as team, temporary_settings(client_settings(team.server, options)):
        # Prefect reads its environment once, at import: the API address and auth string
        # of the server just started are given as settings (os.environ would be ignored).
        ensure_alerting(settings.alerts)
        names = deploy_to_pool(settings, options.pool, scheduled=scheduled)
        print(
            f"team mode up: UI {team.server.ui_url}, {options.workers} workers on pool "
            f"{options.pool!r}, {len(settings.accounts)} accounts, {len(names)} deployments; "
            f"`posguard team run` checks them all now. Ctrl-C stops.",
            flush=True,
        )
        try:
            while all(worker.poll() is None for worker in team.workers):
                time.sleep(1)
        except KeyboardInterrupt:
            return 0
        print(f"a worker exited; see {options.state_dir}/worker-*.log", file=sys.stderr, flush=True)
        return 1


def team_run(
    accounts: list[str] | None, accounts_per_run: int | None, wait_seconds: float
) -> dict[str, str]:
    """`posguard team run`: the fan-out flow, run from here against the team's server; the
    guard runs it triggers go to the pool's workers. Returns each account's final state."""
    from flows.fanout import guard_accounts

    states = guard_accounts(
        accounts=accounts, accounts_per_run=accounts_per_run, wait_seconds=wait_seconds
    )
    return {str(k): str(v) for k, v in states.items()}
