"""The one notional formula, by contract type (okx-facts.md section 4).

linear (USDT/USDC-margined): |pos| x ctVal x ctMult x markPx, in the quote currency (~USD);
inverse (coin-margined):     |pos| x ctVal x ctMult, in USD, fixed.
MARGIN positions are not contracts: a long's size is in base currency (x markPx), a short's in
quote currency (already a notional).

Everything is vectorized over frames; a missing input gives NA, never 0.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

NotionalVerdict = Literal["ok", "contracts_as_coins", "mismatch", "unknown"]

CONTRACTS_AS_COINS = "contracts used as coins"


def contract_notional(
    size: pd.Series, ct_val: pd.Series, ct_mult: pd.Series, mark_px: pd.Series, ct_type: pd.Series
) -> pd.Series:
    """Notional of `size` contracts: linear in quote currency, inverse in USD.

    An unknown ctMult ("" on the wire) gives an unknown notional: OKX sends "1" for every
    contract seen so far, but assuming it would turn a missing value into a number.
    """
    face = size.abs() * ct_val * ct_mult
    linear = face * mark_px
    result = np.where(ct_type == "inverse", face, np.where(ct_type == "linear", linear, np.nan))
    return pd.Series(result, index=size.index, dtype="float64")


def position_notional(positions: pd.DataFrame, instruments: pd.DataFrame) -> pd.DataFrame:
    """`positions` with the instrument columns it needs and a `notional` column.

    Positions whose instId is not in `instruments` get NA (and `instrument_known` False):
    their notional cannot be computed, which the validation stage reports.
    """
    specs = instruments[["instId", "ctType", "ctVal", "ctMult", "lotSz", "tickSz", "maxLever"]]
    specs = specs.drop_duplicates("instId", keep="last")
    merged = positions.merge(specs, on="instId", how="left", validate="many_to_one")
    merged["instrument_known"] = merged["instId"].isin(specs["instId"]).to_numpy()
    unit = merged["size_unit"]
    contracts = contract_notional(
        merged["size"], merged["ctVal"], merged["ctMult"], merged["markPx"], merged["ctType"]
    )
    base = merged["size"] * merged["markPx"]
    merged["notional"] = np.where(
        unit == "contracts",
        contracts,
        np.where(unit == "base", base, np.where(unit == "quote", merged["size"], np.nan)),
    ).astype("float64")
    return merged


def relative_error(reported: pd.Series, computed: pd.Series) -> pd.Series:
    """|reported - computed| / computed; NA where either side is unknown or computed is 0."""
    safe = computed.where(computed != 0)
    return ((reported - safe).abs() / safe.abs()).astype("float64")


def classify_notional(
    reported: pd.Series, computed: pd.Series, ct_val: pd.Series, tolerance: float = 0.01
) -> pd.Series:
    """ok / contracts_as_coins / mismatch / unknown, per row.

    A reported value off by a factor of ctVal (either way) is the fingerprint of multiplying
    contracts by price without ctVal: 100x too small for XRP-USDT-SWAP, 100x too large for
    BTC-USDT-SWAP (ctVal 0.01).
    """
    ratio = reported / computed.where(computed != 0)
    err = (ratio - 1).abs()
    near_ct_val = ((ratio * ct_val - 1).abs() <= tolerance) | (
        (ratio / ct_val - 1).abs() <= tolerance
    )
    fingerprint = near_ct_val & (ct_val.sub(1).abs() > tolerance)
    verdict = np.select(
        [ratio.isna(), err <= tolerance, fingerprint],
        ["unknown", "ok", "contracts_as_coins"],
        default="mismatch",
    )
    return pd.Series(verdict, index=reported.index, dtype="str")
