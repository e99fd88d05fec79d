"""What people see: artifacts in the Prefect UI and events that automations turn into alerts.

Events name the account and the instrument as resources:
- `posguard.expectation.failed`: one per failing (expectation, position);
- `posguard.drift.confirmed`: confirmed drift; `posguard.drift.escalated`: a confirmed drift
  still unresolved after `drift.escalate_after` observations; `posguard.drift.healed`;
- `posguard.leverage.changed` (an applied change: account, instId, scope, from, to) /
  `posguard.leverage.refused` / `posguard.leverage.unknown`, one per leverage scope (posSide
  `long+short` for a cross scope shared by both legs).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import pandas as pd
from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.events import emit_event

from posguard.drift import DriftEvent
from posguard.stages.leverage_plan import LeverageReport
from tasks.retry import LOCAL

if TYPE_CHECKING:
    from expectations.report import ValidationReport

MAX_ROWS = 500  # an artifact is for reading; the registry keeps everything


def artifact_key(*parts: str) -> str:
    """Artifact keys must be lowercase letters, digits and dashes."""
    return re.sub(r"[^a-z0-9-]+", "-", "-".join(parts).lower()).strip("-")


def resource(account: str, inst_id: str, pos_side: str = "", mgn_mode: str = "") -> dict[str, str]:
    key = ".".join(p for p in (account, inst_id, pos_side, mgn_mode) if p)
    return {
        "prefect.resource.id": f"posguard.position.{key}",
        "prefect.resource.name": f"{inst_id} {pos_side} {mgn_mode}".strip(),
        "posguard.account": account,
        "posguard.instId": inst_id,
    }


# What posguard watch says when an account's positions change (its resource: the account).
POSITION_CHANGED = "posguard.position.changed"


def account_resource(account: str) -> dict[str, str]:
    """The account as an event's resource (what the on-change trigger matches)."""
    return {"prefect.resource.id": f"posguard.account.{account}", "prefect.resource.name": account}


def instrument_related(inst_id: str) -> dict[str, str]:
    return {
        "prefect.resource.id": f"posguard.instrument.{inst_id}",
        "prefect.resource.role": "instrument",
        "prefect.resource.name": inst_id,
    }


def related(account: str, inst_id: str) -> list[dict[str, str]]:
    return [
        {**account_resource(account), "prefect.resource.role": "account"},
        instrument_related(inst_id),
    ]


def _cell(value: Any) -> Any:
    if value is None:
        return None
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        return str(value)
    return value.item() if hasattr(value, "item") else value


def positions_table(positions: pd.DataFrame, instruments: pd.DataFrame) -> list[dict[str, Any]]:
    """The open positions with notional and lever, as the artifact and the run summary show
    them (`posguard status` and the demo's screen read the summary)."""
    from posguard.notional import position_notional

    merged = position_notional(positions[positions["is_open"]], instruments)
    return [
        {
            "instId": r["instId"],
            "posSide": r["posSide"],
            "mgnMode": r["mgnMode"],
            "pos": _cell(r["pos"]),
            "notional": _cell(r["notional"]),
            "notionalUsd (OKX)": _cell(r["notionalUsd"]),
            "lever": _cell(r["lever"]),
            "lever_source": r["lever_source"],
        }
        for r in merged.head(MAX_ROWS).to_dict("records")
    ]


@task(name="publish-positions", **LOCAL)
def publish_positions(
    account: str, positions: pd.DataFrame, instruments: pd.DataFrame
) -> list[dict[str, Any]]:
    """The open positions artifact; returns its rows, which the run's summary keeps too."""
    table = positions_table(positions, instruments)
    create_table_artifact(
        key=artifact_key("positions", account),
        table=table,
        description=f"Open positions of {account} with notional and lever",
    )
    return table


@task(name="publish-validation", **LOCAL)
def publish_validation(
    account: str,
    report: ValidationReport,
    what: str = "positions",
    already_alerted: set[tuple[str, str, str, str]] | None = None,
) -> int:
    """Artifacts with every failure; events only for failures the last run did not have,
    so a standing problem alerts once, not every 30 seconds."""
    failing = [(r.expectation, row) for r in report.failed for row in r.failing]
    table = [
        {
            "expectation": name,
            "instId": row.inst_id,
            "posSide": row.pos_side,
            "mgnMode": row.mgn_mode,
            "detail": row.detail,
        }
        for name, row in failing[:MAX_ROWS]
    ]
    docs = (
        f"\n\n[This run in Great Expectations Data Docs]({report.data_docs})"
        if report.data_docs
        else ""
    )
    summary = (
        f"**{len(report.failed)} of {len(report.results)} expectations failed** for {account}"
        if failing
        else f"All {len(report.results)} expectations passed for {account}"
    )
    create_markdown_artifact(
        key=artifact_key("expectations", what, account),
        markdown=f"# {what.title()} expectations\n\n{summary}{docs}",
    )
    if table:
        create_table_artifact(
            key=artifact_key("failed-expectations", what, account),
            table=table,
            description=f"Failed expectations: {summary}",
        )
    for name, row in failing:
        if (name, row.inst_id, row.pos_side, row.mgn_mode) in (already_alerted or set()):
            continue
        emit_event(
            event="posguard.expectation.failed",
            resource=resource(account, row.inst_id, row.pos_side, row.mgn_mode),
            related=related(account, row.inst_id),
            payload={
                "account": account,
                "expectation": name,
                "instId": row.inst_id,
                "posSide": row.pos_side,
                "mgnMode": row.mgn_mode,
                "detail": row.detail,
                "data_docs": report.data_docs,
            },
        )
    return len(failing)


@task(name="publish-drift", **LOCAL)
def publish_drift(account: str, events: list[DriftEvent]) -> int:
    table = [{k: v for k, v in e.to_json().items() if k != "evidence"} for e in events]
    if table:
        create_table_artifact(
            key=artifact_key("drift", account),
            table=table[:MAX_ROWS],
            description=f"Drift events of {account} this cycle",
        )
    alerts = 0
    for drift in events:
        if drift.status not in ("confirmed", "healed"):
            continue
        alerts += 1
        escalated = bool(drift.evidence.get("escalated"))
        emit_event(
            # An escalation is its own alert: "still unresolved", not a second confirmation.
            event="posguard.drift.escalated" if escalated else f"posguard.drift.{drift.status}",
            resource=resource(account, drift.inst_id, drift.pos_side, drift.mgn_mode),
            related=related(account, drift.inst_id),
            payload={
                **{k: v for k, v in drift.to_json().items() if k != "evidence"},
                "escalated": escalated,
                "observations": drift.evidence.get("observations"),
            },
        )
    return alerts


# Outcome of a scope's change -> event kind. "unknown": the write's answer was lost and the
# read-back failed too, so nobody knows which leverage the positions carry now.
LEVERAGE_EVENTS = {
    "applied": "changed",
    "refused": "refused",
    "not_applied": "refused",
    "mismatch": "refused",
    "blocked": "refused",
    "unknown": "unknown",
}


def _legs_text(legs: list[dict[str, Any]]) -> str:
    def tier(value: Any) -> str:
        return "tier unknown" if value is None else f"tier {value:g}x"

    return ", ".join(f"{leg['posSide']} {leg['size']:g} ({tier(leg['tier_max'])})" for leg in legs)


def leverage_scope(mgn_mode: str, pos_side: str) -> str:
    """The OKX scope a leverage applies to: cross is the instrument's (both legs in long/short
    mode), isolated is per leg in long/short mode and per instrument in net mode."""
    if mgn_mode == "isolated" and pos_side in ("long", "short"):
        return f"isolated {pos_side}"
    return mgn_mode


def _lever(value: Any) -> str | None:
    number = _cell(value)
    return f"{number:g}" if isinstance(number, int | float) else None


@task(name="publish-leverage", **LOCAL)
def publish_leverage(account: str, report: LeverageReport) -> None:
    # A table cell shows text: each leg as "long 600 (tier 25x)".
    rows = [{**row, "legs": _legs_text(row["legs"])} for row in report.plan_json()]
    create_table_artifact(
        key=artifact_key("leverage-plan", account),
        table=rows[:MAX_ROWS],
        description=f"Leverage plan of {account}, one row per OKX leverage scope "
        f"(volatility null = N/A; upper null = bound unknown, kept)",
    )
    for outcome in report.outcomes:
        kind = LEVERAGE_EVENTS.get(outcome.outcome)
        if kind is None:
            continue
        emit_event(
            event=f"posguard.leverage.{kind}",
            resource=resource(account, outcome.instId, outcome.posSide, outcome.mgnMode),
            related=related(account, outcome.instId),
            payload={
                "account": account,
                **outcome.to_json(),
                "scope": leverage_scope(outcome.mgnMode, outcome.posSide),
                "from": _lever(outcome.from_lever),
                "to": _lever(outcome.to_lever),
            },
        )
