"""Validation cost: the GX suites against the same rules in plain pandas.

    uv run python benchmarks/validation.py [--sizes 1000 10000 100000] [--repeat 3]

Both sides get the same contract frame (posguard.contract.positions_frame, with its derived
columns) and produce the failing rows per rule (the script checks they agree). "with derive"
is the ratio once the shared derivation (joins, notional, lot and liqPx columns), which any
evaluation of these rules needs, is counted on both sides. GX's one-off costs (import, context
and suite set-up) are printed separately: a process pays them once.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from posguard.contract import positions_frame
from posguard.frames import load_records, parse_instruments, parse_leverage_info, parse_positions
from posguard.frames.entities import POSITIONS
from posguard.leverage import resolve_leverage
from tests.conftest import SAMPLES


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
    # Unique keys need unique instIds: suffix them (specs are joined on the original below).
    frame = resolve_leverage(parse_positions(records), parse_leverage_info([]))
    merged = positions_frame(frame, instruments)
    merged["instId"] = merged["instId"] + "#" + merged["row"].astype(str)
    return merged


# The columns positions_frame starts from (parsed, leverage resolved).
RAW = [*POSITIONS.names, "side", "size", "size_unit", "is_open", "lever_source", "lever_reason"]


def plain_pandas(df: pd.DataFrame, tolerance: float) -> dict[str, list[int]]:
    """The positions suite's rules as pandas masks; returns failing row numbers per rule."""
    is_open = df["is_open"]
    lever = df["lever"]
    rules = {
        "lever > 0": is_open & ~(lever > 0),
        "lever <= instrument max lever": is_open
        & lever.notna()
        & df["maxLever"].notna()
        & (lever > df["maxLever"]),
        "notional consistent with ctVal": df["notional_rel_err"].notna()
        & (df["notional_rel_err"] > tolerance),
        "contracts used as coins": df["notional_verdict"] == "contracts_as_coins",
        "instId present in instruments": ~df["instrument_known"],
        "posSide in {long, short, net}": ~df["posSide"].isin(["long", "short", "net"]),
        "posSide consistent with posMode": df["instType"].isin(["SWAP", "FUTURES"])
        & ~df["posSide"].isin(["net"]),
        "mgnMode in {cross, isolated}": ~df["mgnMode"].isin(["cross", "isolated"]),
        "markPx > 0 on open positions": is_open & ~(df["markPx"] > 0),
        "avgPx > 0 on open positions": is_open & ~(df["avgPx"] > 0),
        "liqPx on the losing side of markPx": df["liq_side_ok"].eq(False).fillna(False),
        "(instId, posSide, mgnMode) unique": df.duplicated(
            ["instId", "posSide", "mgnMode"], keep=False
        ),
        "pos a multiple of lotSz": is_open & df["lot_multiple_ok"].eq(False).fillna(False),
    }
    return {
        name: np.flatnonzero(mask.to_numpy(dtype=bool)).tolist() for name, mask in rules.items()
    }


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
        f"{'positions':>9} {'derive s':>9} {'GX s':>8} {'pandas s':>9} {'GX/pandas':>10} "
        f"{'with derive':>12} {'failing':>8}"
    )
    for size in args.sizes:
        frame = positions(size, instruments)
        derive_time, _ = best_of(
            args.repeat,
            lambda f=frame: positions_frame(
                f.drop(columns=[c for c in f.columns if c not in RAW]), instruments
            ),
        )
        gx_time, report = best_of(
            args.repeat, lambda f=frame: runner.validate(f, None, pos_mode="net_mode")
        )
        pd_time, masks = best_of(args.repeat, lambda f=frame: plain_pandas(f, 0.01))
        gx_failing = sum(len(r.failing) for r in report.failed if r.suite == "positions")
        pd_failing = sum(len(rows) for rows in masks.values())
        assert gx_failing == pd_failing, (gx_failing, pd_failing)
        with_derive = (derive_time + gx_time) / (derive_time + pd_time)
        print(
            f"{size:>9} {derive_time:>9.3f} {gx_time:>8.3f} {pd_time:>9.3f} "
            f"{gx_time / pd_time:>9.1f}x {with_derive:>11.1f}x {gx_failing:>8}"
        )


if __name__ == "__main__":
    main()
