"""`posguard registry import|export|show`."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from posguard.cli.common import ConfigOption, guarded, print_json, settings_from

if TYPE_CHECKING:
    from posguard.registry import Registry

registry_app = typer.Typer(
    help="The position registry: import, export and show.", no_args_is_help=True
)

UrlOption = Annotated[
    str | None,
    typer.Option("--url", help="Registry database URL (default: settings' registry_url)."),
]


class Format(StrEnum):
    json = "json"
    csv = "csv"


def _open(url: str | None, config: Path | None) -> Registry:
    from posguard.registry import Registry

    target = url or settings_from(config).resolved_registry_url
    return guarded(lambda: Registry(target))


@registry_app.command("import")
def import_command(
    path: Annotated[Path, typer.Argument(help="JSON array or CSV with a header.")],
    account: Annotated[
        str | None, typer.Option(help="Account for rows without an account column.")
    ] = None,
    url: UrlOption = None,
    config: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Record positions as the bot's beliefs (columns: account, instId, posSide, mgnMode,
    pos, avgPx, lever). Progress goes to stderr."""
    from posguard.progress import progress_on_stderr
    from posguard.registry.transfer import import_rows, read_rows

    with _open(url, config) as registry, progress_on_stderr():
        count = guarded(
            lambda: import_rows(registry, read_rows(path), source=str(path), account=account)
        )
    if as_json:
        print_json({"imported": count, "source": str(path)})
    else:
        typer.echo(f"imported {count} positions")


@registry_app.command("export")
def export_command(
    account: Annotated[str | None, typer.Option(help="Only this account.")] = None,
    output_format: Annotated[Format, typer.Option("--format", help="json or csv.")] = Format.json,
    url: UrlOption = None,
    config: ConfigOption = None,
) -> None:
    """Print the registry's positions as JSON or CSV."""
    from posguard.registry.transfer import export_rows, to_csv

    with _open(url, config) as registry:
        rows = guarded(lambda: export_rows(registry, account))
    if output_format is Format.csv:
        typer.echo(to_csv(rows), nl=False)
    else:
        print_json(rows)


@registry_app.command("show")
def show_command(
    account: Annotated[str | None, typer.Option(help="Only this account.")] = None,
    events: Annotated[int, typer.Option(help="How many recent drift events to show.")] = 10,
    url: UrlOption = None,
    config: ConfigOption = None,
) -> None:
    """Show open positions and the latest drift events."""
    from posguard.drift import iso_ms
    from posguard.registry.transfer import export_rows

    with _open(url, config) as registry:
        rows = [r for r in guarded(lambda: export_rows(registry, account)) if r["pos"] != "0"]
        recent = guarded(lambda: registry.events(account))[-events:] if events else []
    typer.echo(f"{len(rows)} open positions")
    for row in rows:
        typer.echo(
            f"  {row['account']:<12} {row['instId']:<18} {row['posSide']:<5} "
            f"{row['mgnMode']:<8} pos {row['pos']:<10} lever {row['lever'] or 'N/A':<6} "
            f"v{row['version']}"
        )
    typer.echo(f"{len(recent)} latest drift events")
    for drift in recent:
        typer.echo(
            f"  {iso_ms(drift['at_ms'])} {drift['account']:<10} {drift['inst_id']:<18} "
            f"{drift['kind']:<13} {drift['status']:<10} {drift['cause']}"
        )


def register(app: typer.Typer) -> None:
    app.add_typer(registry_app, name="registry")
