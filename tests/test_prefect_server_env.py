"""The Prefect server posguard starts: on SQLite, schedules reach over an hour ahead."""

from __future__ import annotations

from pathlib import Path

from deployments.server import PrefectServer


def test_a_sqlite_server_schedules_beyond_the_schedulers_hour(tmp_path: Path) -> None:
    """Under an hour of runs ahead, Prefect's scheduler tops a deployment up every minute;
    on SQLite a top-up now and then held the database locked for 60 s. 200 runs of the
    30 s reconcile schedule are 100 minutes."""
    env = PrefectServer(tmp_path, 4200)._server_env()
    assert int(env["PREFECT_SERVER_SERVICES_SCHEDULER_MAX_RUNS"]) * 30 > 3600


def test_postgresql_and_a_chosen_value_are_left_alone(tmp_path: Path) -> None:
    server = PrefectServer(tmp_path, 4200)
    server.extra_env["PREFECT_SERVER_DATABASE_CONNECTION_URL"] = (
        "postgresql+asyncpg://127.0.0.1:5432/prefect"
    )
    assert "PREFECT_SERVER_SERVICES_SCHEDULER_MAX_RUNS" not in server._server_env()
    chosen = PrefectServer(tmp_path, 4200)
    chosen.extra_env["PREFECT_SERVER_SERVICES_SCHEDULER_MAX_RUNS"] = "500"
    assert chosen._server_env()["PREFECT_SERVER_SERVICES_SCHEDULER_MAX_RUNS"] == "500"
