"""Read-only subcommands: parse saved OKX answers, fetch live (or simulated) ones."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import pandas as pd
import typer

from posguard.cli.common import ConfigOption, guarded, print_json, settings_from

if TYPE_CHECKING:  # the CLI imports the client only when a command needs it
    from posguard.okx.paging import PagedRecords


class Fetchable(StrEnum):
    time = "time"
    instruments = "instruments"
    positions = "positions"
    leverage_info = "leverage-info"
    positions_history = "positions-history"
    fills = "fills"
    config = "config"


def _show(frame: pd.DataFrame, as_json: bool) -> None:
    if as_json:
        print_json(frame.astype("object").where(frame.notna(), None).to_dict("records"))
    else:
        with pd.option_context("display.max_columns", 12, "display.width", 160):
            typer.echo(frame.to_string(index=False) if len(frame) else "(no records)")


def register(app: typer.Typer) -> None:
    @app.command("parse")
    def parse(
        path: Annotated[Path, typer.Argument(help="A saved OKX answer (envelope or data array).")],
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON records.")] = False,
    ) -> None:
        """Parse a saved OKX answer into posguard's typed frame and print it.

        The endpoint is recognised from the records' fields. "" becomes null, never 0; a value
        that is not a number where one belongs is an error naming the field and instId.
        Exit status: 0 parsed; 2 bad input (a value not as OKX sends it, a file that is not an
        answer); 3 the saved answer is itself an exchange error or unusable.
        """
        from posguard.frames import parse_records
        from posguard.okx.saved import load_records

        frame = guarded(lambda: parse_records(load_records(path)))
        _show(frame, as_json)

    @app.command("fetch")
    def fetch(
        what: Annotated[Fetchable, typer.Argument(help="Which OKX endpoint to read.")],
        account: Annotated[
            str | None, typer.Option("--account", "-a", help="Account name from the settings.")
        ] = None,
        inst_type: Annotated[str, typer.Option(help="instType for instruments/fills.")] = "SWAP",
        mgn_mode: Annotated[str, typer.Option(help="mgnMode for leverage-info.")] = "cross",
        inst_id: Annotated[
            list[str] | None, typer.Option("--inst-id", help="instId (repeatable).")
        ] = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON records.")] = False,
        config: ConfigOption = None,
    ) -> None:
        """Fetch one OKX endpoint for an account and print it as a typed frame."""
        from posguard import frames
        from posguard.okx import OkxClient

        settings = settings_from(config)

        def run() -> pd.DataFrame:
            if what in (Fetchable.time, Fetchable.instruments) and account is None:
                client = OkxClient.public(settings)
            else:
                client = OkxClient.for_account(settings, account or _only_account(settings))
            with client:
                if what is Fetchable.time:
                    return pd.DataFrame([{"ts": client.server_time_ms()}])
                if what is Fetchable.instruments:
                    return frames.parse_instruments(client.instruments(inst_type))
                if what is Fetchable.positions:
                    return frames.parse_positions(
                        client.positions(inst_ids=inst_id or ()), account=client.account_name
                    )
                if what is Fetchable.leverage_info:
                    return frames.parse_leverage_info(client.leverage_info(mgn_mode, inst_id or ()))
                if what is Fetchable.positions_history:
                    history = client.positions_history()
                    _say_if_cut(history, "positions-history")
                    return frames.parse_positions_history(history.records)
                if what is Fetchable.fills:
                    fills = client.fills(inst_type=inst_type)
                    _say_if_cut(fills, "fills")
                    return frames.parse_fills(fills.records)
                config_record = frames.parse_account_config([client.account_config()])
                return pd.DataFrame([config_record.__dict__])

        _show(guarded(run), as_json)


def _say_if_cut(walk: PagedRecords[Any], what: str) -> None:
    """A walk stopped at its page limit is printed, but not as if it were everything."""
    if not walk.complete:
        from posguard.okx.paging import iso_ms

        typer.echo(
            f"note: {what} stopped after {walk.pages} pages; records older than "
            f"{iso_ms(walk.oldest_ms)} may exist but were not read",
            err=True,
        )


def _only_account(settings: Any) -> str:
    from posguard.errors import ConfigError

    names = sorted(settings.accounts)
    if len(names) == 1:
        return str(names[0])
    raise ConfigError(
        f"choose an account with --account (configured: {', '.join(names) or 'none'})"
    )
