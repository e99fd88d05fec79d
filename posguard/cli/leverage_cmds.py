"""`posguard leverage plan|apply`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from posguard.cli.common import ConfigOption, guarded, print_json, settings_from

leverage_app = typer.Typer(
    help="Volatility-targeted leverage: plan, and apply.", no_args_is_help=True
)
AccountOption = Annotated[str | None, typer.Option("--account", "-a", help="Account name.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _run(account: str | None, config: Path | None, *, apply: bool, as_json: bool) -> None:
    from posguard.cli.inspect_cmds import _only_account
    from posguard.okx import OkxClient
    from posguard.recalculate import recalculate
    from posguard.registry import Registry

    settings = settings_from(config)
    name = account or guarded(lambda: _only_account(settings))

    def work() -> object:
        with OkxClient.for_account(settings, name) as client:
            registry = Registry(settings.resolved_registry_url) if apply else None
            try:
                return recalculate(
                    client,
                    settings.leverage,
                    account_override=settings.account(name).leverage,
                    apply=apply,
                    registry=registry,
                )
            finally:
                if registry is not None:
                    registry.close()

    from posguard.recalculate import LeverageReport

    report = guarded(work)
    assert isinstance(report, LeverageReport)
    if as_json:
        print_json(
            {
                "account": name,
                "plan": report.plan_json(),
                "outcomes": [o.to_json() for o in report.outcomes],
            }
        )
        return
    for row in report.plan_json():
        lever = "N/A" if row["lever"] is None else f"{row['lever']:g}x"
        target = "N/A" if row["target"] is None else f"{row['target']:g}x"
        vol = "N/A" if row["volatility"] is None else f"{row['volatility']:.4f}"
        typer.echo(
            f"{row['instId']:<18} {row['mgnMode']:<8} lever {lever:<6} "
            f"({row['lever_source']}) vol {vol:<7} target {target:<6} "
            f"{row['action']:<5} {row['reason']}"
        )
    for outcome in report.outcomes:
        typer.echo(f"  {outcome.instId}: {outcome.outcome} {outcome.code or ''} {outcome.reason}")


@leverage_app.command("plan")
def plan_command(
    account: AccountOption = None, as_json: JsonOption = False, config: ConfigOption = None
) -> None:
    """Show, per open position, the current leverage, volatility, target and action."""
    _run(account, config, apply=False, as_json=as_json)


@leverage_app.command("apply")
def apply_command(
    account: AccountOption = None, as_json: JsonOption = False, config: ConfigOption = None
) -> None:
    """Apply the plan: set-leverage where it says raise/lower, then read it back.

    Refusals (pending orders, limits, portfolio margin) are recorded, not retried; the
    `leverage.kill_switch` setting forbids every change.
    """
    _run(account, config, apply=True, as_json=as_json)


def register(app: typer.Typer) -> None:
    app.add_typer(leverage_app, name="leverage")
