"""The demo's live screen: what posguard found, per account, in one terminal page.

`demo_screen` is pure (data in, a rich renderable out) so that a test can render it to text;
the demo reads the data (the registry through posguard.status, the alert receiver) and puts
the result on a rich Live display every cycle.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

# Enough rows to see what is going on, few enough for one screen.
MAX_EVENTS = 8
MAX_ALERTS = 6


@dataclass(frozen=True)
class ScreenData:
    at: str  # when the data was read
    ui: str  # the Prefect UI's address
    accounts: list[dict[str, Any]]  # posguard.status account objects
    # Newest drift events per account, as the registry stores them (newest last).
    events: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    alerts: list[dict[str, Any]] = field(default_factory=list)  # webhook bodies received
    problems: list[str] = field(default_factory=list)  # what could not be read, and why


def _shown(value: Any) -> str:
    if value is None or value == "":
        return "N/A"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _money(value: Any) -> str:
    return f"{value:,.2f}" if isinstance(value, float | int) else _shown(value)


def _table(title: str, columns: Iterable[str], rows: list[list[str]], empty: str) -> Table:
    table = Table(
        title=title,
        title_justify="left",
        title_style="bold",
        box=box.SIMPLE_HEAD,
        padding=(0, 1),
        show_edge=False,
        min_width=len(title),  # a narrow table would wrap its title
    )
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    if not rows:
        table.add_row(Text(empty, style="dim"))
    return table


def _cycle_text(account: dict[str, Any]) -> Text:
    cycle = account["last_cycle"]
    line = Text(f"account {account['account']}", style="bold cyan")
    run = cycle["run"]
    if run is None:
        line.append("  no reconcile run yet", style="dim")
    elif cycle["observed"] is False:
        line.append(f"  last cycle {run['started_at']} NOT observed: {cycle['why']}", style="red")
    else:
        line.append(f"  last cycle {run['started_at']} {run['status']}")
    # The scenario runs on the exchange's clock, the runs on this host's: both are shown.
    line.append(
        f"\n  last exchange snapshot concluded on: {cycle['last_observed_snapshot'] or 'none yet'}",
        style="dim",
    )
    return line


def _positions(account: dict[str, Any]) -> Table:
    positions = account["positions"]
    rows = [
        [
            p["instId"],
            p["posSide"],
            _shown(p["pos"]),
            _money(p.get("notional")),
            _shown(p.get("lever")),
            _shown(p.get("lever_source")),
        ]
        for p in positions["rows"]
    ]
    title = f"open positions ({positions['source']})"
    columns = ("instId", "side", "size", "notional", "lever", "source")
    return _table(title, columns, rows, "none")


def _expectations(account: dict[str, Any]) -> Table:
    report = account["expectations"]
    by_rule: dict[str, list[str]] = {}
    for row in (report or {"failing": []})["failing"]:
        by_rule.setdefault(row["expectation"], []).append(row["instId"])
    rows = [[name, ", ".join(dict.fromkeys(ids))] for name, ids in by_rule.items()]
    empty = "not evaluated yet" if report is None else "all passed"
    return _table("failing expectations", ("expectation", "instIds"), rows, empty)


def _events(events: list[dict[str, Any]]) -> Table:
    rows = [
        [e["at"][11:19], e["instId"], e["kind"], e["status"], e["cause"]]
        for e in events[-MAX_EVENTS:]
    ]
    columns = ("at", "instId", "kind", "status", "cause")
    return _table("drift events (newest last)", columns, rows, "none")


def _plan(account: dict[str, Any]) -> Table:
    plan = account["leverage_plan"]
    rows = [
        [
            r["instId"],
            f"{_shown(r['lever'])} ({r['lever_source']})",
            _shown(r["target"]),
            _shown(r["upper"]),
            r["action"],
        ]
        for r in (plan or {"rows": []})["rows"]
    ]
    columns = ("instId", "lever (source)", "target", "bound", "action")
    return _table("leverage plan", columns, rows, "no plan yet" if plan is None else "empty")


def _alerts(alerts: list[dict[str, Any]]) -> Table:
    rows = [[str(a.get("subject", a))] for a in alerts[-MAX_ALERTS:]]
    return _table(f"alerts received ({len(alerts)})", ("subject",), rows, "none")


def demo_screen(data: ScreenData) -> RenderableType:
    """One block per account, then the alerts; problems first, in red, when any."""
    parts: list[RenderableType] = [
        Text(f"posguard demo  {data.at}  Prefect UI {data.ui}  (Ctrl-C stops)", style="bold")
    ]
    parts.extend(Text(f"! {problem}", style="red") for problem in data.problems)
    for account in data.accounts:
        parts.extend(
            [
                Text(""),
                _cycle_text(account),
                _positions(account),
                _expectations(account),
                _events(data.events.get(account["account"], [])),
                _plan(account),
            ]
        )
    parts.extend([Text(""), _alerts(data.alerts)])
    return Group(*parts)
