"""`posguard replay`: a timeline (shared/docs/replay-format.md) through the real engine.

No network and no Prefect: each `sync` step's envelopes are parsed by `posguard.frames`,
reconciled by `posguard.stages.cycle.run_cycle` against a registry (a temporary SQLite file
unless told otherwise), exactly as the scheduled flow does.

The registry's clock is the timeline's: a `registry_write` is recorded at its `at` (what the
race guard compares), and the bot's own, possibly skewed, time may be given as `updatedAt`.
A `sync` may list members whose pages were cut short in `truncated` (e.g.
`["positions_history"]`): their records are complete only back to the oldest one given. It may
also carry `pushed`: the changes OKX's private stream pushed before a run that a change
started (`posguard watch`'s event payload, `posguard.drift.pushes`).
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import pandas as pd

from posguard import frames
from posguard.drift import DriftEvent, DriftSettings
from posguard.drift.pushes import pushed_from
from posguard.errors import DataError, PosguardError
from posguard.instants import parse_instant
from posguard.okx.saved import records_of
from posguard.registry import Registry, sqlite_url
from posguard.stages.cycle import run_cycle

SYNC_MEMBERS = {
    "positions": frames.parse_positions,
    "positions_history": frames.parse_positions_history,
    "fills": frames.parse_fills,
}


class TimelineError(PosguardError):
    """The timeline cannot be replayed; the message names the step and the member."""


class StepClock:
    """The registry's clock during a replay: the time of the step being replayed."""

    def __init__(self) -> None:
        self.now_ms = 0

    def __call__(self) -> int:
        return self.now_ms


@dataclass
class Timeline:
    account: str
    settings: DriftSettings
    lot_sizes: dict[str, float]
    registry: list[dict[str, Any]]
    steps: Iterable[dict[str, Any]]


def _instant(value: Any, where: str) -> int:
    if not isinstance(value, str):
        raise TimelineError(f"{where}: 'at' must be an ISO-8601 UTC string, got {value!r}")
    if value.startswith("+"):
        raise TimelineError(f"{where}: 'at' must be absolute ISO-8601 UTC (got {value!r})")
    try:
        return parse_instant(value, 0)
    except ValueError as exc:
        raise TimelineError(f"{where}: {exc}") from None


def settings_document(settings: DriftSettings) -> dict[str, Any]:
    """A timeline's `settings` object: what `parse_settings` reads back."""
    return {item.name: getattr(settings, item.name) for item in fields(DriftSettings)}


def parse_settings(raw: Any, source: str) -> DriftSettings:
    if raw is None:
        return DriftSettings()
    if not isinstance(raw, dict):
        raise TimelineError(f"{source}: 'settings' must be an object")
    known = {f.name for f in fields(DriftSettings)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise TimelineError(
            f"{source}: settings {', '.join(unknown)} unknown (known: {', '.join(sorted(known))})"
        )
    try:
        return DriftSettings(**raw)
    except (TypeError, ValueError) as exc:
        raise TimelineError(f"{source}: settings: {exc}") from None


def load_timeline(path: Path) -> Timeline:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise TimelineError(f"{path}: cannot read ({exc.strerror})") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise TimelineError(f"{path}: not valid JSON ({exc})") from None
    except RecursionError:
        raise TimelineError(f"{path}: JSON nested too deeply to be a timeline") from None
    except ValueError as exc:  # e.g. an integer with more digits than Python reads
        raise TimelineError(f"{path}: not readable JSON ({str(exc)[:120]})") from None
    return timeline_from(document, str(path))


def timeline_from(document: Any, source: str) -> Timeline:
    if not isinstance(document, dict):
        raise TimelineError(f"{source}: a timeline is a JSON object")
    account = document.get("account", "main")
    if not isinstance(account, str) or not account:
        raise TimelineError(f"{source}: 'account' must be a non-empty string")
    lot_sizes: dict[str, float] = {}
    if document.get("instruments") is not None:
        try:
            records = records_of(document["instruments"], source=f"{source} instruments")
            specs = frames.parse_instruments(records)
        except PosguardError as exc:
            raise TimelineError(f"{source}: instruments: {exc}") from None
        lot_sizes = {
            str(i): float(v)
            for i, v in zip(specs["instId"], specs["lotSz"], strict=True)
            if pd.notna(v)
        }
    registry = document.get("registry") or []
    if not isinstance(registry, list):
        raise TimelineError(f"{source}: 'registry' must be an array of positions")
    steps = document.get("steps")
    if not isinstance(steps, list):
        raise TimelineError(f"{source}: 'steps' must be an array")
    return Timeline(
        account, parse_settings(document.get("settings"), source), lot_sizes, registry, steps
    )


def _registry_write(registry: Registry, account: str, row: Any, at_ms: int, where: str) -> None:
    if not isinstance(row, dict):
        raise TimelineError(f"{where}: a registry write is an object")
    for name in ("instId", "pos"):
        if row.get(name) in (None, ""):
            raise TimelineError(f"{where}: member {name!r} is required")
    claimed = at_ms
    if row.get("updatedAt") not in (None, ""):
        claimed = _instant(row["updatedAt"], f"{where} updatedAt")
    try:
        registry.write(
            account,
            str(row["instId"]),
            pos_side=str(row.get("posSide") or "net"),
            mgn_mode=str(row.get("mgnMode") or "cross"),
            pos=row["pos"],
            avg_px=row.get("avgPx"),
            lever=row.get("lever"),
            pos_id=row.get("posId"),
            c_time=int(row["cTime"]) if row.get("cTime") not in (None, "") else None,
            at_ms=claimed,
        )
    except (PosguardError, ValueError) as exc:
        raise TimelineError(f"{where}: {exc}") from None


def _describe_error(error: Any) -> str:
    if not isinstance(error, dict):
        return "failed"
    if error.get("timeout"):
        return "timed out"
    parts = []
    if error.get("http") is not None:
        parts.append(f"HTTP {error['http']}")
    if error.get("code") not in (None, ""):
        parts.append(f"code {error['code']}")
    text = ", ".join(parts) or "failed"
    return f"{text}: {error['msg']}" if error.get("msg") else text


def _member(name: str, value: Any, where: str) -> tuple[pd.DataFrame | None, str | None]:
    """A parsed member, or the reason its call failed."""
    if isinstance(value, dict) and "error" in value:
        return None, f"{name} {_describe_error(value['error'])}"
    if not isinstance(value, dict) or "code" not in value:
        raise TimelineError(
            f'{where}: member {name!r} must be an OKX envelope or {{"error": {{...}}}}'
        )
    if str(value.get("code")) != "0":
        return None, f"{name} answered code {value.get('code')}: {value.get('msg') or ''}".rstrip()
    records = value.get("data")
    if not isinstance(records, list):
        # What OKX answered, faithfully recorded: a malformed answer is a failed call (no
        # conclusion this cycle), exactly as the client treats it, not an invalid timeline.
        shape = "no 'data' member" if "data" not in value else f"'data' {records!r:.40}"
        return None, f"{name} answered code 0 with {shape}, not an array (malformed answer)"
    try:
        return SYNC_MEMBERS[name](records), None
    except DataError as exc:
        raise TimelineError(f"{where}: member {name!r}: {exc}") from None


def replay(
    timeline: Timeline,
    *,
    registry_url: str | None = None,
    on_skip: Callable[[str], None] = lambda _message: None,
) -> Iterator[DriftEvent]:
    """Replay a timeline, yielding events in time order (a temporary SQLite registry unless
    `registry_url` names one; its clock follows the timeline)."""
    with tempfile.TemporaryDirectory(prefix="posguard-replay-") as folder:
        clock = StepClock()
        url = registry_url or sqlite_url(Path(folder) / "registry.db")
        with Registry(url, clock=clock) as store:
            for index, row in enumerate(timeline.registry):
                where = f"registry[{index}]"
                at_ms = (
                    _instant(row.get("updatedAt"), where)
                    if isinstance(row, dict) and row.get("updatedAt")
                    else 0
                )
                clock.now_ms = at_ms
                _registry_write(store, timeline.account, row, at_ms, where)
            yield from _steps(store, clock, timeline, on_skip)


def _covers_from(frame: pd.DataFrame | None, stamps: str, at_ms: int) -> int:
    """Where a truncated member's records begin: nothing older was read."""
    if frame is None or frame.empty:
        return at_ms
    if stamps == "fills":
        return int(frame["fillTime"].fillna(frame["ts"]).min())
    return int(frame["uTime"].min())


def _steps(
    store: Registry, clock: StepClock, timeline: Timeline, on_skip: Callable[[str], None]
) -> Iterator[DriftEvent]:
    for index, step in enumerate(timeline.steps):
        where = f"step {index}"
        if not isinstance(step, dict):
            raise TimelineError(f"{where}: a step is an object")
        at_ms = _instant(step.get("at"), where)
        clock.now_ms = at_ms
        actions = [k for k in ("sync", "registry_write") if k in step]
        if len(actions) != 1:
            raise TimelineError(f"{where}: needs exactly one of 'sync' or 'registry_write'")
        if actions[0] == "registry_write":
            _registry_write(
                store, timeline.account, step["registry_write"], at_ms, f"{where} (registry_write)"
            )
            continue
        sync = step["sync"]
        if not isinstance(sync, dict):
            raise TimelineError(f"{where}: 'sync' must be an object of OKX envelopes")
        parsed: dict[str, pd.DataFrame | None] = {}
        failures: list[str] = []
        for name in SYNC_MEMBERS:
            if name in sync:
                frame, failure = _member(name, sync[name], f"{where} (sync)")
                parsed[name] = frame
                if failure:
                    failures.append(failure)
        truncated = sync.get("truncated", [])
        if not isinstance(truncated, list) or not set(truncated) <= set(SYNC_MEMBERS):
            raise TimelineError(
                f"{where} (sync): 'truncated' lists members among {', '.join(SYNC_MEMBERS)}"
            )
        history = parsed.get("positions_history")
        fills = parsed.get("fills")
        history_from = (
            _covers_from(history, "history", at_ms) if "positions_history" in truncated else None
        )
        fills_from = _covers_from(fills, "fills", at_ms) if "fills" in truncated else None
        pushed, problems = pushed_from(sync.get("pushed"))
        if problems:
            raise TimelineError(f"{where} (sync): {problems[0]}")
        if "positions" not in sync:
            on_skip(f"{where} at {step['at']}: no positions member, nothing to reconcile")
            continue
        outcome = run_cycle(
            store,
            timeline.account,
            at_ms,
            positions=parsed.get("positions"),
            history=history,
            fills=fills,
            failures=failures,
            history_covers_from_ms=history_from,
            fills_covers_from_ms=fills_from,
            pushed=pushed,
            lot_sizes=timeline.lot_sizes,
            settings=timeline.settings,
        )
        if outcome.skipped:
            on_skip(
                f"{where} at {step['at']}: no conclusion for account {timeline.account} "
                f"({outcome.skipped})"
            )
        yield from outcome.events
