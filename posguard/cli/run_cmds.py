"""`posguard demo` and `posguard serve`: the Prefect side, imported only when asked for."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from posguard.cli.common import ConfigOption, guarded, settings_from
from posguard.settings import export_environment


def register(app: typer.Typer) -> None:
    @app.command("demo")
    def demo(
        once: Annotated[
            bool, typer.Option("--once", help="Play the scenario to its end, print, exit.")
        ] = False,
        as_json: Annotated[bool, typer.Option("--json", help="Summary as one JSON object.")] = (
            False
        ),
        port: Annotated[int, typer.Option(help="Port of the local Prefect server (UI).")] = 4200,
        sim_port: Annotated[int, typer.Option(help="Port of the OKX simulator.")] = 8765,
        state_dir: Annotated[
            Path, typer.Option(help="Where the demo keeps Prefect's database and the registry.")
        ] = Path(".posguard/demo"),
        hold: Annotated[
            float,
            typer.Option(help="With --once: keep the UI up this many seconds after playing."),
        ] = 0,
    ) -> None:
        """The incident of 2025-12-20, live: a local Prefect server, the OKX simulator,
        scheduled flows and alerts. Open the printed UI address; Ctrl-C stops."""
        from posguard.errors import PosguardError

        # Prefect reads its API address when imported: point it at the demo's server first.
        state = state_dir.resolve()
        (state / "prefect").mkdir(parents=True, exist_ok=True)
        export_environment(
            {
                "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
                "PREFECT_HOME": str(state / "prefect"),
                "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            },
            defaults={"PREFECT_LOGGING_LEVEL": "WARNING"},
        )
        from deployments.demo import DemoOptions, run_demo

        options = DemoOptions(
            once=once,
            as_json=as_json,
            state_dir=state,
            port=port,
            sim_port=sim_port,
            hold_seconds=hold,
        )
        try:
            code = run_demo(options)
        except PosguardError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            typer.echo("stopped", err=True)
            raise typer.Exit(130) from None
        raise typer.Exit(code)

    @app.command("serve")
    def serve_command(
        no_schedules: Annotated[
            bool, typer.Option("--no-schedules", help="Register for on-demand runs only.")
        ] = False,
        cold: Annotated[
            bool,
            typer.Option(
                "--cold",
                help="Prefect's own serve: a fresh interpreter per run (seconds of imports "
                "each) instead of runs in this process's threads.",
            ),
        ] = False,
        config: ConfigOption = None,
    ) -> None:
        """Serve every configured account's deployments (needs PREFECT_API_URL).

        Runs execute in this process (imports and the GX context paid once), with Prefect's
        states, logs and artifacts; --cold starts a process per run instead."""
        export_environment({"POSGUARD_CONFIG": None if config is None else str(config)})
        from deployments.serve import main

        raise typer.Exit(guarded(lambda: main(scheduled=not no_schedules, cold=cold)))

    @app.command("watch")
    def watch_command(
        account: Annotated[
            list[str] | None,
            typer.Option("--account", "-a", help="Watch only this account (repeatable)."),
        ] = None,
        status_seconds: Annotated[
            float, typer.Option(help="A status line on stderr this often.")
        ] = 60.0,
        config: ConfigOption = None,
    ) -> None:
        """Hold OKX's private WebSocket for each account and send a Prefect event
        (posguard.position.changed) when a position changes: the reconcile deployment's
        trigger starts a run within seconds; the schedule stays the safety net. Needs
        PREFECT_API_URL; never writes the registry."""
        settings = settings_from(config)
        from deployments.watch import watch

        raise typer.Exit(guarded(lambda: watch(settings, account, status_seconds, config)))
