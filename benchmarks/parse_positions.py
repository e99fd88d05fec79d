"""Time to parse OKX positions payloads into frames, against ccxt's okx.parse_positions.

    uv run python benchmarks/parse_positions.py [--sizes 1000 10000 100000] [--repeat 3]

Prints, per size: posguard's frames.parse_positions, ccxt's parse_positions (list of dicts,
markets loaded from the real instrument sample) and a bare baseline (pd.DataFrame of the
records plus pd.to_numeric on the same numeric columns, no validation), with the ratios.
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd

from posguard.frames import parse_positions
from posguard.frames.entities import POSITIONS

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "okx-samples"
INSTRUMENTS = SAMPLES / "instruments_swap_ccxt_markets_info.json"
TEMPLATE = SAMPLES / "positions_ws_ccxt_docstring_xrp.json"


def payload(size: int) -> list[dict[str, Any]]:
    template = json.loads(TEMPLATE.read_text())["data"][0]
    instruments = json.loads(INSTRUMENTS.read_text())
    ids = [i["instId"] for i in instruments if i["ctType"] == "linear"]
    records = []
    for n in range(size):
        record = copy.copy(template)
        record["instId"] = ids[n % len(ids)]
        record["pos"] = str(1 + n % 50)
        record["lever"] = "" if n % 10 == 0 else str(1 + n % 20)
        record["posId"] = str(700_000_000_000_000_000 + n)
        records.append(record)
    return records


def best_of(repeat: int, fn: Callable[[], object]) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def ccxt_parser() -> Callable[[list[dict[str, Any]]], object]:
    import ccxt  # benchmark-only dependency

    exchange = ccxt.okx()
    markets = exchange.parse_markets(json.loads(INSTRUMENTS.read_text()))
    exchange.set_markets(markets)
    return lambda records: exchange.parse_positions(records)


def bare(records: list[dict[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame(records, columns=POSITIONS.names)
    numeric = [c.name for c in POSITIONS.columns if c.kind != "str"]
    frame[numeric] = frame[numeric].apply(pd.to_numeric, errors="coerce")
    return frame


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    ccxt_parse = ccxt_parser()
    header = f"{'records':>8} {'posguard s':>11} {'ccxt s':>9} {'bare s':>9} {'ccxt/ours':>10} "
    print(header + f"{'ours/bare':>10} {'us/record':>10}")
    for size in args.sizes:
        records = payload(size)
        ours = best_of(args.repeat, partial(parse_positions, records))
        theirs = best_of(args.repeat, partial(ccxt_parse, records))
        baseline = best_of(args.repeat, partial(bare, records))
        print(
            f"{size:>8} {ours:>11.4f} {theirs:>9.4f} {baseline:>9.4f} {theirs / ours:>9.1f}x "
            f"{ours / baseline:>9.2f}x {ours / size * 1e6:>10.2f}"
        )


if __name__ == "__main__":
    main()
