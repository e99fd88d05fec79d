"""Leverage recalculation for one account: gather, estimate, plan (and apply on request)."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from posguard.leverage.policy import plan
from posguard.leverage.volatility import Volatility, estimate, not_available
from posguard.okx import OkxClient
from posguard.registry import Registry
from posguard.settings import LeverageConfig, LeverageOverride
from posguard.stages.fetch import (
    AccountSnapshot,
    fetch_candles,
    fetch_instruments,
    fetch_snapshot,
    fetch_tiers,
)
from posguard.stages.leverage_apply import ChangeOutcome, apply_plan

logger = logging.getLogger("posguard.leverage")


def _text(value: Any) -> str:
    """A number for a log line: "N/A" for None/NaN; never raises."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return "N/A"
    return "N/A" if not math.isfinite(number) else f"{number:g}"


@dataclass
class LeverageReport:
    account: str
    plan: pd.DataFrame
    snapshot: AccountSnapshot
    outcomes: list[ChangeOutcome] = field(default_factory=list)

    def plan_json(self) -> list[dict[str, Any]]:
        """The plan as JSON: one object per leverage scope, numbers null when unknown."""
        rows: list[dict[str, Any]] = []
        for row in self.plan.to_dict("records"):
            rows.append(
                {
                    "instId": row["instId"],
                    "posSide": row["posSide"],
                    "mgnMode": row["mgnMode"],
                    "legs": [
                        {
                            "posSide": leg["posSide"],
                            "size": _number(leg["size"]),
                            "lever": _number(leg["lever"]),
                            "lever_source": leg["lever_source"],
                            "tier_max": _number(leg["tier_max"]),
                        }
                        for leg in row["legs"]
                    ],
                    "lever": _number(row["lever"]),
                    "lever_source": row["lever_source"],
                    "volatility": _number(row["volatility"]),
                    "target": _number(row["target"]),
                    "upper": _number(row["upper"]),
                    "bound": row["bound"],
                    "bound_detail": row["bound_detail"],
                    "action": row["action"],
                    "reason": row["reason"],
                }
            )
        return rows


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def market_volatility(
    client: OkxClient, inst_ids: list[str], config: LeverageConfig
) -> dict[str, Volatility]:
    """Each instrument's volatility from its recent candles (public data: the same for every
    account of the environment); a refused candles request makes it N/A with the reason."""
    candles, refused = fetch_candles(client, inst_ids, bar=config.bar, bars=config.window + 2)
    found: dict[str, Volatility] = {}
    for inst_id in sorted(set(inst_ids)):
        if inst_id in refused:
            found[inst_id] = not_available(config.method, refused[inst_id])
        else:
            found[inst_id] = estimate(
                candles.get(inst_id), bar=config.bar, window=config.window, method=config.method
            )
    return found


def recalculate(
    client: OkxClient,
    config: LeverageConfig,
    *,
    account_override: LeverageOverride | None = None,
    apply: bool = False,
    host_allows: bool = True,
    registry: Registry | None = None,
    run_id: str | None = None,
    snapshot: AccountSnapshot | None = None,
    volatility: Mapping[str, Volatility] | None = None,
) -> LeverageReport:
    """The plan, and with `apply` its set-leverage calls; `host_allows` False records each
    change as refused by configuration (a run from Prefect on a host that does not allow it).
    `volatility`: estimates already made for this moment (a round's, shared by its accounts);
    instruments it lacks are estimated here."""
    account = client.account_name or "public"
    snapshot = snapshot or fetch_snapshot(client)
    instruments = fetch_instruments(client, "SWAP")
    positions = snapshot.positions
    tiers = fetch_tiers(client, instruments, positions)
    open_ids = sorted(set(positions.loc[positions["is_open"], "instId"]))
    known = dict(volatility or {})
    volatility = {
        **{i: known[i] for i in open_ids if i in known},
        **market_volatility(client, [i for i in open_ids if i not in known], config),
    }
    overrides = {k: v.model_dump() for k, v in config.instruments.items()}
    leverage_plan = plan(
        positions,
        volatility,
        instruments,
        tiers,
        config.policy(account_override),
        instrument_overrides=overrides,
    )
    for row in leverage_plan.to_dict("records"):
        logger.info(
            "leverage %s %s %s %s: lever=%s (%s) volatility=%s target=%s bound=%s (%s) -> %s: %s",
            account,
            row["instId"],
            row["mgnMode"],
            row["posSide"],
            _text(row["lever"]),
            row["lever_source"],
            row["volatility_text"],
            _text(row["target"]),
            _text(row["upper"]),
            row["bound"],
            row["action"],
            row["reason"],
        )
    report = LeverageReport(account, leverage_plan, snapshot)
    report.outcomes = apply_plan(
        client,
        leverage_plan,
        registry=registry,
        account=account,
        dry_run=not apply,
        kill_switch=config.kill_switch,
        host_allows=host_allows,
        run_id=run_id,
    )
    return report
