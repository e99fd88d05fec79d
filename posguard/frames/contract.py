"""The data contract's derived columns: everything the expectations check, as plain columns.

Cross-column rules (notional vs ctVal, lever vs the instrument's max, liqPx vs markPx, size vs
lotSz) become one column each here, so the GX suites stay declarative and a plain-pandas
evaluation of the same rules is possible. Pure and vectorized.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from posguard.notional import classify_notional, position_notional, relative_error

# A size is a multiple of lotSz when size / lotSz is this close to a whole number.
LOT_EPSILON = 1e-6
DERIVATIVE_TYPES = ("SWAP", "FUTURES")


def positions_frame(
    positions: pd.DataFrame, instruments: pd.DataFrame, account: str = ""
) -> pd.DataFrame:
    """Positions (leverage resolved) joined with their instrument and the derived checks;
    `account` names whose they are when several accounts are validated together."""
    merged = position_notional(positions, instruments)
    merged["account"] = account
    merged["row"] = np.arange(len(merged), dtype="int64")
    is_open = merged["is_open"].to_numpy(dtype=bool)
    measurable = is_open & merged["notionalUsd"].notna().to_numpy()
    rel = relative_error(merged["notionalUsd"], merged["notional"])
    merged["notional_rel_err"] = rel.where(measurable)
    verdict = classify_notional(merged["notionalUsd"], merged["notional"], merged["ctVal"])
    merged["notional_verdict"] = verdict.where(measurable, "unknown")
    # Only contract sizes are lot-bound; a MARGIN size includes borrowing and interest.
    # Contract sizes need ctVal and ctMult to mean anything; an instrument that lacks one has
    # an unknown notional, reported here rather than computed from a guess.
    contracts = (merged["size_unit"] == "contracts") & merged["instrument_known"]
    spec_ok = (merged["ctVal"] > 0) & (merged["ctMult"] > 0)
    merged["contract_spec_ok"] = spec_ok.astype("boolean").where(contracts)
    lots = (merged["size"] / merged["lotSz"]).where(merged["size_unit"] == "contracts")
    lot_ok = (lots - lots.round()).abs() <= LOT_EPSILON
    merged["lot_multiple_ok"] = lot_ok.astype("boolean").where(lots.notna())
    liq, mark = merged["liqPx"], merged["markPx"]
    losing = np.where(merged["side"] == "short", liq > mark, liq < mark)
    liq_ok = pd.Series(losing, index=merged.index).astype("boolean")
    merged["liq_side_ok"] = liq_ok.where(liq.notna() & mark.notna() & merged["is_open"])
    merged["mode_pos_side"] = merged["posSide"].where(merged["instType"].isin(DERIVATIVE_TYPES))
    if "lever_source" not in merged.columns:
        merged["lever_source"] = np.where(merged["lever"].notna(), "position", "unknown")
        merged["lever_reason"] = ""
    return merged


def instruments_frame(instruments: pd.DataFrame) -> pd.DataFrame:
    frame = instruments.reset_index(drop=True).copy()
    frame["row"] = np.arange(len(frame), dtype="int64")
    frame["is_derivative"] = frame["instType"].isin(DERIVATIVE_TYPES)
    return frame
