"""Validation tasks: the GX suites over a snapshot (GX is imported here, lazily)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd
from prefect import task

from posguard.frames.contract import instruments_frame, positions_frame
from tasks.context import settings
from tasks.retry import LOCAL

if TYPE_CHECKING:
    from expectations.report import ValidationReport
    from expectations.runner import ExpectationsRunner


def _runner() -> ExpectationsRunner:
    from expectations.runner import shared_runner

    return shared_runner(settings().state_dir / "data-docs")


@task(name="validate-positions", **LOCAL)
def validate_positions(
    positions: pd.DataFrame, instruments: pd.DataFrame, pos_mode: str | None
) -> ValidationReport:
    runner = _runner()
    contract = positions_frame(positions, instruments)
    report = runner.validate(
        contract,
        None,
        pos_mode=pos_mode,
        tolerance=settings().notional_tolerance,
        name_rows=False,
    )
    if not report.success:
        # Data Docs cost a second run: build them only when there is something to read
        # (that run names the failing rows).
        report = runner.validate(
            contract,
            None,
            pos_mode=pos_mode,
            tolerance=settings().notional_tolerance,
            build_docs=True,
        )
    return report


@task(name="validate-instruments", **LOCAL)
def validate_instruments(instruments: pd.DataFrame) -> ValidationReport:
    runner = _runner()
    contract = instruments_frame(instruments)
    report = runner.validate(None, contract, name_rows=False)
    if not report.success:
        report = runner.validate(None, contract, build_docs=True)
    return report
