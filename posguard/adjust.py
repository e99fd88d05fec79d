"""Applying a leverage plan: set-leverage where the plan says so, then read it back.

Dry-run by default. OKX's refusals (pending orders 59101/59107/59112, limits and margin
59102-59109, portfolio margin 59111) are outcomes recorded with their reason, not errors:
retrying them cannot help. Transient errors propagate, so the task's retry predicate retries.
Every applied or refused change is written to the registry's leverage-change table.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd

from posguard.errors import RejectedError
from posguard.okx import OkxClient
from posguard.registry import Registry

logger = logging.getLogger("posguard.leverage")

OUTCOME_CODES = {
    "59101",
    "59102",
    "59103",
    "59104",
    "59105",
    "59106",
    "59107",
    "59108",
    "59109",
    "59111",
    "59112",
    "59100",
    "59000",
}


@dataclass(frozen=True)
class ChangeOutcome:
    instId: str
    posSide: str
    mgnMode: str
    from_lever: float | None
    to_lever: float | None
    outcome: str  # applied | refused | mismatch | dry_run | blocked
    code: str | None
    reason: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _lever_text(value: float | None) -> str | None:
    if value is None or not math.isfinite(value):
        return None
    return f"{value:g}"


def apply_plan(
    client: OkxClient,
    plan: pd.DataFrame,
    *,
    registry: Registry | None,
    account: str,
    pos_mode: str | None,
    dry_run: bool = True,
    kill_switch: bool = False,
    run_id: str | None = None,
) -> list[ChangeOutcome]:
    outcomes: list[ChangeOutcome] = []
    changes = plan[plan["action"].isin(["raise", "lower"])]
    for row in changes.to_dict("records"):
        target = float(row["target"]) if row["target"] is not None else None
        current = row["lever"]
        base = {
            "instId": row["instId"],
            "posSide": row["posSide"],
            "mgnMode": row["mgnMode"],
            "from_lever": current,
            "to_lever": target,
        }
        if target is None:
            continue
        if dry_run:
            outcomes.append(
                ChangeOutcome(
                    **base, outcome="dry_run", code=None, reason=f"dry run: would set {target:g}x"
                )
            )
            continue
        if kill_switch:
            outcome = ChangeOutcome(
                **base,
                outcome="blocked",
                code=None,
                reason="the leverage kill switch forbids applying",
            )
            outcomes.append(outcome)
            _record(registry, account, outcome, run_id)
            continue
        hedged_isolated = pos_mode == "long_short_mode" and row["mgnMode"] == "isolated"
        try:
            client.set_leverage(
                lever=_lever_text(target) or "",
                mgn_mode=str(row["mgnMode"]),
                inst_id=str(row["instId"]),
                pos_side=str(row["posSide"]) if hedged_isolated else None,
            )
        except RejectedError as exc:
            if exc.code not in OUTCOME_CODES:
                raise
            outcome = ChangeOutcome(
                **base, outcome="refused", code=exc.code, reason=exc.okx_msg or str(exc)
            )
            logger.warning(
                "leverage of %s %s not changed: %s %s",
                row["instId"],
                row["mgnMode"],
                exc.code,
                exc.okx_msg,
            )
            outcomes.append(outcome)
            _record(registry, account, outcome, run_id)
            continue
        read_back = _read_back(client, str(row["instId"]), str(row["mgnMode"]), str(row["posSide"]))
        if read_back is not None and abs(read_back - target) < 1e-9:
            outcome = ChangeOutcome(
                **base,
                outcome="applied",
                code=None,
                reason=f"set {target:g}x and read back {read_back:g}x",
            )
        else:
            outcome = ChangeOutcome(
                **base,
                outcome="mismatch",
                code=None,
                reason=f"set {target:g}x but leverage-info reads "
                f"{'N/A' if read_back is None else f'{read_back:g}x'}",
            )
        outcomes.append(outcome)
        _record(registry, account, outcome, run_id)
    return outcomes


def _read_back(client: OkxClient, inst_id: str, mgn_mode: str, pos_side: str) -> float | None:
    for row in client.leverage_info(mgn_mode, [inst_id]):
        side = row.get("posSide") or "net"
        if side in (pos_side, "net") or pos_side == "net":
            try:
                return float(row["lever"])
            except (KeyError, TypeError, ValueError):
                return None
    return None


def _record(
    registry: Registry | None, account: str, outcome: ChangeOutcome, run_id: str | None
) -> None:
    if registry is None:
        return
    registry.record_leverage_change(
        account=account,
        inst_id=outcome.instId,
        mgn_mode=outcome.mgnMode,
        pos_side=outcome.posSide,
        from_lever=_lever_text(outcome.from_lever),
        to_lever=_lever_text(outcome.to_lever),
        outcome=outcome.outcome,
        code=outcome.code,
        reason=outcome.reason,
        run_id=run_id,
    )
