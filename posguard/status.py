"""How each account is doing, read from the registry alone (`posguard status`, the demo screen).

No exchange call and no Prefect: this is the answer an operator can get while either is down.
Everything comes from what the flows and the engine stored (runs, the engine's memory, drift
events, leverage changes, positions); a section the registry holds nothing for is None, so a
reader can say "not recorded" instead of guessing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlalchemy import make_url

from posguard.drift import EngineMemory, iso_ms
from posguard.drift.model import key_of
from posguard.errors import ConfigError
from posguard.registry import Registry

RECONCILE_FLOW = "reconcile-positions"
LEVERAGE_FLOW = "recalculate-leverage"
# The newest alerts shown; the total is given beside them.
ALERT_LIMIT = 5
# What publish_drift alerts on (tasks/publish.py): a confirmation, an escalation, a heal.
ALERT_STATUSES = ("confirmed", "healed")
PLAN_FIELDS = (
    "instId",
    "posSide",
    "mgnMode",
    "lever",
    "lever_source",
    "target",
    "upper",
    "bound",
    "action",
    "reason",
)


def _iso(epoch_ms: int | None) -> str | None:
    return None if epoch_ms is None else iso_ms(int(epoch_ms))


def _summary(run: dict[str, Any]) -> dict[str, Any]:
    parsed = json.loads(run.get("summary") or "{}")
    return parsed if isinstance(parsed, dict) else {}


def _last(runs: list[dict[str, Any]], flow: str) -> dict[str, Any] | None:
    matching = [r for r in runs if r["flow"] == flow]
    return matching[-1] if matching else None


def last_cycle(
    memory: EngineMemory, saved_ms: int | None, run: dict[str, Any] | None
) -> dict[str, Any]:
    """The last reconcile run as recorded, and the last snapshot the engine concluded on.

    A cycle that drew no conclusion saves nothing in the engine's memory, so only a recorded
    run can say that the last cycle was not observed, and why."""
    cycle: dict[str, Any] = {
        "run": None,
        "observed": None,
        "why": None,
        "last_observed_snapshot": _iso(memory.last_snapshot_ms),
        "memory_saved_at": _iso(saved_ms),
    }
    if run is None:
        return cycle
    summary = _summary(run)
    cycle["run"] = {
        "id": run["id"],
        "status": run["status"],
        "started_at": _iso(run["started_at_ms"]),
        "finished_at": _iso(run["finished_at_ms"]),
    }
    if run["status"] == "not_observed":
        cycle["observed"], cycle["why"] = False, summary.get("not_observed")
    elif summary.get("skipped"):
        cycle["observed"], cycle["why"] = False, summary["skipped"]
    elif run["status"] == "completed":
        cycle["observed"] = True
    else:
        cycle["why"] = f"run {run['status']}"
    return cycle


def discrepancies(memory: EngineMemory, now_ms: int) -> list[dict[str, Any]]:
    """The engine's pending discrepancies, oldest first; age from the first observation."""
    found = []
    for text, pending in memory.pending.items():
        inst_id, pos_side, mgn_mode = key_of(text)
        if pending.escalated:
            status = "escalated"
        else:
            status = "confirmed" if pending.confirmed else "suspected"
        found.append(
            {
                "instId": inst_id,
                "posSide": pos_side,
                "mgnMode": mgn_mode,
                "kind": pending.kind,
                "status": status,
                "cause": pending.cause,
                "first_seen": _iso(pending.first_ms),
                "observations": pending.count,
                "age_seconds": max(0, now_ms - pending.first_ms) / 1000,
                "id": pending.id,
            }
        )
    return sorted(found, key=lambda d: (d["first_seen"], d["instId"]))


def expectations(runs: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The failing rows of the last reconcile run that evaluated expectations."""
    for run in reversed([r for r in runs if r["flow"] == RECONCILE_FLOW]):
        summary = _summary(run)
        if "expectations" not in summary:
            continue  # a run that observed nothing evaluated nothing
        report = summary["expectations"]
        base = {"run": run["id"], "at": _iso(run["started_at_ms"])}
        if report is None:
            return {**base, "evaluated": 0, "failing": []}
        return {
            **base,
            "evaluated": len(report["results"]),
            "failing": [
                {
                    "expectation": result["expectation"],
                    "instId": row["instId"],
                    "posSide": row["posSide"],
                    "mgnMode": row["mgnMode"],
                    "detail": row.get("detail"),
                }
                for result in report["results"]
                if not result["success"]
                for row in result["failing"]
            ],
        }
    return None


def alerts(events: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
    """The newest drift alerts (newest last) and how many there are in all."""
    raised = [e for e in events if e["status"] in ALERT_STATUSES]
    return [
        {
            "at": _iso(e["at_ms"]),
            "instId": e["inst_id"],
            "posSide": e["pos_side"],
            "mgnMode": e["mgn_mode"],
            "kind": e["kind"],
            "status": "escalated" if e["evidence"].get("escalated") else e["status"],
            "cause": e["cause"],
        }
        for e in raised[-ALERT_LIMIT:]
    ], len(raised)


def leverage_change(changes: list[dict[str, Any]]) -> dict[str, Any] | None:
    if not changes:
        return None
    last = changes[-1]
    return {
        "at": _iso(last["at_ms"]),
        "instId": last["inst_id"],
        "posSide": last["pos_side"],
        "mgnMode": last["mgn_mode"],
        "from_lever": last["from_lever"],
        "to_lever": last["to_lever"],
        "outcome": last["outcome"],
        "code": last["code"],
        "reason": last["reason"],
    }


def leverage_plan(run: dict[str, Any] | None) -> dict[str, Any] | None:
    if run is None:
        return None
    rows = _summary(run).get("plan") or []
    return {
        "run": run["id"],
        "at": _iso(run["started_at_ms"]),
        "rows": [{k: row.get(k) for k in PLAN_FIELDS} for row in rows],
    }


def positions(runs: list[dict[str, Any]], registry_rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Open positions as the last reconcile run that observed the account saw them on the
    exchange (with notional and lever source), else the registry's open rows (the bot's
    belief, which has neither)."""
    for run in reversed([r for r in runs if r["flow"] == RECONCILE_FLOW]):
        seen = _summary(run).get("open_positions")
        if seen is not None:
            return {
                "source": "exchange",
                "run": run["id"],
                "at": _iso(run["started_at_ms"]),
                "rows": seen,
            }
    return {
        "source": "registry",
        "run": None,
        "at": None,
        "rows": [
            {
                "instId": r["inst_id"],
                "posSide": r["pos_side"],
                "mgnMode": r["mgn_mode"],
                "pos": r["pos"],
                "notional": None,
                "lever": r["lever"],
                "lever_source": None,
            }
            for r in registry_rows
            if r["pos"] != "0"
        ],
    }


def account_status(registry: Registry, account: str, now_ms: int) -> dict[str, Any]:
    runs = registry.runs(account)
    memory, _version = registry.load_memory(account)
    reconcile_run = _last(runs, RECONCILE_FLOW)
    recent_alerts, alert_total = alerts(registry.events(account))
    return {
        "account": account,
        "last_cycle": last_cycle(memory, registry.memory_saved_at(account), reconcile_run),
        "positions": positions(runs, registry.rows(account)),
        "discrepancies": discrepancies(memory, now_ms),
        "expectations": expectations(runs),
        "alerts": recent_alerts,
        "alerts_total": alert_total,
        "leverage_plan": leverage_plan(_last(runs, LEVERAGE_FLOW)),
        "leverage_change": leverage_change(registry.leverage_changes(account)),
    }


def existing_registry(url: str) -> Registry:
    """The registry at `url`, which must exist: a reader that created an empty SQLite file
    (and its folders) on a mistyped path would report "nothing recorded" instead of the typo."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database not in ("", ":memory:") and not Path(database).is_file():
            raise ConfigError(
                f"registry {url} does not exist: check registry_url (or state_dir) in the "
                "settings; a registry is created by the first flow run, replay or import"
            )
    return Registry(url)


def status(registry: Registry, accounts: list[str], now_ms: int) -> dict[str, Any]:
    """One object: when it was read, from which registry (no password), each account."""
    return {
        "at": iso_ms(now_ms),
        "registry": registry.safe_url,
        "accounts": [account_status(registry, a, now_ms) for a in accounts],
    }
