"""`posguard leverage plan|apply`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from posguard.cli.common import ConfigOption, guarded, print_json, settings_from

leverage_app = typer.Typer(
    help="Volatility-targeted leverage: plan, and apply.", no_args_is_help=True
)
AccountOption = Annotated[str | None, typer.Option("--account", "-a", help="Account name.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]
# Outcomes where the exchange did not do what the plan asked, or nobody can tell: exit 3.


def _run(account: str | None, config: Path | None, *, apply: bool, as_json: bool) -> None:
    from posguard.cli.inspect_cmds import _only_account
    from posguard.okx import OkxClient
    from posguard.registry import Registry
    from posguard.stages.leverage_plan import recalculate

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

    from posguard.stages.leverage_apply import NOT_TAKEN_EFFECT
    from posguard.stages.leverage_plan import LeverageReport

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
    else:
        typer.echo(plan_table(report.plan_json()))
        for outcome in report.outcomes:
            code = f" {outcome.code}" if outcome.code else ""
            typer.echo(
                f"  {outcome.instId} {outcome.mgnMode} {outcome.posSide}: {outcome.outcome}"
                f"{code} {outcome.reason}"
            )
    failed = [o for o in report.outcomes if o.outcome in NOT_TAKEN_EFFECT]
    if failed:
        # A script that applies leverage must not read "nothing happened" as success.
        typer.echo(
            f"posguard: {len(failed)} leverage change(s) did not take effect or cannot be "
            f"confirmed ({', '.join(sorted({o.outcome for o in failed}))}); the next run plans "
            f"again",
            err=True,
        )
        raise typer.Exit(3)


def _times(value: float | None) -> str:
    return "N/A" if value is None else f"{value:g}x"


def plan_table(rows: list[dict[str, Any]]) -> str:
    """The plan as fixed-width text: one line per leverage scope, the bound in its own column."""
    header = (
        f"{'instId':<18} {'mgnMode':<8} {'posSide':<10} {'legs (contracts)':<22} "
        f"{'lever':<6} {'source':<13} {'vol':<7} {'target':<6} {'bound':<15} {'action':<6} reason"
    )
    lines = [header]
    for row in rows:
        legs = ", ".join(f"{leg['posSide']} {_size(leg['size'])}" for leg in row["legs"])
        vol = "N/A" if row["volatility"] is None else f"{row['volatility']:.4f}"
        bound = "unknown" if row["upper"] is None else f"{_times(row['upper'])} {row['bound']}"
        lines.append(
            f"{row['instId']:<18} {row['mgnMode']:<8} {row['posSide']:<10} {legs:<22} "
            f"{_times(row['lever']):<6} {row['lever_source']:<13} {vol:<7} "
            f"{_times(row['target']):<6} {bound:<15} {row['action']:<6} {row['reason']}"
        )
    return "\n".join(lines)


def _size(value: float | None) -> str:
    return "N/A" if value is None else f"{value:g}"


@leverage_app.command("plan")
def plan_command(
    account: AccountOption = None, as_json: JsonOption = False, config: ConfigOption = None
) -> None:
    """Show, per leverage scope, the current leverage, volatility, bound, target and action.

    OKX sets leverage per scope: in long/short mode a cross scope is shared by the long and
    the short leg of an instrument (posSide long+short), an isolated scope is one leg.
    """
    _run(account, config, apply=False, as_json=as_json)


@leverage_app.command("apply")
def apply_command(
    account: AccountOption = None, as_json: JsonOption = False, config: ConfigOption = None
) -> None:
    """Apply the plan: set-leverage where it says raise/lower, then read it back.

    Refusals (pending orders, limits, portfolio margin) are recorded, not retried; the
    `leverage.kill_switch` setting forbids every change. Exit status: 0 when every change was
    applied, refused or not needed; 2 bad input; 3 when the exchange failed or a change did
    not take effect or cannot be confirmed (not_applied, unknown, mismatch).
    """
    _run(account, config, apply=True, as_json=as_json)


def register(app: typer.Typer) -> None:
    app.add_typer(leverage_app, name="leverage")
