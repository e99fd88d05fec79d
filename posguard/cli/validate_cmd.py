"""`posguard validate`: the data contract over saved OKX answers, offline."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from posguard.cli.common import print_json
from posguard.errors import DataError, PosguardError


class PosMode(StrEnum):
    net_mode = "net_mode"
    long_short_mode = "long_short_mode"


def _records(path: Path, expected: str) -> list[Any]:
    from posguard.frames import detect_entity
    from posguard.okx.saved import load_records

    try:
        records = load_records(path)
    except PosguardError as exc:
        raise DataError(f"{path}: {exc}" if str(path) not in str(exc) else str(exc)) from None
    entity = detect_entity(records)
    if entity not in (expected, "empty"):
        raise DataError(f"{path}: holds {entity} records, not {expected}; check the option")
    return records


def register(app: typer.Typer) -> None:
    @app.command("validate")
    def validate(
        positions: Annotated[
            Path, typer.Option("--positions", help="Saved account/positions answer (or data).")
        ],
        instruments: Annotated[
            Path, typer.Option("--instruments", help="Saved public/instruments answer.")
        ],
        leverage_info: Annotated[
            Path | None,
            typer.Option("--leverage-info", help="Saved account/leverage-info answer."),
        ] = None,
        pos_mode: Annotated[
            PosMode | None, typer.Option(help="The account's posMode, if known.")
        ] = None,
        tolerance: Annotated[
            float, typer.Option(help="Notional tolerance, relative (0.01 = 1%).")
        ] = 0.01,
        as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    ) -> None:
        """Validate saved OKX answers against posguard's data contract.

        Files are OKX response envelopes or bare `data` arrays. Exit status: 0 when every
        expectation passes, 1 when one fails, 2 when an input is unreadable or invalid.
        """
        from posguard import frames
        from posguard.frames.contract import instruments_frame, positions_frame
        from posguard.leverage import resolve_leverage

        try:
            position_frame = _parse(positions, "positions", frames.parse_positions)
            instrument_frame = _parse(instruments, "instruments", frames.parse_instruments)
            leverage_frame = (
                _parse(leverage_info, "leverage_info", frames.parse_leverage_info)
                if leverage_info
                else frames.parse_leverage_info([])
            )
        except PosguardError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
        from expectations.runner import shared_runner

        resolved = resolve_leverage(position_frame, leverage_frame)
        report = shared_runner().validate(
            positions_frame(resolved, instrument_frame),
            instruments_frame(instrument_frame),
            pos_mode=pos_mode.value if pos_mode else None,
            tolerance=tolerance,
        )
        if as_json:
            print_json(report.to_json())
        else:
            for result in report.results:
                mark = "ok  " if result.success else "FAIL"
                typer.echo(f"{mark} {result.expectation}")
                for row in result.failing:
                    key = " ".join(p for p in (row.inst_id, row.pos_side, row.mgn_mode) if p)
                    typer.echo(f"       {key}: {row.detail}")
            passed = sum(r.success for r in report.results)
            typer.echo(f"\n{passed}/{len(report.results)} expectations passed")
        raise typer.Exit(0 if report.success else 1)


def _parse(path: Path, entity: str, parse: Any) -> Any:
    records = _records(path, entity)
    try:
        return parse(records)
    except DataError as exc:
        raise DataError(f"{path}: {exc}") from None
