"""The Prefect server posguard starts: on SQLite, schedules reach over an hour ahead."""

from __future__ import annotations

from pathlib import Path

import pytest

from deployments.server import PrefectServer

MAX_RUNS = "PREFECT_SERVER_SERVICES_SCHEDULER_MAX_RUNS"


@pytest.fixture(autouse=True)
def _no_outer_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    """The server inherits this process's environment: start from none of these."""
    for name in (
        MAX_RUNS,
        "PREFECT_SERVER_DATABASE_CONNECTION_URL",
        "PREFECT_API_DATABASE_CONNECTION_URL",
    ):
        monkeypatch.delenv(name, raising=False)


def test_a_sqlite_server_schedules_beyond_the_schedulers_hour(tmp_path: Path) -> None:
    """Under an hour of runs ahead, Prefect's scheduler tops a deployment up every minute;
    on SQLite a top-up now and then held the database locked for 60 s. 200 runs of the
    30 s reconcile schedule are 100 minutes."""
    env = PrefectServer(tmp_path, 4200)._server_env()
    assert int(env[MAX_RUNS]) * 30 > 3600


@pytest.mark.parametrize(
    "variable", ["PREFECT_SERVER_DATABASE_CONNECTION_URL", "PREFECT_API_DATABASE_CONNECTION_URL"]
)
def test_postgresql_and_a_chosen_value_are_left_alone(tmp_path: Path, variable: str) -> None:
    server = PrefectServer(tmp_path, 4200)
    server.extra_env[variable] = "postgresql+asyncpg://127.0.0.1:5432/prefect"
    assert MAX_RUNS not in server._server_env()
    chosen = PrefectServer(tmp_path, 4200)
    chosen.extra_env[MAX_RUNS] = "500"
    assert chosen._server_env()[MAX_RUNS] == "500"
