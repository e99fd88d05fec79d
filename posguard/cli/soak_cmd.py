"""`posguard soak`: simulated account lives with a known truth, through the real reconciler."""

from __future__ import annotations

import logging
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from posguard.cli.common import print_json


class Policy(StrEnum):
    report = "report"
    heal = "heal"


def register(app: typer.Typer) -> None:
    @app.command("soak")
    def soak_command(
        lives: Annotated[int, typer.Option(min=1, help="How many account lives to play.")] = 200,
        seed: Annotated[
            int, typer.Option(help="Seed of the lives: the same seed, the same lives.")
        ] = 1,
        policy: Annotated[
            Policy, typer.Option(help="The drift policy the reconciler runs with.")
        ] = (Policy.report),
        registry_url: Annotated[
            str | None,
            typer.Option(help="A registry database (default: a temporary SQLite file)."),
        ] = None,
        out: Annotated[
            Path,
            typer.Option(help="Where each failing life is written as a replay timeline."),
        ] = Path("soak-failures"),
        minutes: Annotated[
            float, typer.Option(min=1.0, max=240.0, help="Simulated length of each life.")
        ] = 15.0,
        faults: Annotated[
            bool, typer.Option(help="Exchange trouble and bot mistakes (--no-faults: clean).")
        ] = True,
        stream: Annotated[
            bool,
            typer.Option(
                help="OKX's private stream: each change also starts a run that is given the "
                "pushed changes (--no-stream: the schedule alone)."
            ),
        ] = True,
        grace: Annotated[
            float | None,
            typer.Option(
                min=1.0,
                max=60.0,
                help="[drift] grace_seconds to soak at (default: posguard's): what counts as "
                "a real discrepancy (one longer than the window) follows it.",
            ),
        ] = None,
        workers: Annotated[int, typer.Option(min=1, max=64, help="Processes.")] = 2,
        as_json: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
    ) -> None:
        """Play account lives on the simulator and count the reconciler's false alarms.

        Each life is a bot trading a few OKX swaps (opens, adds, partial closes, closes,
        quick reopens, side flips, leverage changes, in net or long/short mode), the venue
        liquidating and ADL-ing, people closing by hand, and a registry the bot writes with
        lag, clock skew, missed and wrong writes; the reconciler polls through 5xx,
        timeouts, 429, missing positions, stale answers and evidence cut short. Every life
        runs through the code the scheduled flow runs (parser, run_cycle, the registry) and
        is judged against the simulator's truth.

        Counts: false_confirmed (a confirmed or healed event with no real discrepancy
        behind it), missed (a real discrepancy not confirmed within confirm_after + 1 clean
        polls), wrong_cause, duplicate_confirmed, heal_loops, unhandled (an exception).
        Each failing life is written to --out as a timeline that `posguard replay`
        reproduces. Exit 0 when every count is 0, 1 otherwise, 2 for bad arguments.
        """
        from posguard.errors import PosguardError
        from posguard.soak import SoakPlan, run_soak

        # The soak replays thousands of cycles that fail on purpose; their warnings are the
        # point of the exercise, not news.
        logging.getLogger("posguard").setLevel(logging.ERROR)
        plan = SoakPlan(
            lives=lives,
            seed=seed,
            policy=policy.value,
            registry_url=registry_url,
            faults=faults,
            minutes=minutes,
            workers=workers,
            stream=stream,
            **({} if grace is None else {"grace_seconds": grace}),
        )

        def progress(done: int, total: int) -> None:
            if done == total or done % max(1, total // 100) == 0:
                bar = "#" * (30 * done // total)
                typer.echo(f"\rsoak [{bar:<30}] {done}/{total} lives", err=True, nl=done == total)

        try:
            result = run_soak(plan, out=out, progress=progress)
        except PosguardError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
        summary = result.to_json()
        if as_json:
            print_json(summary)
        else:
            rate = summary["lives"] / result.seconds if result.seconds else 0.0
            typer.echo(
                f"{summary['lives']} lives, {summary['polls']} polls, "
                f"{summary['true_discrepancies']} real discrepancies "
                f"(grace {summary['grace_seconds']:g} s), "
                f"{result.seconds:.1f} s ({rate:.1f} lives/s)"
            )
            delay = summary["confirmed_after_seconds"]
            typer.echo(
                f"  confirmed {delay['median']} s after a discrepancy began (median; p90 "
                f"{delay['p90']} s), {summary['confirmed_with_a_push']} with a pushed change"
            )
            for name in (
                "false_confirmed",
                "missed",
                "wrong_cause",
                "duplicate_confirmed",
                "heal_loops",
                "unhandled",
            ):
                typer.echo(f"  {name:<20} {summary[name]}")
            for failure in summary["failures"][:20]:
                typer.echo(
                    f"  life {failure['life']}: {failure['kind']}: {failure['detail']}"
                    + (
                        f"\n    replay: posguard replay {failure['timeline']}"
                        if failure["timeline"]
                        else ""
                    )
                )
        raise typer.Exit(0 if result.clean else 1)
