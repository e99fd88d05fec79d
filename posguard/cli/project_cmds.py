"""Developer-facing subcommands: the gates and the effective configuration."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from posguard.cli.common import ConfigOption, print_json, settings_from


def register(app: typer.Typer) -> None:
    @app.command(
        "check",
        context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    )
    def check(
        ctx: typer.Context,
        root: Annotated[Path, typer.Option(help="Project root (where pyproject.toml is).")] = Path(
            "."
        ),
    ) -> None:
        """Run every gate: ruff (lint and format), mypy --strict on posguard/, pytest.

        Extra arguments go to pytest, e.g. `posguard check -k frames -x`.
        """
        from posguard.check import run_gates

        if not (root / "pyproject.toml").exists():
            typer.echo(
                f"error: {root.resolve()} has no pyproject.toml; run from the project root",
                err=True,
            )
            raise typer.Exit(2)
        raise typer.Exit(run_gates(root, list(ctx.args)))

    @app.command("config")
    def config(config: ConfigOption = None) -> None:
        """Print the effective settings as JSON, with every secret masked."""
        settings = settings_from(config)
        print_json(settings.model_dump(mode="json"))
