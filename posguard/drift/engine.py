"""The reconciliation engine: registry rows + one exchange snapshot -> drift events.

Pure: frames and the engine's memory in, events, memory and heal actions out. The rules are
design.md's "Reconciliation rules"; the vocabulary is replay-format.md's.

1. The diff runs over the union of registry keys and exchange keys.
2. A cycle with any failed fetch draws no conclusion (never "flat").
3. A snapshot older than the last one applied is dropped (venue-clock ratchet).
4. A key the registry changed at or after the snapshot (or within the grace window before
   it) is skipped this cycle: the bot is acting on it.
5. A discrepancy is `suspected` first; a second consecutive observation confirms it, and so
   does evidence (positions-history, fills, a new cTime).
6. Every event carries a cause.
7. `heal` proposes compare-and-set writes; confirmed discrepancies that stay escalate once.
8. Event ids are deterministic; the registry stores each once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from posguard.drift import evidence as ev
from posguard.drift.model import (
    DriftEvent,
    DriftSettings,
    EngineMemory,
    HealAction,
    Key,
    Pending,
    key_of,
)

KEY = ["instId", "posSide", "mgnMode"]
REGISTRY_COLUMNS = [*KEY, "pos", "avgPx", "lever", "version", "updated_at_ms", "posId", "cTime"]
SIZE_EPSILON = 1e-9
# Snapshot times are OKX time as each run measured its clock offset (to a few ms); two runs
# within this much of each other are simultaneous, not one older than the other.
RATCHET_TOLERANCE_MS = 1000


@dataclass
class CycleInput:
    account: str
    at_ms: int  # when the snapshot began
    positions: pd.DataFrame | None  # parsed positions; None when the call failed
    registry: pd.DataFrame  # REGISTRY_COLUMNS, as read after the snapshot
    history: pd.DataFrame | None = None
    fills: pd.DataFrame | None = None
    lot_sizes: Mapping[str, float] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)  # fetches that failed this cycle


@dataclass
class CycleResult:
    events: list[DriftEvent]
    memory: EngineMemory
    heals: list[HealAction]
    skipped: str | None = None


def empty_registry() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "instId": pd.Series([], dtype="str"),
            "posSide": pd.Series([], dtype="str"),
            "mgnMode": pd.Series([], dtype="str"),
            "pos": pd.Series([], dtype="float64"),
            "avgPx": pd.Series([], dtype="float64"),
            "lever": pd.Series([], dtype="float64"),
            "version": pd.Series([], dtype="int64"),
            "updated_at_ms": pd.Series([], dtype="int64"),
            "posId": pd.Series([], dtype="str"),
            "cTime": pd.Series([], dtype="Int64"),
        }
    )


def _key_text(frame: pd.DataFrame) -> pd.Series:
    return (
        frame["instId"].astype(str)
        + "|"
        + frame["posSide"].astype(str)
        + "|"
        + frame["mgnMode"].astype(str)
    )


def _num(value: Any) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if np.isnan(number) else number


def _text(value: Any) -> str | None:
    number = _num(value)
    if number is None:
        return None
    return format(number, ".12g")


def _int(value: Any) -> int | None:
    number = _num(value)
    return None if number is None else int(number)


def _copy(memory: EngineMemory) -> EngineMemory:
    return EngineMemory(
        last_snapshot_ms=memory.last_snapshot_ms,
        pending={k: replace(v) for k, v in memory.pending.items()},
        identities=dict(memory.identities),
    )


def reconcile(cycle: CycleInput, memory: EngineMemory, settings: DriftSettings) -> CycleResult:
    """One reconciliation cycle for one account."""
    if cycle.failures or cycle.positions is None:
        failed = ", ".join(cycle.failures) or "positions"
        return CycleResult([], memory, [], skipped=f"not observed: {failed} failed")
    if (
        memory.last_snapshot_ms is not None
        and cycle.at_ms < memory.last_snapshot_ms - RATCHET_TOLERANCE_MS
    ):
        return CycleResult(
            [],
            memory,
            [],
            skipped=f"snapshot of {cycle.at_ms} is older than the last applied "
            f"({memory.last_snapshot_ms}); dropped",
        )
    state = _copy(memory)
    exchange = cycle.positions[cycle.positions["is_open"]]
    exchange = exchange[[*KEY, "pos", "lever", "posId", "cTime", "avgPx"]]
    registry = cycle.registry[cycle.registry["pos"].abs() > SIZE_EPSILON]
    merged = exchange.merge(
        registry[REGISTRY_COLUMNS], on=KEY, how="outer", suffixes=("_ex", "_reg"), indicator=True
    )
    merged["key"] = _key_text(merged)
    only_ex = (merged["_merge"] == "left_only").to_numpy()
    only_reg = (merged["_merge"] == "right_only").to_numpy()
    both = (merged["_merge"] == "both").to_numpy()
    lot = merged["instId"].map(cycle.lot_sizes).astype("float64").fillna(0.0).to_numpy()
    tolerance = np.maximum(lot / 2, SIZE_EPSILON)
    pos_ex = merged["pos_ex"].to_numpy(dtype="float64")
    pos_reg = merged["pos_reg"].to_numpy(dtype="float64")
    size_diff = both & (np.abs(pos_ex - pos_reg) >= tolerance)
    side_diff = (
        both & (merged["posSide"] == "net").to_numpy() & (np.sign(pos_ex) * np.sign(pos_reg) < 0)
    )
    lever_ex = merged["lever_ex"].to_numpy(dtype="float64")
    lever_reg = merged["lever_reg"].to_numpy(dtype="float64")
    lever_diff = (
        both & ~np.isnan(lever_ex) & ~np.isnan(lever_reg) & (np.abs(lever_ex - lever_reg) > 1e-9)
    )
    known = pd.Series({k: v[1] for k, v in state.identities.items()}, dtype="float64")
    prior_c_time = (
        merged["cTime_reg"]
        .astype("float64")
        .fillna(merged["key"].map(known).astype("float64"))
        .to_numpy()
    )
    c_time_ex = merged["cTime_ex"].to_numpy(dtype="float64")
    reopened = both & ~np.isnan(prior_c_time) & ~np.isnan(c_time_ex) & (c_time_ex != prior_c_time)
    discrepant = only_ex | only_reg | size_diff | side_diff | lever_diff | reopened
    # Guarded keys come from every registry row, closes ("0") included: a close the bot
    # just wrote is as much "the bot acting on it" as an open.
    grace_ms = settings.grace_seconds * 1000
    recent = cycle.registry[cycle.registry["updated_at_ms"] >= cycle.at_ms - grace_ms]
    guarded = set(_key_text(recent).tolist()) if not recent.empty else set()

    keys = merged["key"].to_numpy(dtype=object)
    visit = set(keys[discrepant]) | set(state.pending)
    rows = {k: i for i, k in enumerate(keys) if k in visit}
    events: list[DriftEvent] = []
    heals: list[HealAction] = []
    judge = _Judge(cycle, settings, merged, state)
    for key_text in sorted(visit):
        index = rows.get(key_text)
        if key_text in guarded:
            continue  # the bot touched this key during or just before the snapshot
        if index is None:
            finding: _Finding | None = None
        elif reopened[index]:
            finding = judge.reopened(index)
        elif only_reg[index]:
            finding = judge.removed(index)
        elif only_ex[index]:
            finding = judge.added(index)
        elif side_diff[index]:
            finding = _Finding("DRIFT_SIDE", "unknown", judge.snapshot_evidence(index), False)
        elif size_diff[index]:
            finding = judge.resized(index)
        elif lever_diff[index]:
            finding = _Finding(
                "DRIFT_LEVER", "leverage_changed", judge.snapshot_evidence(index), False
            )
        else:
            finding = None
        new_events, heal = judge.step(key_text, index, finding)
        events += new_events
        if heal is not None:
            heals.append(heal)
    state.identities = {
        k: [p if isinstance(p, str) else None, _int(c)]
        for k, p, c in zip(
            _key_text(exchange).tolist(),
            exchange["posId"].tolist(),
            exchange["cTime"].tolist(),
            strict=True,
        )
    }
    state.last_snapshot_ms = max(cycle.at_ms, memory.last_snapshot_ms or cycle.at_ms)
    return CycleResult(events, state, heals)


@dataclass
class _Finding:
    kind: str
    cause: str
    evidence: dict[str, Any]
    conclusive: bool  # evidence enough to confirm at first sight


class _Judge:
    """Per-key decisions; only keys that differ or are pending get here."""

    def __init__(
        self,
        cycle: CycleInput,
        settings: DriftSettings,
        merged: pd.DataFrame,
        state: EngineMemory,
    ) -> None:
        self.cycle = cycle
        self.settings = settings
        self.merged = merged
        self.state = state
        self.since_ms = cycle.at_ms - int(settings.lookback_seconds * 1000)

    def row(self, index: int) -> dict[str, Any]:
        return dict(self.merged.iloc[index])

    def snapshot_evidence(self, index: int) -> dict[str, Any]:
        row = self.row(index)
        exchange = None
        if row["_merge"] != "right_only":
            exchange = {
                "pos": _text(row["pos_ex"]),
                "lever": _text(row["lever_ex"]),
                "posId": row["posId_ex"] if isinstance(row["posId_ex"], str) else None,
                "cTime": _int(row["cTime_ex"]),
            }
        registry = None
        if row["_merge"] != "left_only":
            registry = {
                "pos": _text(row["pos_reg"]),
                "lever": _text(row["lever_reg"]),
                "version": _int(row["version"]),
                "updatedAt": _int(row["updated_at_ms"]),
            }
        return {"exchange": exchange, "registry": registry}

    def _history(self, row: dict[str, Any], pos_id: str | None) -> dict[str, Any] | None:
        return ev.latest_history(
            self.cycle.history,
            row["instId"],
            row["mgnMode"],
            row["posSide"],
            since_ms=self.since_ms,
            until_ms=self.cycle.at_ms,
            pos_id=pos_id,
        )

    def _fills(self, row: dict[str, Any]) -> pd.DataFrame:
        return ev.fills_of(
            self.cycle.fills,
            row["instId"],
            row["posSide"],
            since_ms=self.since_ms,
            until_ms=self.cycle.at_ms,
        )

    def removed(self, index: int) -> _Finding:
        row = self.row(index)
        identity = self.state.identities.get(row["key"]) or [None, None]
        pos_id = identity[0] or (row["posId_reg"] if isinstance(row["posId_reg"], str) else None)
        evidence = self.snapshot_evidence(index)
        record = self._history(row, pos_id)
        evidence["history"] = record
        fill_cause, sub_types = ev.fill_cause(self._fills(row))
        evidence["fills"] = sub_types
        if record is not None and record.get("type") in ev.FULL_CLOSE_TYPES:
            return _Finding("DRIFT_REMOVE", ev.HISTORY_CAUSE[int(record["type"])], evidence, True)
        if fill_cause is not None:
            return _Finding("DRIFT_REMOVE", fill_cause, evidence, True)
        return _Finding("DRIFT_REMOVE", "unknown", evidence, False)

    def added(self, index: int) -> _Finding:
        row = self.row(index)
        evidence = self.snapshot_evidence(index)
        evidence["fills"] = ev.fill_cause(self._fills(row))[1]
        return _Finding("DRIFT_ADD", "unknown", evidence, False)

    def reopened(self, index: int) -> _Finding:
        row = self.row(index)
        identity = self.state.identities.get(row["key"]) or [None, None]
        evidence = self.snapshot_evidence(index)
        evidence["previous"] = {
            "posId": identity[0],
            "cTime": _int(row["cTime_reg"]) or identity[1],
        }
        evidence["history"] = self._history(row, identity[0])
        return _Finding("DRIFT_REMOVE", "reopened", evidence, True)

    def resized(self, index: int) -> _Finding:
        row = self.row(index)
        evidence = self.snapshot_evidence(index)
        updated = _int(row["updated_at_ms"]) or self.since_ms
        record = ev.latest_history(
            self.cycle.history,
            row["instId"],
            row["mgnMode"],
            row["posSide"],
            since_ms=max(self.since_ms, updated),
            until_ms=self.cycle.at_ms,
        )
        evidence["history"] = record
        if record is not None and record.get("type") in (1, 4, 5):
            return _Finding("DRIFT_SIZE", ev.HISTORY_CAUSE[int(record["type"])], evidence, True)
        fills = self._fills(row)
        evidence["fills"] = ev.fill_cause(fills)[1]
        smaller = abs(float(row["pos_ex"])) < abs(float(row["pos_reg"]))
        if smaller and ev.has_opening_fills(fills):
            return _Finding("DRIFT_SIZE", "partial_fill", evidence, False)
        return _Finding("DRIFT_SIZE", "size_changed", evidence, False)

    def _event(
        self, key: Key, kind: str, status: str, cause: str, evidence: dict[str, Any], salt: str = ""
    ) -> DriftEvent:
        return DriftEvent.make(
            self.cycle.at_ms, self.cycle.account, key, kind, status, cause, evidence, salt
        )

    def step(
        self, key_text: str, index: int | None, finding: _Finding | None
    ) -> tuple[list[DriftEvent], HealAction | None]:
        key = key_of(key_text)
        pending = self.state.pending.get(key_text)
        if finding is None:
            if pending is None:
                return [], None
            del self.state.pending[key_text]
            cause = self._resolution_cause(pending, index)
            evidence = self.snapshot_evidence(index) if index is not None else {}
            evidence["observations"] = pending.count
            evidence["was"] = {
                "status": "confirmed" if pending.confirmed else "suspected",
                "cause": pending.cause,
            }
            return [self._event(key, pending.kind, "resolved", cause, evidence)], None
        if pending is not None and pending.kind != finding.kind:
            del self.state.pending[key_text]
            pending = None
        events: list[DriftEvent] = []
        if pending is None:
            identity = self.state.identities.get(key_text) or [None, None]
            pending = Pending(
                finding.kind,
                finding.cause,
                self.cycle.at_ms,
                0,
                pos_id=identity[0],
                c_time=identity[1],
            )
            self.state.pending[key_text] = pending
        pending.count += 1
        evidence = {**finding.evidence, "observations": pending.count}
        if pending.confirmed:
            if not pending.escalated and pending.count >= self.settings.escalate_after:
                pending.escalated = True
                evidence["escalated"] = True
                events.append(
                    self._event(
                        key, pending.kind, "confirmed", pending.cause, evidence, salt="escalated"
                    )
                )
            return events, None
        if finding.conclusive or pending.count >= self.settings.confirm_after:
            cause = finding.cause
            if not finding.conclusive:
                cause = {"DRIFT_ADD": "external"}.get(finding.kind, finding.cause)
            pending.confirmed = True
            pending.cause = cause
            confirmed = self._event(key, finding.kind, "confirmed", cause, evidence)
            events.append(confirmed)
            heal = self._heal(key, index, confirmed) if self.settings.heal == "heal" else None
            return events, heal
        pending.cause = finding.cause
        events.append(self._event(key, finding.kind, "suspected", finding.cause, evidence))
        return events, None

    def _resolution_cause(self, pending: Pending, index: int | None) -> str:
        if index is None:
            # Gone from both sides: the bot caught up with what the exchange did.
            return pending.cause if pending.cause != "unknown" else "registry_lag"
        row = self.row(index)
        if pending.kind == "DRIFT_REMOVE":
            c_time = _int(row["cTime_ex"])
            if c_time is not None and pending.c_time is not None:
                return "spurious" if c_time == pending.c_time else "reopened"
            if c_time is not None and c_time <= pending.first_ms:
                return "spurious"  # it existed before it went missing: the same life
            return "reopened" if c_time is not None else "registry_lag"
        if pending.kind == "DRIFT_ADD":
            return "registry_lag" if not pending.confirmed else pending.cause
        if pending.cause == "partial_fill":
            return "partial_fill"
        return pending.cause if pending.confirmed else "registry_lag"

    def _heal(self, key: Key, index: int | None, event: DriftEvent) -> HealAction | None:
        if index is None:
            return None
        row = self.row(index)
        version = _int(row["version"])
        if row["_merge"] == "right_only":
            return HealAction(self.cycle.account, key, version, "0", None, None, None, None, event)
        return HealAction(
            self.cycle.account,
            key,
            version,
            _text(row["pos_ex"]) or "0",
            _text(row["avgPx_ex"]),
            _text(row["lever_ex"]),
            row["posId_ex"] if isinstance(row["posId_ex"], str) else None,
            _int(row["cTime_ex"]),
            event,
        )
