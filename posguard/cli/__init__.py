"""The `posguard` command. Subcommands live in small modules beside this one."""

from __future__ import annotations

import typer

from posguard.cli import (
    inspect_cmds,
    leverage_cmds,
    project_cmds,
    registry_cmds,
    replay_cmd,
    run_cmds,
    sim_cmds,
    soak_cmd,
    status_cmd,
    team_cmds,
    validate_cmd,
)

app = typer.Typer(
    name="posguard",
    help=(
        "Position integrity for OKX derivatives accounts: fetch positions and instruments, "
        "validate them, reconcile them with a registry and recalculate leverage."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    add_completion=False,
)
project_cmds.register(app)
inspect_cmds.register(app)
sim_cmds.register(app)
validate_cmd.register(app)
replay_cmd.register(app)
soak_cmd.register(app)
registry_cmds.register(app)
leverage_cmds.register(app)
run_cmds.register(app)
status_cmd.register(app)
team_cmds.register(app)


def main() -> None:
    app()
