"""Team mode: Prefect's server on PostgreSQL (and Redis messaging), a process work pool with
several workers, every account's deployments on the pool. `posguard team` drives it.

Everything here is Prefect's own distributed setup; posguard only writes the settings.
"""

from __future__ import annotations

import subprocess
import sys
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import psycopg
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import WorkPoolCreate
from prefect.exceptions import ObjectAlreadyExists

from deployments.server import PrefectServer, prefect_env
from posguard.errors import ConfigError
from posguard.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
POOL = "posguard"


@dataclass
class TeamOptions:
    database: str = "posguard_prefect"
    pg_host: str = "127.0.0.1"
    pg_port: int = 5432
    # Redis messaging (prefect-redis) is off by default: with prefect 3.8.8 and prefect-redis
    # 0.3.0 on PostgreSQL, the server's task-run recorder hit foreign-key violations and
    # dropped task-run events in the 20-account test. Pass a URL to use it anyway.
    redis_url: str | None = None
    workers: int = 2
    port: int = 4200
    state_dir: Path = Path(".posguard/team")
    config: Path | None = None
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def database_url(self) -> str:
        return f"postgresql+asyncpg://{self.pg_host}:{self.pg_port}/{self.database}"


def ensure_database(options: TeamOptions) -> None:
    """The server's database, with the pg_trgm extension Prefect needs."""
    admin = f"host={options.pg_host} port={options.pg_port} dbname=postgres"
    try:
        with psycopg.connect(admin, autocommit=True, connect_timeout=5) as connection:
            exists = connection.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (options.database,)
            ).fetchone()
            if not exists:
                connection.execute(f'CREATE DATABASE "{options.database}"')
        target = f"host={options.pg_host} port={options.pg_port} dbname={options.database}"
        with psycopg.connect(target, autocommit=True, connect_timeout=5) as connection:
            connection.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    except psycopg.Error as exc:
        raise ConfigError(
            f"PostgreSQL at {options.pg_host}:{options.pg_port} is not usable for the Prefect "
            f"server ({str(exc).strip()[:200]}); start it or pass another host"
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


def deploy_to_pool(settings: Settings) -> list[str]:
    """Every account's flows (and the fan-out flow) as deployments on the process pool."""
    from flows.fanout import guard_accounts
    from flows.guard import guard_account

    with get_client(sync_client=True) as client, suppress(ObjectAlreadyExists):
        client.create_work_pool(WorkPoolCreate(name=POOL, type="process"))
    names: list[str] = []
    source = str(ROOT)
    for account in sorted(settings.accounts):
        flow = guard_account.from_source(source, "flows/guard.py:guard_account")
        flow.deploy(
            name=account,
            work_pool_name=POOL,
            parameters={"account": account},
            build=False,
            push=False,
            print_next_steps=False,
            tags=["posguard", f"account:{account}"],
        )
        names.append(f"guard-account/{account}")
    fan_out = guard_accounts.from_source(source, "flows/fanout.py:guard_accounts")
    fan_out.deploy(
        name="all",
        work_pool_name=POOL,
        build=False,
        push=False,
        print_next_steps=False,
        tags=["posguard"],
    )
    names.append("guard-accounts/all")
    return names


class Team:
    """The server and the workers, started and stopped together."""

    def __init__(self, options: TeamOptions) -> None:
        self.options = options
        home = options.state_dir.resolve() / "prefect"
        self.server = PrefectServer(home, options.port)
        self.server.extra_env.update(server_env(options))
        self.workers: list[subprocess.Popen[bytes]] = []

    def start(self) -> Team:
        ensure_database(self.options)
        self.server.start()
        env = prefect_env(self.server.home, self.server.api_url)
        env["PREFECT_WORKER_QUERY_SECONDS"] = "2"
        if self.options.config is not None:
            env["POSGUARD_CONFIG"] = str(self.options.config.resolve())
        for number in range(self.options.workers):
            with (self.options.state_dir / f"worker-{number}.log").open("ab") as log:
                worker = subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "prefect",
                        "worker",
                        "start",
                        "--pool",
                        POOL,
                        "--name",
                        f"posguard-{number}",
                        "--type",
                        "process",
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
                worker.kill()
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
