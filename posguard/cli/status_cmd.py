"""`posguard status`: each account's last cycle and open problems, from the registry alone."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from posguard.cli.common import ConfigOption, guarded, print_json, settings_from

NOT_RECORDED = "not recorded"


def age_text(seconds: float) -> str:
    """A compact age: 45s, 3m05s, 2h10m, 12d03h."""
    whole = int(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    if whole < 86400:
        return f"{whole // 3600}h{whole % 3600 // 60:02d}m"
    return f"{whole // 86400}d{whole % 86400 // 3600:02d}h"


def _shown(value: Any) -> str:
    if value is None or value == "":
        return "N/A"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _money(value: Any) -> str:
    return f"{value:.2f}" if isinstance(value, float | int) else _shown(value)


def _short(run_id: str) -> str:
    # Flow run ids are UUIDs, version 7 for Prefect's: their head is a timestamp shared by
    # runs close in time, their tail is random. The JSON output has them whole.
    return run_id[-8:]


def _key(row: dict[str, Any]) -> str:
    return f"{row['instId']:<18} {row['posSide']:<5} {row['mgnMode']:<8}"


def _cycle_line(cycle: dict[str, Any]) -> str:
    snapshot = cycle["last_observed_snapshot"] or "none"
    run = cycle["run"]
    if run is None:
        return (
            f"last cycle: {NOT_RECORDED} (no reconcile run in the registry); "
            f"last observed snapshot {snapshot}"
        )
    if cycle["observed"] is True:
        verdict = "observed"
    elif cycle["observed"] is False:
        verdict = f"NOT observed: {cycle['why']}"
    else:
        verdict = f"unknown ({cycle['why']})"
    return (
        f"last cycle: {run['started_at']} run {_short(run['id'])} {run['status']}, {verdict}; "
        f"last observed snapshot {snapshot}"
    )


def _positions_lines(positions: dict[str, Any]) -> list[str]:
    rows = positions["rows"]
    if positions["source"] == "exchange":
        origin = f"on the exchange at {positions['at']} (run {_short(positions['run'])})"
    else:
        origin = "in the registry (the bot's belief; no run recorded them)"
    lines = [f"positions: {len(rows)} open {origin}"]
    for row in rows:
        lines.append(
            f"  {_key(row)} pos {_shown(row['pos']):<10} notional {_money(row['notional']):<12}"
            f" lever {_shown(row['lever'])} ({_shown(row['lever_source'])})"
        )
    return lines


def _discrepancy_lines(found: list[dict[str, Any]]) -> list[str]:
    lines = [f"open discrepancies: {len(found)}"]
    for d in found:
        lines.append(
            f"  {_key(d)} {d['kind']:<13} {d['status']:<10} {d['cause']:<16} "
            f"age {age_text(d['age_seconds'])} ({d['observations']} obs since {d['first_seen']})"
        )
    return lines


def _expectation_lines(report: dict[str, Any] | None) -> list[str]:
    if report is None:
        return [f"failing expectations: {NOT_RECORDED} (no run evaluated them)"]
    failing = report["failing"]
    rows = "row" if len(failing) == 1 else "rows"
    lines = [
        f"failing expectations: {len(failing)} {rows} ({report['evaluated']} expectations "
        f"evaluated by run {_short(report['run'])} at {report['at']})"
    ]
    for row in failing:
        lines.append(f"  {_key(row)} {row['expectation']}: {_shown(row['detail'])}")
    return lines


def _alert_lines(account: dict[str, Any]) -> list[str]:
    shown = account["alerts"]
    lines = [
        f"drift alerts: {account['alerts_total']} in all, newest {len(shown)} below "
        f"(expectation alerts are {NOT_RECORDED} in the registry)"
    ]
    for a in shown:
        lines.append(f"  {a['at']} {_key(a)} {a['kind']:<13} {a['status']:<10} {a['cause']}")
    return lines


def _leverage_lines(plan: dict[str, Any] | None, change: dict[str, Any] | None) -> list[str]:
    if plan is None:
        lines = [f"leverage plan: {NOT_RECORDED} (no recalculate-leverage run)"]
    else:
        lines = [f"leverage plan: run {_short(plan['run'])} at {plan['at']}"]
        for row in plan["rows"]:
            lines.append(
                f"  {_key(row)} lever {_shown(row['lever'])} ({row['lever_source']}) target "
                f"{_shown(row['target'])} -> {row['action']}"
            )
    if change is None:
        lines.append("last leverage change: none recorded")
    else:
        lines.append(
            f"last leverage change: {change['at']} {change['instId']} {change['posSide']} "
            f"{change['mgnMode']} {_shown(change['from_lever'])} -> "
            f"{_shown(change['to_lever'])} {change['outcome']}"
            + (f" ({change['code']}: {change['reason']})" if change["code"] else "")
        )
    return lines


def status_text(document: dict[str, Any]) -> str:
    """The plain-text report: one block per account, sections indented under it."""
    lines = [f"status at {document['at']} from {document['registry']}"]
    if not document["accounts"]:
        lines.append("no accounts configured")
    for account in document["accounts"]:
        lines.append("")
        lines.append(f"account {account['account']}")
        body = [
            _cycle_line(account["last_cycle"]),
            *_positions_lines(account["positions"]),
            *_discrepancy_lines(account["discrepancies"]),
            *_expectation_lines(account["expectations"]),
            *_alert_lines(account),
            *_leverage_lines(account["leverage_plan"], account["leverage_change"]),
        ]
        lines.extend(f"  {line}" for line in body)
    return "\n".join(lines) + "\n"


def register(app: typer.Typer) -> None:
    @app.command("status")
    def status_command(
        account: Annotated[
            str | None, typer.Option(help="Only this account (default: every configured one).")
        ] = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
        config: ConfigOption = None,
    ) -> None:
        """Each account's last cycle, open discrepancies with their age, failing
        expectations, drift alerts and the last leverage change. Reads the registry only:
        no exchange call. Exit status: 0, or 2 for an unknown account, a bad config or a
        registry that does not exist."""
        from posguard.registry import now_ms
        from posguard.status import existing_registry, status

        settings = settings_from(config)
        if account is not None:
            guarded(lambda: settings.account(account))
        names = [account] if account is not None else sorted(settings.accounts)
        with guarded(lambda: existing_registry(settings.resolved_registry_url)) as registry:
            document = guarded(lambda: status(registry, names, now_ms()))
        if as_json:
            print_json(document)
        else:
            typer.echo(status_text(document), nl=False)


__all__ = ["age_text", "register", "status_text"]
