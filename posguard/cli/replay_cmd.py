"""`posguard replay`: post-mortems, tests and what-ifs over a recorded timeline."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from posguard.cli.common import print_json


def register(app: typer.Typer) -> None:
    @app.command("replay")
    def replay_command(
        timeline: Annotated[Path, typer.Argument(help="Timeline JSON (replay-format.md).")],
        as_json: Annotated[
            bool, typer.Option("--json", help="One JSON object per line, per drift event.")
        ] = False,
        registry: Annotated[
            str | None,
            typer.Option(
                "--registry",
                help="Replay into this registry URL and keep it (default: a temporary one).",
            ),
        ] = None,
    ) -> None:
        """Replay a timeline of exchange snapshots and registry writes through the engine.

        Prints the drift events in time order. Steps whose exchange calls failed draw no
        conclusion (said on stderr). Exit status: 0 when replayed, 2 when the timeline is
        invalid (the message names the step and the member).
        """
        from posguard.errors import PosguardError
        from posguard.stages.replay import load_timeline, replay

        def skipped(message: str) -> None:
            typer.echo(f"replay: {message}", err=True)

        try:
            events = list(replay(load_timeline(timeline), registry_url=registry, on_skip=skipped))
        except PosguardError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
        if as_json:
            for drift in events:
                print_json(drift.to_json())
            return
        if not events:
            typer.echo("no drift events")
            return
        typer.echo(
            f"{'at':<25} {'instId':<18} {'posSide':<7} {'mgnMode':<8} {'kind':<13} "
            f"{'status':<10} {'cause':<16} id"
        )
        for drift in events:
            row = drift.to_json()
            typer.echo(
                f"{row['at']:<25} {row['instId']:<18} {row['posSide']:<7} "
                f"{row['mgnMode']:<8} {row['kind']:<13} {row['status']:<10} "
                f"{row['cause']:<16} {row['id']}"
            )
