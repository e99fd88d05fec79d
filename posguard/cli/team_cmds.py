"""`posguard team up|worker|run`: team mode (Prefect server on PostgreSQL, a work pool and
its warm workers); the Prefect side is imported only when asked for."""

from __future__ import annotations

from typing import Annotated

import typer

from posguard.cli.common import ConfigOption, print_json, reported_errors, settings_from
from posguard.settings import export_environment


def register(app: typer.Typer) -> None:
    team = typer.Typer(
        help=(
            "Team mode: Prefect's server on PostgreSQL, a work pool and warm workers (on "
            "this host or others), every account's guard flow on it. Configured by mode = "
            '"team" and the [team] section of the settings.'
        ),
        no_args_is_help=True,
    )
    app.add_typer(team, name="team")

    @team.command("up")
    def up(
        config: ConfigOption = None,
        listen: Annotated[
            str | None,
            typer.Option(
                help="Address the Prefect server listens on (default: team.listen, 127.0.0.1); "
                "beyond loopback only with team.auth_string set."
            ),
        ] = None,
        no_schedule: Annotated[
            bool, typer.Option("--no-schedule", help="Deploy for on-demand runs only.")
        ] = False,
    ) -> None:
        """Start the server and the workers, deploy every account; hold until Ctrl-C."""
        settings = settings_from(config)
        if listen is not None:
            settings.team.listen = listen
        export_environment(
            {
                "POSGUARD_CONFIG": None if config is None else str(config.resolve()),
                "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            }
        )
        from deployments.team import team_up

        with reported_errors():
            raise typer.Exit(team_up(settings, config, scheduled=not no_schedule))

    @team.command("worker")
    def worker(
        config: ConfigOption = None,
        server: Annotated[
            str | None,
            typer.Option(help="The team's Prefect API URL (default: this host's team.port)."),
        ] = None,
        name: Annotated[str, typer.Option(help="This worker's name in the UI.")] = "",
        pool: Annotated[
            str | None, typer.Option(help="The work pool (default: team.pool).")
        ] = None,
        limit: Annotated[
            int | None, typer.Option(min=1, help="Runs at once (default: team.runs_per_worker).")
        ] = None,
    ) -> None:
        """A warm worker of the team's pool: imports paid once, runs in threads. Reads this
        host's posguard.toml (credentials never travel through Prefect); Ctrl-C stops."""
        settings = settings_from(config)
        auth = settings.team.auth_string
        export_environment(
            {
                "POSGUARD_CONFIG": None if config is None else str(config.resolve()),
                "PREFECT_API_URL": server,
                "PREFECT_API_AUTH_STRING": None if auth is None else auth.get_secret_value(),
            },
            defaults={"PREFECT_API_URL": f"http://127.0.0.1:{settings.team.port}/api"},
        )
        from deployments.team import team_worker

        with reported_errors():
            raise typer.Exit(
                team_worker(
                    settings,
                    name=name,
                    pool=pool or settings.team.pool,
                    limit=limit or settings.team.runs_per_worker,
                )
            )

    @team.command("run")
    def run(
        config: ConfigOption = None,
        account: Annotated[
            list[str] | None,
            typer.Option("--account", "-a", help="Only these accounts (repeatable)."),
        ] = None,
        accounts_per_run: Annotated[
            int | None,
            typer.Option(min=1, help="Accounts per flow run (default: team.accounts_per_run)."),
        ] = None,
        wait: Annotated[float, typer.Option(help="Seconds to wait for the runs.")] = 1800,
        as_json: Annotated[bool, typer.Option("--json", help="States as one JSON object.")] = (
            False
        ),
    ) -> None:
        """Check every account now on a running team (`posguard team up`): one flow run per
        account (or batch) on the pool. Progress goes to stderr. Exit 1 when an account did
        not complete."""
        settings = settings_from(config)
        auth = settings.team.auth_string
        export_environment(
            {
                "POSGUARD_CONFIG": None if config is None else str(config.resolve()),
                "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                "PREFECT_API_AUTH_STRING": None if auth is None else auth.get_secret_value(),
            },
            defaults={
                "PREFECT_API_URL": f"http://127.0.0.1:{settings.team.port}/api",
                "PREFECT_LOGGING_LEVEL": "WARNING",
            },
        )
        from deployments.team import team_run
        from posguard.progress import progress_on_stderr

        with reported_errors(), progress_on_stderr():
            states = team_run(account or None, accounts_per_run, wait)
        if as_json:
            print_json(states)
        else:
            for name, state in states.items():
                typer.echo(f"{name:<24} {state}")
            done = sum(1 for s in states.values() if s == "Completed")
            typer.echo(f"{done}/{len(states)} accounts completed")
        raise typer.Exit(0 if all(s == "Completed" for s in states.values()) else 1)
