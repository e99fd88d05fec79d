"""Validation cost: the GX suites against the same rules in plain pandas.

    uv run python benchmarks/validation.py [--sizes 1000 10000 100000] [--repeat 3]

Both sides start from the same contract frame (posguard.frames.contract.positions_frame: the joins,
notional, lot and liqPx columns that any evaluation of these rules needs) and end with the same
output: every failing row named (instId, posSide, mgnMode) and explained per rule, by the same
`explain_rows` (the script checks the two outputs are equal). Printed per size:

- "rules": GX's run vs the pandas masks, both from the derived frame (GX's share alone);
- "stage": the validation stage as a flow runs it, parsed frames in, named failures out
  (derivation + rules): the ratio the issue's goal (<= 3x at 100k) is checked against.

GX's one-off costs (import, context and suite set-up) are printed separately: a process pays
them once (expectations.runner.shared_runner).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from posguard.frames import parse_instruments, parse_leverage_info, parse_positions
from posguard.frames.contract import positions_frame
from posguard.leverage import resolve_leverage
from posguard.okx.saved import load_records
from tests.conftest import SAMPLES

if TYPE_CHECKING:
    # Not at import: the rules import GX, whose one-off cost main() prints.
    from expectations.report import RuleResult
    from expectations.rules import Parameters


def positions(size: int, instruments: pd.DataFrame) -> pd.DataFrame:
    linear = instruments[instruments["ctType"] == "linear"].reset_index(drop=True)
    rng = np.random.default_rng(7)
    records = []
    for n in range(size):
        spec = linear.iloc[n % len(linear)]
        contracts = int(rng.integers(1, 500))
        mark = 1.0 + n % 97
        notional = contracts * spec["ctVal"] * mark
        if n % 1000 == 0:
            notional = contracts * mark  # the incident's bug, now and then
        records.append(
            {
                "instType": "SWAP",
                "instId": spec["instId"],
                "mgnMode": "cross",
                "posSide": "net",
                "pos": str(contracts),
                "avgPx": str(mark),
                "markPx": str(mark),
                "lever": "" if n % 500 == 0 else "5",
                "notionalUsd": str(float(notional)),
                "liqPx": "",
                "posId": str(n),
                "cTime": "1",
                "uTime": "1",
            }
        )
    return resolve_leverage(parse_positions(records), parse_leverage_info([]))


def unique_keys(
    frame: pd.DataFrame, instruments: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Each position its own instrument (a copy of its spec under a suffixed instId), so that
    (instId, posSide, mgnMode) stays unique at any size, as on a real account."""
    suffixed = frame["instId"] + "#" + pd.Series(np.arange(len(frame)), dtype="str")
    specs = instruments.set_index("instId").loc[frame["instId"]].reset_index()
    specs["instId"] = suffixed.to_numpy()
    keyed = frame.copy()
    keyed["instId"] = suffixed.to_numpy()
    return keyed, specs


def plain_pandas(frame: pd.DataFrame, parameters: Parameters) -> list[RuleResult]:
    """The positions rules' own pandas masks (`Rule.fails`), failing rows named like the
    runner does."""
    from expectations.rules import POSITION_RULES, rule_result

    df = frame[frame["is_open"]]
    return [rule_result(rule, "positions", df, parameters) for rule in POSITION_RULES.values()]


def named(results: list[RuleResult]) -> dict[str, list[tuple[str, str]]]:
    return {r.expectation: sorted((f.inst_id, f.detail) for f in r.failing) for r in results}


def best_of(repeat: int, fn: Callable[[], Any]) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return min(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    started = time.perf_counter()
    from expectations.runner import ExpectationsRunner

    imported = time.perf_counter() - started
    started = time.perf_counter()
    runner = ExpectationsRunner()
    built = time.perf_counter() - started
    print(f"one-off per process: GX import {imported:.2f} s, context+suites {built:.3f} s")
    instruments = parse_instruments(
        load_records(SAMPLES / "instruments_swap_ccxt_markets_info.json")
    )
    print(
        f"{'positions':>9} {'derive s':>9} {'GX s':>7} {'pandas s':>9} {'rules':>7} "
        f"{'stage':>7} {'failing':>8}"
    )
    for size in args.sizes:
        frame, specs = unique_keys(positions(size, instruments), instruments)
        derive_time, derived = best_of(args.repeat, partial(positions_frame, frame, specs))
        gx_time, report = best_of(
            args.repeat, partial(runner.validate, derived, None, pos_mode="net_mode")
        )
        parameters = {"notional_tolerance": 0.01, "allowed_pos_sides": ["net"]}
        pd_time, results = best_of(args.repeat, partial(plain_pandas, derived, parameters))
        if named(report.results) != named(results):
            raise SystemExit(f"GX and pandas disagree at {size} positions")
        failing = sum(len(r.failing) for r in results)
        stage = (derive_time + gx_time) / (derive_time + pd_time)
        print(
            f"{size:>9} {derive_time:>9.3f} {gx_time:>7.3f} {pd_time:>9.3f} "
            f"{gx_time / pd_time:>6.1f}x {stage:>6.1f}x {failing:>8}"
        )


if __name__ == "__main__":
    main()
