"""Which leverage applies to each position, and where it came from.

Order (design.md, "Leverage, never silently 0"): the position's own `lever`; else
leverage-info for the position's instId, mgnMode and (in long/short mode) posSide; else
unknown, with the reason. A configured default is used only when asked for, and then the
`lever_source` column says "config". Zero-size records are not positions and are skipped.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

LEVER_SOURCES = ("position", "leverage_info", "config", "unknown")

PM_REASON = "portfolio-margin cross position: OKX reports no leverage for it (59111)"
NO_ROW_REASON = 'lever is "" and leverage-info has no row for this instId and mgnMode'
ZERO_REASON = "zero-size record (closed within 30 days), not an open position"


def resolve_leverage(
    positions: pd.DataFrame,
    leverage_info: pd.DataFrame,
    *,
    failures: Mapping[tuple[str, str], str] | None = None,
    portfolio_margin: bool = False,
    config_default: float | None = None,
) -> pd.DataFrame:
    """`positions` with `lever` resolved and `lever_source`, `lever_reason` added.

    `failures` maps (instId, mgnMode) to why leverage-info could not be read for it.
    """
    out = positions.reset_index(drop=True).copy()
    is_open = out["is_open"].to_numpy(dtype=bool)
    reported = out["lever"].to_numpy(dtype="float64")
    from_position = is_open & np.isfinite(reported) & (reported > 0)
    source = np.where(from_position, "position", "unknown").astype(object)
    reason = np.where(is_open, "", ZERO_REASON).astype(object)

    info = leverage_info.dropna(subset=["lever"])
    info = info[info["lever"] > 0][["instId", "mgnMode", "posSide", "lever"]]
    info = info.drop_duplicates(["instId", "mgnMode", "posSide"], keep="last")
    keys = out[["instId", "mgnMode", "posSide"]]
    looked_up = keys.merge(
        info.rename(columns={"lever": "info_lever"}),
        on=["instId", "mgnMode", "posSide"],
        how="left",
        validate="many_to_one",
    )["info_lever"].to_numpy(dtype="float64")
    need = is_open & ~from_position
    from_info = need & np.isfinite(looked_up)
    lever = np.where(from_position, reported, np.where(from_info, looked_up, np.nan))
    source[from_info] = "leverage_info"

    unresolved = need & ~from_info
    failures = failures or {}
    inst_ids = out["instId"].to_numpy(dtype=object)
    mgn_modes = out["mgnMode"].to_numpy(dtype=object)
    for row in np.flatnonzero(unresolved):
        inst_id, mgn_mode = str(inst_ids[row]), str(mgn_modes[row])
        if (inst_id, mgn_mode) in failures:
            reason[row] = failures[(inst_id, mgn_mode)]
        elif portfolio_margin and mgn_mode == "cross":
            reason[row] = PM_REASON
        else:
            reason[row] = NO_ROW_REASON
        if config_default is not None:
            lever[row] = config_default
            source[row] = "config"
    out["lever"] = lever
    out["lever_source"] = pd.Series(source, dtype="str")
    out["lever_reason"] = pd.Series(reason, dtype="str")
    return out
