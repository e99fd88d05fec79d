"""`posguard demo`: the incident of 2025-12-20 on a local Prefect server, end to end.

Starts a Prefect server (SQLite under the state folder), the OKX simulator with the
`incident-2025-12-20` scenario, an alert receiver, posguard's automations and its deployments
(served by `python -m deployments.serve`). Live mode runs the schedules on the simulator's
wall clock until Ctrl-C; `--once` plays the scenario to its end in simulated time, one
reconcile cycle per interval, through the same deployments (`run_deployment`), then prints the
summary and exits.

Import this module only after PREFECT_API_URL points at the demo's server (the CLI does).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import FlowRun
from prefect.deployments import run_deployment
from rich.console import Console
from rich.live import Live

from deployments.alerting import ensure_alerting
from deployments.receiver import AlertReceiver
from deployments.screen import MAX_EVENTS, ScreenData, demo_screen
from deployments.server import PrefectServer, prefect_env
from posguard.drift import iso_ms
from posguard.errors import ConfigError
from posguard.registry import Registry
from posguard.sim import SimExchange, SimServer
from posguard.sim.bot import apply_registry_writes
from posguard.sim.cli_support import load_for_cli
from posguard.status import status
from tasks.context import reload_settings

SCENARIO = "incident-2025-12-20"
ACCOUNT = "main"
# [drift] grace_seconds is the bot's write lag with room to spare. The demo's bot writes at its
# trades' times (the scenario's registry_write steps share them), and live, the screen plays
# the writes due every 2 s: up to 2 s late, so 3 s leaves a second. posguard's default, 5 s,
# is for a bot nobody has measured. A change outside the bot cannot be confirmed sooner than
# this after it (issue 16's latency floor).
GRACE_SECONDS = 3


@dataclass
class DemoOptions:
    once: bool
    as_json: bool
    state_dir: Path
    port: int = 4200
    sim_port: int = 8765
    cycle_seconds: int = 30
    # With --once: keep the server up this long after playing (until state/release exists),
    # having written state/ready with the UI's address: for a look, or a browser test.
    hold_seconds: float = 0


def _settings_file(
    state: Path, sim_url: str, webhook: str, cycle: int, exchange: SimExchange
) -> Path:
    account = exchange.accounts[ACCOUNT]
    path = state / "demo-posguard.toml"
    path.write_text(
        "\n".join(
            [
                "# Written by posguard demo: the simulator's fake credentials, nothing real.",
                f'state_dir = "{state}"',
                f'registry_url = "sqlite:///{state / "registry.db"}"',
                # The simulator's clock jumps a cycle at a time: measure the offset every run
                # (a warm serving process would otherwise stamp snapshots with an old one).
                "clock_offset_ttl_seconds = 0",
                "",
                "[accounts.main]",
                f'api_key = "{account.api_key}"',
                f'secret_key = "{account.secret_key}"',
                f'passphrase = "{account.passphrase}"',
                "demo = true",
                f'base_url = "{sim_url}"',
                "",
                "[drift]",
                f"grace_seconds = {GRACE_SECONDS}",
                "",
                "[alerts]",
                f'webhook_url = "{webhook}"',
                "",
                "[schedules]",
                f"reconcile_seconds = {cycle}",
                "instruments_seconds = 3600",
                "leverage_seconds = 300",
            ]
        )
        + "\n"
    )
    return path


def _wait_for_deployments(names: list[str], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with get_client(sync_client=True) as client:
            found = 0
            for name in names:
                try:
                    client.read_deployment_by_name(name)
                    found += 1
                except Exception:
                    break
        if found == len(names):
            return
        time.sleep(0.5)
    raise ConfigError(f"the deployments were not registered in {timeout:.0f} s")


def _run(name: str) -> str:
    flow_run = run_deployment(name=name, timeout=900, parameters={"account": ACCOUNT})
    if not isinstance(flow_run, FlowRun):
        raise TypeError("run_deployment returned a coroutine in sync code")
    state = flow_run.state
    return str(state.name) if state else "unknown"


class Bot:
    """Plays the scenario's registry writes into posguard's registry as they fall due."""

    def __init__(self, exchange: SimExchange, registry_url: str) -> None:
        self.exchange = exchange
        self.registry_url = registry_url
        self.done = 0

    def catch_up(self) -> None:
        writes = self.exchange.registry_writes[self.done :]
        if writes:
            with Registry(self.registry_url) as registry:
                apply_registry_writes(registry, writes)
            self.done += len(writes)


def _summary(registry_url: str, receiver: AlertReceiver, ui: str) -> dict[str, Any]:
    with Registry(registry_url) as registry:
        runs = registry.runs(ACCOUNT)
        drift = [_event_json(e) for e in registry.events(ACCOUNT)]
    expectations: Any = None
    leverage: list[dict[str, Any]] = []
    for run in runs:
        summary = json.loads(run["summary"] or "{}")
        if run["flow"] == "reconcile-positions" and summary.get("expectations"):
            expectations = summary["expectations"]
        if run["flow"] == "recalculate-leverage":
            leverage = [
                {
                    k: row.get(k)
                    for k in (
                        "instId",
                        "posSide",
                        "mgnMode",
                        "legs",
                        "lever",
                        "lever_source",
                        "volatility",
                        "target",
                        "upper",
                        "bound",
                        "action",
                        "reason",
                    )
                }
                for row in summary.get("plan", [])
            ]
    return {
        "expectations": expectations,
        "drift": drift,
        "leverage": leverage,
        "alerts": list(receiver.received),
        "ui": ui,
    }


def _event_json(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "at": iso_ms(row["at_ms"]),
        "account": row["account"],
        "instId": row["inst_id"],
        "posSide": row["pos_side"],
        "mgnMode": row["mgn_mode"],
        "kind": row["kind"],
        "status": row["status"],
        "cause": row["cause"],
        "id": row["id"],
        "evidence": row["evidence"],
    }


def _print_text(summary: dict[str, Any]) -> None:
    out = sys.stdout.write
    out(f"\nPrefect UI: {summary['ui']}\n")
    expectations = summary["expectations"] or {"results": []}
    failed = [r for r in expectations["results"] if not r["success"]]
    out(f"\nFailed expectations ({len(failed)}):\n")
    for result in failed:
        for row in result["failing"]:
            out(f"  {result['expectation']:<32} {row['instId']:<16} {row['detail']}\n")
    out(f"\nDrift events ({len(summary['drift'])}):\n")
    for event in summary["drift"]:
        out(
            f"  {event['at']}  {event['instId']:<16} {event['kind']:<13} {event['status']:<10}"
            f" {event['cause']}\n"
        )
    out("\nLeverage plan:\n")
    for row in summary["leverage"]:
        vol = "N/A" if row["volatility"] is None else f"{row['volatility']:.4f}"
        side = "" if row["posSide"] == "net" else f" {row['posSide']}"
        bound = "unknown" if row["upper"] is None else f"{row['upper']:g}x {row['bound']}"
        out(
            f"  {row['instId']:<16}{side} lever "
            f"{row['lever'] if row['lever'] is not None else 'N/A'}"
            f" ({row['lever_source']}) vol {vol} bound {bound} -> {row['action']}: "
            f"{row['reason']}\n"
        )
    out(f"\nAlerts received ({len(summary['alerts'])}):\n")
    for alert in summary["alerts"]:
        out(f"  {alert.get('subject', alert)}\n")


def _stop_on_sigterm(_signum: int, _frame: Any) -> None:
    # The server, the simulator and `serve` are children in their own sessions: turn a
    # SIGTERM into the same clean stop as Ctrl-C so that none of them is left running.
    raise KeyboardInterrupt


def run_demo(options: DemoOptions) -> int:
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    state = options.state_dir.resolve()
    state.mkdir(parents=True, exist_ok=True)
    for stale in ("registry.db", "registry.db-wal", "registry.db-shm"):
        (state / stale).unlink(missing_ok=True)  # every demo starts from the scenario
    scenario = load_for_cli(SCENARIO)
    if not options.once:
        scenario = scenario.model_copy(update={"clock": "wall"})
    exchange = SimExchange(scenario)
    server = PrefectServer(state / "prefect", options.port)
    say = (lambda text: None) if options.as_json else (lambda text: sys.stderr.write(text + "\n"))
    say(f"starting the Prefect server on {server.ui_url} (state in {state})")
    with server, AlertReceiver() as receiver, SimServer(exchange, port=options.sim_port) as sim:
        config = _settings_file(state, sim.base_url, receiver.url, options.cycle_seconds, exchange)
        os.environ["POSGUARD_CONFIG"] = str(config)
        settings = reload_settings()
        say(f"OKX simulator with scenario {SCENARIO} on {sim.base_url}")
        ensure_alerting(settings.alerts)
        bot = Bot(exchange, settings.resolved_registry_url)
        bot.catch_up()
        env = prefect_env(state / "prefect", server.api_url)
        env["POSGUARD_CONFIG"] = str(config)
        env["PREFECT_RUNNER_POLL_FREQUENCY"] = "1"
        command = [sys.executable, "-m", "deployments.serve"]
        if options.once:
            # The schedules are registered (the UI shows them) but paused: the demo plays
            # the scenario's cycles itself, in simulated time.
            command.append("--paused")
        with (state / "serve.log").open("ab") as log:
            serving = subprocess.Popen(
                command,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        children = [serving]
        try:
            names = [
                f"{flow}/{ACCOUNT}"
                for flow in ("sync-instruments", "reconcile-positions", "recalculate-leverage")
            ]
            _wait_for_deployments(names)
            say(f"deployments registered; Prefect UI: {server.ui_url}")
            if options.once:
                _play(exchange, bot, options, say)
                time.sleep(2)
                receiver.wait_for("BTC-USDT-SWAP", timeout=30)
            else:
                # The fast path beside the schedule: OKX's private stream (the simulator's),
                # a change starts a reconcile run within seconds. --once plays simulated time
                # cycle by cycle and leaves it out: it would add runs between the cycles.
                children.append(_start_watcher(state, env))
                say("watching the account's private WebSocket (posguard watch)")
                _live(exchange, bot, receiver, settings.resolved_registry_url, server.ui_url, say)
            summary = _summary(settings.resolved_registry_url, receiver, server.ui_url)
            if options.once and options.hold_seconds > 0:
                _hold(state, server.ui_url, options.hold_seconds, say)
        finally:
            for child in reversed(children):
                child.send_signal(signal.SIGTERM)
                try:
                    child.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    child.kill()
    if options.as_json:
        sys.stdout.write(json.dumps(summary, default=str) + "\n")
    else:
        _print_text(summary)
    return 0


def _start_watcher(state: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    with (state / "watch.log").open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "posguard.cli", "watch", "--status-seconds", "60"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _hold(state: Path, ui: str, seconds: float, say: Any) -> None:
    release = state / "release"
    release.unlink(missing_ok=True)
    (state / "ready").write_text(ui)
    say(f"holding the Prefect UI at {ui} for {seconds:.0f} s (or until {release} exists)")
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not release.exists():
        time.sleep(0.5)
    (state / "ready").unlink(missing_ok=True)


def _play(exchange: SimExchange, bot: Bot, options: DemoOptions, say: Any) -> None:
    say(f"instruments: {_run(f'sync-instruments/{ACCOUNT}')}")
    step_ms = options.cycle_seconds * 1000
    at = exchange.start_ms
    end = exchange.end_ms() + step_ms  # one more cycle to confirm what the last one saw
    while at <= end:
        exchange.advance(to_ms=at)
        bot.catch_up()
        state = _run(f"reconcile-positions/{ACCOUNT}")
        say(f"reconcile at {iso_ms(at)}: {state}")
        at += step_ms
    say(f"leverage: {_run(f'recalculate-leverage/{ACCOUNT}')}")


def _read_screen(registry_url: str, receiver: AlertReceiver, ui: str, at_ms: int) -> ScreenData:
    """The screen's data; a registry that cannot be read is a line on the screen."""
    alerts = list(receiver.received)
    try:
        with Registry(registry_url) as registry:
            document = status(registry, [ACCOUNT], at_ms)
            events = [_event_json(e) for e in registry.events(ACCOUNT)[-MAX_EVENTS:]]
    except Exception as exc:  # whatever went wrong, the demo goes on and says so
        problem = f"registry not read at {iso_ms(at_ms)}: {type(exc).__name__}: {exc}"
        return ScreenData(iso_ms(at_ms), ui, [], alerts=alerts, problems=[problem])
    return ScreenData(
        iso_ms(at_ms), ui, document["accounts"], events={ACCOUNT: events}, alerts=alerts
    )


def _live(
    exchange: SimExchange, bot: Bot, receiver: AlertReceiver, registry_url: str, ui: str, say: Any
) -> None:
    say("running on schedules; Ctrl-C stops")
    # On stderr, like the progress lines: stdout keeps only the summary printed at the end.
    console = Console(stderr=True)
    try:
        if console.is_terminal:
            _live_screen(exchange, bot, receiver, registry_url, ui, console)
        else:
            # A log file gets lines, not a screen redrawn every two seconds.
            _live_lines(exchange, bot, receiver, registry_url, say)
    except KeyboardInterrupt:
        say("stopping")


def _live_screen(
    exchange: SimExchange,
    bot: Bot,
    receiver: AlertReceiver,
    registry_url: str,
    ui: str,
    console: Console,
) -> None:
    """The screen, redrawn every two seconds until Ctrl-C (KeyboardInterrupt)."""
    with Live(console=console, auto_refresh=False) as live:
        while True:
            at_ms = exchange.now_ms()  # the wall clock moves the scenario on
            bot.catch_up()
            live.update(demo_screen(_read_screen(registry_url, receiver, ui, at_ms)))
            live.refresh()
            time.sleep(2)


def _live_lines(
    exchange: SimExchange, bot: Bot, receiver: AlertReceiver, registry_url: str, say: Any
) -> None:
    """Each new drift event and alert as a line, until Ctrl-C (KeyboardInterrupt)."""
    seen_events = 0
    seen_alerts = 0
    while True:
        exchange.now_ms()
        bot.catch_up()
        try:
            with Registry(registry_url) as registry:
                events = registry.events(ACCOUNT)
        except Exception as exc:  # the demo goes on and says so
            say(f"registry not read: {type(exc).__name__}: {exc}")
            events = []
        for event in events[seen_events:]:
            say(
                f"drift {iso_ms(event['at_ms'])} {event['inst_id']} {event['kind']} "
                f"{event['status']} {event['cause']}"
            )
        seen_events = max(seen_events, len(events))
        for alert in receiver.received[seen_alerts:]:
            say(f"alert: {alert.get('subject', alert)}")
        seen_alerts = len(receiver.received)
        time.sleep(2)
