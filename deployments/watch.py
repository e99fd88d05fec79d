"""`posguard watch`: the watcher's notices as Prefect events that start reconcile runs.

Each notice becomes one `posguard.position.changed` event whose resource is the account
(`posguard.account.<name>`, what the reconcile deployment's trigger matches) with the changed
instruments as related resources and the changes, with their venue times and causes, in the
payload. The event id is derived from the changes: a notice published twice (a restart that
sees the same change) is one event to the server while it remembers ids.

Needs PREFECT_API_URL (without it Prefect would start a private server nobody listens to).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from prefect.events import emit_event
from prefect.settings import get_current_settings

from posguard.errors import ConfigError
from posguard.progress import lines_on_stderr
from posguard.settings import LiveSettings, Settings
from posguard.watch import Notice, StreamAccount, StreamTiming, Watcher
from tasks.publish import POSITION_CHANGED, account_resource, instrument_related

_IDS = uuid.UUID("5b1f3c2e-9d0a-4c61-8f0e-6a8d2b7c4e10")  # namespace of notice ids

logger = logging.getLogger("posguard.watch")


# Prefect refuses an event with over 100 related resources (emit_event then returns None):
# a notice of a "close all" names its first instruments there, and every change in the payload.
MAX_RELATED = 90


def event_of(notice: Notice) -> dict[str, Any]:
    """The event's fields for `emit_event` (a dict so that tests can read it)."""
    changes = [c.to_json() for c in notice.changes]
    causes = {" ".join(k): v for k, v in notice.causes.items()}
    timed = all(c.venue_ms is not None for c in notice.changes)
    identity = "|".join(
        f"{c['instId']},{c['posSide']},{c['mgnMode']},{c['posId']},{c['cTime']},{c['before']},"
        f"{c['after']},{c['venue_ms']}"
        for c in sorted(changes, key=lambda c: (c["instId"], c["posSide"], c["mgnMode"]))
    )
    instruments = sorted({c.inst_id for c in notice.changes})
    return {
        "event": POSITION_CHANGED,
        "resource": account_resource(notice.account),
        "related": [instrument_related(inst_id) for inst_id in instruments[:MAX_RELATED]],
        "payload": {
            "account": notice.account,
            "changes": changes,
            "causes": causes,
            # The latest venue time of the changes; None when one has none (a close seen
            # only as missing from a snapshot): the run then waits the grace window from now.
            "venue_ms": max(c.venue_ms or 0 for c in notice.changes) if timed else None,
        },
        # The same changes at the same venue times are the same event (a notice published
        # again after a restart); without venue times there is nothing to tell them apart.
        "id": uuid.uuid5(_IDS, f"{notice.account}|{identity}") if timed else uuid.uuid4(),
    }


def publish(notice: Notice) -> None:
    fields = event_of(notice)
    if emit_event(**fields) is None:
        # emit_event logs and swallows what it cannot send; the watcher counts this.
        raise RuntimeError(f"account {notice.account}: Prefect did not take the event")
    logger.info(
        "account %s: %d position(s) changed (%s); event sent",
        notice.account,
        len(notice.changes),
        ", ".join(f"{c.inst_id} {c.before or '0'} -> {c.after}" for c in notice.changes[:10]),
    )


def stream_accounts(settings: Settings, names: Sequence[str] | None = None) -> list[StreamAccount]:
    """The accounts to watch (all when `names` is empty); an unknown name is a ConfigError
    naming the configured ones."""
    chosen = list(names or sorted(settings.accounts))
    if not chosen:
        raise ConfigError("no accounts configured; add [accounts.NAME] to posguard.toml")
    streams: list[StreamAccount] = []
    for name in chosen:
        account = settings.account(name)
        streams.append(
            StreamAccount(
                name,
                account.resolved_ws_url,
                account.api_key,
                account.secret_key,
                account.passphrase,
                time_url=account.resolved_base_url,
            )
        )
    return streams


def current_account(live: LiveSettings) -> Callable[[str], StreamAccount | None]:
    """An account's stream as the settings files say now (None once it is taken out): a key
    rotated in posguard.toml is used at the next login without a restart. Accounts added to
    the settings need a restart of the watcher (and of `posguard serve`, whose deployments
    are per account)."""

    def current(name: str) -> StreamAccount | None:
        settings = live.get()
        return stream_accounts(settings, [name])[0] if name in settings.accounts else None

    return current


def watcher_for(
    settings: Settings, names: Sequence[str] | None = None, live: LiveSettings | None = None
) -> Watcher:
    config = settings.watch
    return Watcher(
        stream_accounts(settings, names),
        publish,
        refresh=None if live is None else current_account(live),
        quiet_seconds=config.quiet_seconds,
        max_seconds=config.max_delay_seconds,
        timing=StreamTiming(
            ping_seconds=config.ping_seconds, backoff_max_seconds=config.reconnect_max_seconds
        ),
    )


def watch(
    settings: Settings,
    names: Sequence[str] | None = None,
    status_seconds: float = 60,
    config_file: Path | None = None,
) -> int:
    """Watch until SIGTERM or Ctrl-C; a status line every `status_seconds` on stderr. The
    settings files (`config_file`, or where `settings` came from) are read again before
    each reconnect."""
    watcher = watcher_for(settings, names, LiveSettings(config_file))
    if not get_current_settings().api.url:
        raise ConfigError(
            "PREFECT_API_URL is not set: the events would go to a private server nobody "
            "listens to; set it to your Prefect server's API (e.g. http://127.0.0.1:4200/api)"
        )
    say = sys.stderr.write
    say(f"watching {len(watcher.accounts)} account(s); Ctrl-C stops\n")

    async def main() -> None:
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stopping.set)
        reporter = asyncio.ensure_future(_report(watcher, stopping, status_seconds, say))
        await watcher.run(stopping)
        await reporter

    with lines_on_stderr("posguard.watch", "%(asctime)s %(levelname)s %(message)s"):
        asyncio.run(main())
    say(status_line(watcher) + "\n")
    return 0


def status_line(watcher: Watcher) -> str:
    states: dict[str, int] = {}
    for status in watcher.status.values():
        states[status.state] = states.get(status.state, 0) + 1
    figures = watcher.figures
    lags = sorted(figures.lags_ms)
    lag = f", push lag median {lags[len(lags) // 2]} ms" if lags else ""
    return (
        f"{time.strftime('%H:%M:%S')} streams "
        + ", ".join(f"{n} {s}" for s, n in sorted(states.items()))
        + f"; {figures.pushes} pushes, {figures.changes} changes, {figures.notices} events"
        + lag
    )


async def _report(watcher: Watcher, stopping: asyncio.Event, every: float, say: Any) -> None:
    while not stopping.is_set():
        try:
            async with asyncio.timeout(every):
                await stopping.wait()
        except TimeoutError:
            say(status_line(watcher) + "\n")
