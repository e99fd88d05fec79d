"""The reconciliation engine: registry rows + one exchange snapshot -> drift events.

Pure: frames and the engine's memory in, events, memory and heal actions out. The rules are
design.md's "Reconciliation rules"; the vocabulary is replay-format.md's.

1. The diff runs over the union of registry keys and exchange keys, closed registry rows
   (pos 0) included: a position appearing on a key the bot closed is a new life on a known row.
2. A cycle with any failed fetch draws no conclusion (never "flat"); so does an answer that
   lists one position twice.
3. A snapshot older than the last one applied is dropped (venue-clock ratchet).
4. A key the registry recorded a write for at or after the snapshot began, or within the
   grace window before it, is skipped this cycle: the bot is acting on it. Both times are
   on the registry's own clock, never the bot's host clock.
5. What is compared is what the registry says: side, size, leverage, and the life (posId,
   cTime) when the bot records it. A discrepancy is `suspected` first; it is `confirmed` by
   `confirm_after` distinct observations at least `confirm_interval_seconds` apart, or at once
   by evidence about the life the registry describes (a close of that life in
   positions-history or fills, a newer life on its key) that is older than the grace window.
6. Every event carries a cause.
7. `heal` proposes compare-and-set writes; confirmed discrepancies that stay escalate once.
8. Each discrepancy has an id from its first observation; its events derive from it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from posguard.drift import evidence as ev
from posguard.drift.evidence import Evidence, same_life
from posguard.drift.model import (
    DriftEvent,
    DriftSettings,
    EngineMemory,
    HealAction,
    Key,
    Life,
    Pending,
    Seen,
    digest,
    key_of,
    key_text,
)

KEY = ["instId", "posSide", "mgnMode"]
REGISTRY_COLUMNS = [
    *KEY,
    "pos",
    "avgPx",
    "lever",
    "version",
    "updated_at_ms",
    "recorded_at_ms",
    "posId",
    "cTime",
]
EXCHANGE_COLUMNS = [*KEY, "pos", "lever", "posId", "cTime", "avgPx"]
SIZE_EPSILON = 1e-9
# Snapshot times are OKX time as each run measured its clock offset (to a few ms); two runs
# within this much of each other are simultaneous, not one older than the other.
RATCHET_TOLERANCE_MS = 1000
# A registry write names the life alive when it was written; lives created this close to
# the write are too close to tell apart, so such inference is not used as evidence.
IDENTITY_TOLERANCE_MS = 1000


@dataclass
class CycleInput:
    account: str
    at_ms: int  # when the snapshot began, on OKX's clock
    positions: pd.DataFrame | None  # parsed positions; None when the call failed
    registry: pd.DataFrame  # REGISTRY_COLUMNS, every row (closed ones too), read after
    history: pd.DataFrame | None = None
    fills: pd.DataFrame | None = None
    lot_sizes: Mapping[str, float] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)  # fetches that failed this cycle
    # When the snapshot began on the registry's clock (its `recorded_at_ms`); None: the
    # registry's clock is OKX's (replays, the soak).
    registry_at_ms: int | None = None
    # Evidence pages cut short: older records than this may exist unread (None: complete).
    history_covers_from_ms: int | None = None
    fills_covers_from_ms: int | None = None


@dataclass
class CycleResult:
    events: list[DriftEvent]
    memory: EngineMemory
    heals: list[HealAction]
    skipped: str | None = None
    guarded: list[Key] = field(default_factory=list)  # keys the bot was acting on


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
            "recorded_at_ms": pd.Series([], dtype="int64"),
            "posId": pd.Series([], dtype="str"),
            "cTime": pd.Series([], dtype="Int64"),
        }
    )


def key_texts(frame: pd.DataFrame) -> list[str]:
    """`key_text` for every row at once."""
    return [
        key_text((str(inst_id), str(pos_side), str(mgn_mode)))
        for inst_id, pos_side, mgn_mode in zip(
            frame["instId"].tolist(),
            frame["posSide"].tolist(),
            frame["mgnMode"].tolist(),
            strict=True,
        )
    ]


def _taken(values: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """values[positions], with NaN (numbers) or None (anything else) where positions is -1."""
    if values.dtype.kind in "fiu":
        out = np.full(len(positions), np.nan)
        present = positions >= 0
        out[present] = values[positions[present]].astype("float64")
        return out
    picked = np.empty(len(positions), dtype=object)
    present = positions >= 0
    picked[present] = values[positions[present]]
    return picked


def _column_values(frame: pd.DataFrame, name: str) -> np.ndarray:
    column = frame[name]
    if column.dtype.kind in "fiu" or str(column.dtype) in ("Int64", "Float64"):
        return column.to_numpy(dtype="float64", na_value=np.nan)
    return column.to_numpy(dtype=object)


def outer_join(exchange: pd.DataFrame, registry: pd.DataFrame) -> pd.DataFrame:
    """The union of both sides' keys, one row per key (keys are unique on each side), with
    the other columns suffixed `_ex`/`_reg` and `_merge` saying where each row came from.

    What `DataFrame.merge(how="outer", indicator=True)` gives, without its fixed cost, which
    dominates a cycle of a few positions."""
    ex_keys = pd.Index(key_texts(exchange), dtype=object)
    reg_keys = pd.Index(key_texts(registry), dtype=object)
    keys = ex_keys.union(reg_keys, sort=False)
    on_ex = ex_keys.get_indexer(keys)
    on_reg = reg_keys.get_indexer(keys)
    columns: dict[str, Any] = {}
    for name in KEY:
        from_ex = _taken(exchange[name].to_numpy(dtype=object), on_ex)
        from_reg = _taken(registry[name].to_numpy(dtype=object), on_reg)
        columns[name] = np.where(on_ex >= 0, from_ex, from_reg)
    shared = (set(exchange.columns) & set(registry.columns)) - set(KEY)
    for side, frame, positions in (("_ex", exchange, on_ex), ("_reg", registry, on_reg)):
        for name in frame.columns:
            if name in KEY:
                continue
            label = f"{name}{side}" if name in shared else name
            columns[label] = _taken(_column_values(frame, name), positions)
    where = np.where(on_ex >= 0, np.where(on_reg >= 0, "both", "left_only"), "right_only")
    columns["_merge"] = where.astype(object)
    columns["key"] = np.asarray(keys, dtype=object)
    return pd.DataFrame(columns)


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


def _pos_id(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


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
    exchange = cycle.positions[cycle.positions["is_open"]][EXCHANGE_COLUMNS]
    twice = exchange[exchange.duplicated(KEY, keep=False)]
    if not twice.empty:
        first = twice.iloc[0]
        return CycleResult(
            [],
            memory,
            [],
            skipped=f"not observed: the positions answer lists {first['instId']} "
            f"{first['posSide']} {first['mgnMode']} more than once",
        )
    return _Cycle(cycle, memory, settings, exchange).run()


class _Cycle:
    """One cycle's diff and per-key decisions."""

    def __init__(
        self,
        cycle: CycleInput,
        memory: EngineMemory,
        settings: DriftSettings,
        exchange: pd.DataFrame,
    ) -> None:
        self.cycle = cycle
        self.settings = settings
        self.state = memory.copy()
        self.grace_ms = int(settings.grace_seconds * 1000)
        self.evidence = Evidence(
            cycle.history,
            cycle.fills,
            since_ms=cycle.at_ms - int(settings.lookback_seconds * 1000),
            until_ms=cycle.at_ms,
            history_covers_from_ms=cycle.history_covers_from_ms,
            fills_covers_from_ms=cycle.fills_covers_from_ms,
        )
        registry_at = cycle.registry_at_ms if cycle.registry_at_ms is not None else cycle.at_ms
        # Registry times mapped onto OKX's clock with the offset measured at snapshot start.
        self.registry_offset_ms = cycle.at_ms - registry_at
        self.registry_at_ms = registry_at
        self.merged = outer_join(exchange, cycle.registry[REGISTRY_COLUMNS])
        self.events: list[DriftEvent] = []
        self.heals: list[HealAction] = []

    # -- the vectorized diff --------------------------------------------------------------------

    def run(self) -> CycleResult:
        merged = self.merged
        ex_open = (merged["_merge"] != "right_only").to_numpy()
        has_row = (merged["_merge"] != "left_only").to_numpy()
        pos_ex = merged["pos_ex"].to_numpy(dtype="float64")
        pos_reg = merged["pos_reg"].to_numpy(dtype="float64")
        reg_open = has_row & (np.abs(np.nan_to_num(pos_reg)) > SIZE_EPSILON)
        both = ex_open & reg_open
        lot = merged["instId"].map(self.cycle.lot_sizes).astype("float64").fillna(0.0).to_numpy()
        tolerance = np.maximum(lot / 2, SIZE_EPSILON)
        net = (merged["posSide"] == "net").to_numpy()
        side = both & net & (np.sign(pos_ex) * np.sign(pos_reg) < 0)
        # Long/short legs are positive; their size is compared without sign.
        gap = np.where(net, np.abs(pos_ex - pos_reg), np.abs(np.abs(pos_ex) - np.abs(pos_reg)))
        size = both & ~side & (gap >= tolerance)
        c_time_ex = merged["cTime_ex"].to_numpy(dtype="float64")
        # The life the registry row describes, where that is known without a lookup: the
        # one it records, or the one this row version was last seen agreeing with.
        c_time_reg = merged["cTime_reg"].to_numpy(dtype="float64")
        recorded_life = ~np.isnan(c_time_reg)
        bound_version, bound_c_time = self._bindings()
        versions = merged["version"].to_numpy(dtype="float64")
        bound = ~recorded_life & (versions == bound_version) & ~np.isnan(bound_c_time)
        described = np.where(recorded_life, c_time_reg, np.where(bound, bound_c_time, np.nan))
        comparable = both & ~np.isnan(described) & ~np.isnan(c_time_ex)
        # A newer life than the registry describes: the described one was closed. An older
        # one: the answer lags what the bot (or an earlier answer) already showed.
        behind = comparable & (c_time_ex < described)
        other_life = comparable & (c_time_ex > described) & ~side & ~size
        written = merged["recorded_at_ms"].fillna(merged["updated_at_ms"]).to_numpy(dtype="float64")
        written = written + self.registry_offset_ms
        # Rows written before the life the exchange shows began may describe an older one:
        # looked up per key (history tells which lives there were).
        maybe_other = (
            both
            & np.isnan(described)
            & ~side
            & ~size
            & (c_time_ex > written + IDENTITY_TOLERANCE_MS)
        )
        lever_ex = merged["lever_ex"].to_numpy(dtype="float64")
        lever_reg = merged["lever_reg"].to_numpy(dtype="float64")
        lever = (
            both
            & ~side
            & ~size
            & ~other_life
            & ~np.isnan(lever_ex)
            & ~np.isnan(lever_reg)
            & (np.abs(lever_ex - lever_reg) > 1e-9)
        )
        add = ex_open & ~reg_open
        remove = reg_open & ~ex_open
        kinds = np.full(len(merged), "", dtype=object)
        kinds[add] = "DRIFT_ADD"
        kinds[remove | other_life] = "DRIFT_REMOVE"
        kinds[side] = "DRIFT_SIDE"
        kinds[size] = "DRIFT_SIZE"
        kinds[lever] = "DRIFT_LEVER"
        kinds[behind] = ""
        guarded = has_row & (
            written - self.registry_offset_ms >= self.registry_at_ms - self.grace_ms
        )

        keys = merged["key"].to_numpy(dtype=object)
        maybe_other &= ~guarded & ~lever
        for candidate in np.flatnonzero(maybe_other).tolist():
            if self._describes_older_life(candidate):
                kinds[candidate] = "DRIFT_REMOVE"
        discrepant = kinds != ""
        visit = set(keys[discrepant | behind]) | set(self.state.pending)
        rows = {k: i for i, k in enumerate(keys) if k in visit}
        guarded_keys: list[Key] = []
        for text in sorted(visit):
            index = rows.get(text)
            if index is not None and guarded[index]:
                guarded_keys.append(key_of(text))
                continue  # the bot is acting on this key: judge it next cycle
            if index is not None and behind[index]:
                continue  # the answer is older than what the bot recorded: no conclusion
            self._judge(text, index, str(kinds[index]) if index is not None else "")
        self._remember_seen(ex_open, discrepant | guarded | behind, reg_open)
        last = self.state.last_snapshot_ms
        self.state.last_snapshot_ms = max(self.cycle.at_ms, last or self.cycle.at_ms)
        return CycleResult(self.events, self.state, self.heals, guarded=guarded_keys)

    def _bindings(self) -> tuple[np.ndarray, np.ndarray]:
        """Per merged row: the registry version bound to the life last seen, and its cTime."""
        seen = self.state.seen
        keys = self.merged["key"]
        if not seen:
            empty = np.full(len(keys), np.nan)
            return empty, empty.copy()
        versions = {k: v.bound_version for k, v in seen.items() if v.bound_version is not None}
        c_times = {k: v.c_time for k, v in seen.items() if v.bound_version is not None}
        return (
            keys.map(versions).astype("float64").to_numpy(),
            keys.map(c_times).astype("float64").to_numpy(),
        )

    def _describes_older_life(self, index: int) -> bool:
        row = self.row(index)
        key = key_of(str(row["key"]))
        described, _ = self._registry_life(key, row, self.evidence.history_of(key))
        current = self._exchange_life(row)
        return (
            described is not None
            and current is not None
            and not same_life(described, current)
            and current[1] > described[1]
        )

    def _remember_seen(
        self, ex_open: np.ndarray, unsettled: np.ndarray, reg_open: np.ndarray
    ) -> None:
        """Keep the life last seen open for every key that still matters, and bind a
        registry version to it when the two agreed this cycle."""
        merged = self.merged
        previous = self.state.seen
        seen: dict[str, Seen] = {}
        at = self.cycle.at_ms
        for text, is_open, pos_id, c_time, version, is_unsettled in zip(
            merged["key"].tolist(),
            ex_open.tolist(),
            merged["posId_ex"].tolist(),
            merged["cTime_ex"].tolist(),
            merged["version"].tolist(),
            unsettled.tolist(),
            strict=True,
        ):
            if not is_open:
                continue
            life_c_time = _int(c_time)
            if life_c_time is None:
                continue
            life_pos_id = _pos_id(pos_id)
            old = previous.get(text)
            bound = None
            if not is_unsettled and _int(version) is not None:
                bound = _int(version)
            elif old is not None and same_life(old.life, (life_pos_id, life_c_time)):
                bound = old.bound_version
            seen[text] = Seen(life_pos_id, life_c_time, at, bound)
        # A key gone from the exchange stays remembered while its registry row is open or a
        # discrepancy is pending: that is what removal evidence is matched against.
        keep = set(self.state.pending)
        keep.update(merged["key"][reg_open].tolist())
        for text in keep:
            if text not in seen and text in previous:
                seen[text] = previous[text]
        self.state.seen = seen

    # -- one key --------------------------------------------------------------------------------

    def row(self, index: int) -> dict[str, Any]:
        return dict(self.merged.iloc[index])

    def _judge(self, text: str, index: int | None, kind: str) -> None:
        key = key_of(text)
        pending = self.state.pending.get(text)
        row = self.row(index) if index is not None else None
        finding = self._find(key, kind, row) if kind and row is not None else None
        rewritten = (
            pending is not None
            and row is not None
            and _int(row.get("version")) != pending.registry_version
        )
        if pending is not None and (pending.kind != kind or rewritten):
            # Another kind of discrepancy, or a new write by the bot (a new belief, even if
            # still wrong): the one being watched is over.
            lost = (finding is not None and finding.hold) or (
                finding is None and self._lost_from_answer(key, row)
            )
            if lost and not rewritten:
                # The answer lost a position that evidence says is open: this cycle says
                # nothing about the discrepancy already being watched.
                return
            self._resolve(text, key, pending, row)
            pending = None
        if finding is None or row is None:
            return
        if pending is None:
            self._open(text, key, kind, finding, row)
        else:
            self._observe(key, pending, finding, row)

    def _lost_from_answer(self, key: Key, row: dict[str, Any] | None) -> bool:
        """Is the exchange's side of this key missing from this answer although the life
        last seen there has no recorded end (OKX records every close)?"""
        if row is not None and row["_merge"] != "right_only":
            return False
        seen = self.state.seen.get(key_text(key))
        if seen is None or seen.c_time < self.evidence.since_ms:
            return False
        closed = ev.newest_record_of(self.evidence.history_of(key), seen.life)
        if closed is not None and closed.get("type") in ev.FULL_CLOSE_TYPES:
            return False
        fills = self.evidence.fills_of(key)
        later = fills[fills["stamp"] > seen.seen_ms] if not fills.empty else fills
        return ev.closing_fills(later).empty

    def _open(
        self, text: str, key: Key, kind: str, finding: _Finding, row: dict[str, Any]
    ) -> Pending:
        at = self.cycle.at_ms
        version = _int(row.get("version"))
        pending = Pending(
            id=digest(self.cycle.account, text, kind, at, version),
            kind=kind,
            cause=finding.cause,
            first_ms=at,
            last_ms=at,
            count=1,
            registry_version=version,
            registry_life=list(finding.registry_life) if finding.registry_life else None,
            exchange_life=list(finding.exchange_life) if finding.exchange_life else None,
        )
        self.state.pending[text] = pending
        if finding.conclusive or (self.settings.confirm_after <= 1 and not finding.hold):
            self._confirm(key, pending, finding, row)
        else:
            self._emit(key, pending, "suspected", finding.cause, finding.evidence)
        return pending

    def _observe(self, key: Key, pending: Pending, finding: _Finding, row: dict[str, Any]) -> None:
        at = self.cycle.at_ms
        distinct = at - pending.last_ms >= self.settings.confirm_interval_seconds * 1000
        if distinct:
            pending.count += 1
            pending.last_ms = at
        if finding.exchange_life:
            pending.exchange_life = list(finding.exchange_life)
        if pending.confirmed:
            if distinct and not pending.escalated and pending.count >= self.settings.escalate_after:
                pending.escalated = True
                evidence = {**finding.evidence, "observations": pending.count, "escalated": True}
                self._emit(key, pending, "confirmed", pending.cause, evidence, "escalated")
            return
        counted = pending.count >= self.settings.confirm_after
        if finding.hold and counted and pending.count < self.settings.escalate_after:
            counted = False  # not gone: wait for evidence, up to the escalation
        if finding.conclusive or counted:
            self._confirm(key, pending, finding, row)
        else:
            pending.cause = finding.cause  # newer evidence may name the cause better

    def _confirm(self, key: Key, pending: Pending, finding: _Finding, row: dict[str, Any]) -> None:
        cause = finding.cause
        if not finding.conclusive and pending.kind == "DRIFT_ADD" and cause == "unknown":
            cause = "external"  # seen twice on the exchange, never recorded by the bot
        pending.confirmed = True
        pending.cause = cause
        evidence = {**finding.evidence, "observations": pending.count}
        confirmed = self._emit(key, pending, "confirmed", cause, evidence)
        if self.settings.heal == "heal":
            self.heals.append(self._heal(key, pending, row, confirmed))

    def _resolve(self, text: str, key: Key, pending: Pending, row: dict[str, Any] | None) -> None:
        """The discrepancy is gone (or became another kind): say why, and forget it."""
        del self.state.pending[text]
        cause = self._resolution_cause(key, pending, row)
        evidence = self._snapshot_evidence(row) if row is not None else {}
        evidence["observations"] = pending.count
        evidence["was"] = {
            "status": "confirmed" if pending.confirmed else "suspected",
            "cause": pending.cause,
        }
        self._emit(key, pending, "resolved", cause, evidence)

    def _resolution_cause(self, key: Key, pending: Pending, row: dict[str, Any] | None) -> str:
        version = None if row is None else _int(row.get("version"))
        if version != pending.registry_version:
            return "registry_lag"  # the bot wrote the key since: it caught up
        if row is None or row["_merge"] == "right_only":
            # Nothing on the exchange (any more): a position the bot never recorded was
            # closed again, or never was.
            if pending.kind == "DRIFT_ADD" and pending.exchange_life:
                added: Life = (pending.exchange_life[0], int(pending.exchange_life[1]))
                closed = ev.newest_record_of(self.evidence.history_of(key), added)
                if closed is not None and closed.get("type") in ev.FULL_CLOSE_TYPES:
                    return ev.HISTORY_CAUSE[int(closed["type"])]
            return "spurious" if pending.kind != "DRIFT_REMOVE" else "registry_lag"
        life = self._exchange_life(row)
        if pending.kind == "DRIFT_REMOVE":
            before = pending.registry_life or pending.exchange_life
            if before is not None and life is not None:
                known = (before[0], int(before[1]))
                return "spurious" if same_life(known, life) else "reopened"
            if life is not None and life[1] > pending.first_ms:
                return "reopened"  # opened after it went missing: a new life
            return "spurious"  # it existed before it went missing: the same life
        if pending.cause == "partial_fill":
            return "partial_fill"
        if pending.exchange_life and life is not None:
            known = (pending.exchange_life[0], int(pending.exchange_life[1]))
            if not same_life(known, life):
                return "reopened"
        return "spurious"

    # -- what a discrepancy is about ------------------------------------------------------------

    def _exchange_life(self, row: dict[str, Any]) -> Life | None:
        c_time = _int(row.get("cTime_ex"))
        return None if c_time is None else (_pos_id(row.get("posId_ex")), c_time)

    def _written_ms(self, row: dict[str, Any]) -> int | None:
        """When the registry row was last written, on OKX's clock."""
        recorded = _int(row.get("recorded_at_ms"))
        if recorded is None:
            recorded = _int(row.get("updated_at_ms"))
        return None if recorded is None else recorded + self.registry_offset_ms

    def _registry_life(
        self, key: Key, row: dict[str, Any], history: pd.DataFrame
    ) -> tuple[Life | None, str]:
        """The life the registry row describes, and how that is known."""
        c_time = _int(row.get("cTime_reg"))
        if c_time is not None:
            return (_pos_id(row.get("posId_reg")), c_time), "recorded"
        seen = self.state.seen.get(key_text(key))
        version = _int(row.get("version"))
        if seen is not None and version is not None and seen.bound_version == version:
            return seen.life, "agreed"
        written = self._written_ms(row)
        if written is None:
            return None, "unknown"
        # The newest life known to exist when the row was written: a bot records what it
        # did after doing it. Lives created within the tolerance of the write are ambiguous.
        candidates: list[Life] = [life for life, _ in ev.lives(history)]
        if seen is not None:
            candidates.append(seen.life)
        if row["_merge"] == "both":
            current = self._exchange_life(row)
            if current is not None:
                candidates.append(current)
        # A life fully closed before the write (longer ago than a bot takes to record what
        # it did) was not what the bot was recording.
        dead = [
            life
            for life, newest in ev.lives(history)
            if newest.get("type") in ev.FULL_CLOSE_TYPES
            and int(newest["uTime"]) < written - self.grace_ms
        ]
        candidates = [c for c in candidates if not any(same_life(c, d) for d in dead)]
        before = sorted(
            {c for c in candidates if c[1] <= written + IDENTITY_TOLERANCE_MS},
            key=lambda life: life[1],
        )
        if not before:
            return None, "unknown"
        newest = before[-1]
        if newest[1] > written - IDENTITY_TOLERANCE_MS and len(before) > 1:
            return None, "unknown"  # a life opened around the write: which one is unclear
        return newest, "written"

    def _find(self, key: Key, kind: str, row: dict[str, Any]) -> _Finding:
        history = self.evidence.history_of(key)
        described, how = self._registry_life(key, row, history)
        current = self._exchange_life(row) if row["_merge"] != "right_only" else None
        finding = _Finding(
            cause="unknown",
            conclusive=False,
            evidence=self._snapshot_evidence(row),
            registry_life=described,
            exchange_life=current,
        )
        if described is not None:
            finding.evidence["life"] = {
                "registry": {"posId": described[0], "cTime": described[1], "known_by": how}
            }
        if kind == "DRIFT_ADD":
            return self._added(key, row, finding, history)
        if kind == "DRIFT_REMOVE" and current is None:
            return self._removed(key, row, finding, history, how)
        if kind == "DRIFT_LEVER":
            finding.cause = "leverage_changed"
            return finding
        if (
            described is not None
            and current is not None
            and not same_life(described, current)
            and current[1] > described[1]
        ):
            # A newer life on the key: the one the registry describes was closed.
            finding.cause = "reopened"
            finding.conclusive = current[1] <= self.cycle.at_ms - self.grace_ms
            finding.evidence["history"] = ev.newest_record_of(history, described)
            return finding
        if kind == "DRIFT_SIZE":
            return self._resized(key, row, finding, history)
        return finding  # DRIFT_SIDE on one life: nothing explains it

    def _removed(
        self,
        key: Key,
        row: dict[str, Any],
        finding: _Finding,
        history: pd.DataFrame,
        how: str,
    ) -> _Finding:
        described = finding.registry_life
        fills = self.evidence.fills_of(key)
        finding.evidence["fills"] = [int(s) for s in fills["subType"].dropna().tolist()]
        finding.evidence["history"] = None
        written = self._written_ms(row)
        since: int | None = None
        if described is not None:
            closed = ev.newest_record_of(history, described)
            finding.evidence["history"] = closed
            if closed is not None and closed.get("type") in ev.FULL_CLOSE_TYPES:
                closed_ms = int(closed["uTime"])
                finding.cause = ev.HISTORY_CAUSE[int(closed["type"])]
                finding.conclusive = self._settled(closed_ms) and self._explains(
                    how, row, closed_ms, fills
                )
                return finding
            since = described[1]
        if written is not None:
            # The row holds what the bot did before writing it: only later fills are news.
            since = max(since or written, written + 1)
        # No close record of the life: closing fills since the row was written may still
        # tell.
        if since is not None and not fills.empty:
            closing = ev.closing_fills(fills[fills["stamp"] >= since])
            cause, _ = ev.fill_cause(closing)
            # Only fills that closed at least what the registry holds say it is gone (a
            # partial close is not a close).
            closed_size = float(closing["fillSz"].sum()) if not closing.empty else 0.0
            lot = float(self.cycle.lot_sizes.get(key[0], 0.0))
            enough = closed_size + lot / 2 + SIZE_EPSILON >= abs(float(row["pos_reg"]))
            if cause is not None and enough and not self._modes_share_fills(key):
                newest_close = int(closing["stamp"].max())
                finding.cause = cause
                finding.conclusive = self._settled(newest_close) and self._explains(
                    how, row, newest_close, fills
                )
                return finding
        self._note_partial(finding, since if since is not None else written)
        if described is not None and described[1] >= self.evidence.since_ms:
            # A life known to have begun within the lookback whose end the evidence does not
            # show (complete: OKX records every close; cut short: it may be unread): its
            # absence from this answer is the answer's fault, or not yet explained. Either
            # way observations alone do not make it gone (a position missing from two
            # answers in a row is not closed); evidence will, or the escalation.
            finding.hold = True
            finding.evidence["no_end_recorded"] = {"life_began": described[1]}
        elif described is None and written is not None:
            opened = self._opened_since_last_close(key, history, fills, written)
            if opened is not None:
                # Which life the row means is unclear, but the key's newest trade opened a
                # position that nothing has closed since: the same reasoning holds.
                finding.hold = True
                finding.evidence["no_end_recorded"] = {"opened": opened}
        return finding

    def _opened_since_last_close(
        self, key: Key, history: pd.DataFrame, fills: pd.DataFrame, written: int
    ) -> int | None:
        """When the key's newest fill (before the row was written) opened a position that no
        full close in the history and no fill has closed since: that time; else None."""
        if fills.empty or self._modes_share_fills(key):
            return None
        before = fills[fills["stamp"] <= written + IDENTITY_TOLERANCE_MS]
        if before.empty:
            return None
        ordered = before.sort_values("stamp")
        opened = int(ordered["stamp"].iloc[-1])
        sub_type = ordered["subType"].iloc[-1]
        if pd.isna(sub_type) or int(sub_type) not in ev.OPEN_FILLS:
            return None
        if not self.evidence.fills_complete_since(opened):
            return None
        if not ev.closing_fills(fills[fills["stamp"] >= opened]).empty:
            return None
        closes = (
            history[history["type"].isin(list(ev.FULL_CLOSE_TYPES))]
            if not history.empty
            else history
        )
        if not closes.empty and int(closes["uTime"].max()) >= opened:
            return None
        return opened

    def _explains(self, how: str, row: dict[str, Any], closed_ms: int, fills: pd.DataFrame) -> bool:
        """Does a close at `closed_ms` explain the registry's open row?

        A life the bot recorded or the engine saw agreeing is certain. A life inferred from
        the write time is the registry's only if it closed after the write, or so shortly
        before it that the bot was still recording (the grace window), and nothing was
        opened on the key since (a newer life could be hiding from this answer).
        """
        if how in ("recorded", "agreed"):
            return True
        written = self._written_ms(row)
        if written is None or closed_ms < written - self.grace_ms:
            return False
        if not self.evidence.fills_complete_since(closed_ms):
            return False
        opened = ev.opening_fills(fills)
        return bool(opened.empty or (opened["stamp"] < closed_ms).all())

    def _added(
        self, key: Key, row: dict[str, Any], finding: _Finding, history: pd.DataFrame
    ) -> _Finding:
        fills = self.evidence.fills_of(key)
        finding.evidence["fills"] = [int(s) for s in fills["subType"].dropna().tolist()]
        current = finding.exchange_life
        if row["_merge"] != "both" or current is None:
            return finding  # no row at all: nothing says whose position this is
        # A closed row: the bot recorded a close. A life that began after that write (or
        # after the life the row names) is a new life on a known row.
        closed = _int(row.get("cTime_reg"))
        written = self._written_ms(row)
        if (closed is not None and current[1] > closed) or (
            closed is None and written is not None and current[1] > written + IDENTITY_TOLERANCE_MS
        ):
            finding.cause = "reopened"
        return finding

    def _resized(
        self, key: Key, row: dict[str, Any], finding: _Finding, history: pd.DataFrame
    ) -> _Finding:
        current = finding.exchange_life
        fills = self.evidence.fills_of(key)
        finding.evidence["fills"] = [int(s) for s in fills["subType"].dropna().tolist()]
        written = self._written_ms(row)
        if current is not None:
            changed = ev.newest_record_of(history, current)
            finding.evidence["history"] = changed
            if changed is not None and changed.get("type") in ev.PARTIAL_CLOSE_TYPES:
                moment = int(changed["uTime"])
                if written is None or moment > written - IDENTITY_TOLERANCE_MS:
                    # Part of this life was closed after (or as) the bot last wrote; only
                    # clearly after the write is it certain the bot did not record it.
                    finding.cause = ev.HISTORY_CAUSE[int(changed["type"])]
                    finding.conclusive = self._settled(moment) and (
                        written is not None and moment > written + IDENTITY_TOLERANCE_MS
                    )
                    return finding
        later = (
            fills[fills["stamp"] > written] if written is not None and not fills.empty else fills
        )
        reduced = ev.closing_fills(later)
        if not reduced.empty and not self._modes_share_fills(key):
            cause, _ = ev.fill_cause(reduced)
            finding.cause = {"closed": "size_changed"}.get(cause or "", cause or "size_changed")
            return finding
        smaller = abs(float(row["pos_ex"])) < abs(float(row["pos_reg"]))
        opening = ev.opening_fills(fills)
        if (
            smaller
            and current is not None
            and reduced.empty
            and not opening.empty
            and bool((opening["stamp"] >= current[1]).any())
        ):
            # Nothing reduced this life since the bot wrote: its order is still filling.
            finding.cause = "partial_fill"
            return finding
        finding.cause = "size_changed"
        return finding

    def _settled(self, moment_ms: int) -> bool:
        """Evidence older than the grace window: the bot had time to record it."""
        return moment_ms <= self.cycle.at_ms - self.grace_ms

    def _modes_share_fills(self, key: Key) -> bool:
        """Fills carry no margin mode: with another mode's position on the same instrument
        and side, a fill cannot be told to be this one's."""
        inst_id, pos_side, mgn_mode = key
        merged = self.merged
        same = (merged["instId"] == inst_id) & (merged["posSide"] == pos_side)
        if bool((same & (merged["mgnMode"] != mgn_mode)).any()):
            return True  # the other mode is open, or was recorded, on this instrument
        for other in ("cross", "isolated"):
            if other != mgn_mode and not self.evidence.history_of((inst_id, pos_side, other)).empty:
                return True  # ... or traded within the lookback
        return False

    def _note_partial(self, finding: _Finding, since_ms: int | None) -> None:
        moment = since_ms if since_ms is not None else self.evidence.since_ms
        if not self.evidence.history_complete_since(moment):
            finding.evidence["partial"] = {
                "history_from": self.evidence.history_covers_from_ms,
                "needed_from": moment,
            }

    def _snapshot_evidence(self, row: dict[str, Any]) -> dict[str, Any]:
        exchange = None
        if row["_merge"] != "right_only":
            exchange = {
                "pos": _text(row["pos_ex"]),
                "lever": _text(row["lever_ex"]),
                "posId": _pos_id(row["posId_ex"]),
                "cTime": _int(row["cTime_ex"]),
            }
        registry = None
        if row["_merge"] != "left_only":
            registry = {
                "pos": _text(row["pos_reg"]),
                "lever": _text(row["lever_reg"]),
                "version": _int(row["version"]),
                "updatedAt": _int(row["updated_at_ms"]),
                "recordedAt": _int(row.get("recorded_at_ms")),
            }
        return {"exchange": exchange, "registry": registry}

    # -- events and heals -----------------------------------------------------------------------

    def _emit(
        self,
        key: Key,
        pending: Pending,
        status: str,
        cause: str,
        evidence: dict[str, Any],
        occurrence: str = "",
    ) -> DriftEvent:
        event = DriftEvent.make(
            self.cycle.at_ms,
            self.cycle.account,
            key,
            pending.kind,
            status,
            cause,
            {**evidence, "discrepancy": pending.id},
            discrepancy=pending.id,
            occurrence=occurrence,
        )
        self.events.append(event)
        return event

    def _heal(
        self, key: Key, pending: Pending, row: dict[str, Any], confirmed: DriftEvent
    ) -> HealAction:
        version = _int(row.get("version")) if row["_merge"] != "left_only" else None
        account = self.cycle.account
        if row["_merge"] == "right_only":
            # Close the registry's row, keeping the life it closed so that a later reopen
            # on the key is recognized as a new life.
            life = pending.registry_life
            return HealAction(
                account,
                key,
                version,
                "0",
                None,
                None,
                None if life is None else life[0],
                None if life is None else int(life[1]),
                confirmed,
            )
        return HealAction(
            account,
            key,
            version,
            _text(row["pos_ex"]) or "0",
            _text(row["avgPx_ex"]),
            _text(row["lever_ex"]),
            _pos_id(row["posId_ex"]),
            _int(row["cTime_ex"]),
            confirmed,
        )


@dataclass
class _Finding:
    cause: str
    conclusive: bool  # evidence enough to confirm at first sight
    evidence: dict[str, Any]
    hold: bool = False  # evidence says it is not what it seems: observations do not confirm
    registry_life: Life | None = None
    exchange_life: Life | None = None


def healed_event(heal: HealAction) -> DriftEvent:
    """The `healed` event of a heal that was written."""
    confirmed = heal.event
    discrepancy = str(confirmed.evidence.get("discrepancy", confirmed.id))
    evidence = {
        **confirmed.evidence,
        "heal": {
            "wrote": {
                "pos": heal.pos,
                "lever": heal.lever,
                "posId": heal.pos_id,
                "cTime": heal.c_time,
            },
            "expected_version": heal.expected_version,
            "confirmed_event": confirmed.id,
        },
    }
    return DriftEvent.make(
        confirmed.at_ms,
        confirmed.account,
        heal.key,
        confirmed.kind,
        "healed",
        confirmed.cause,
        evidence,
        discrepancy=discrepancy,
    )


def forget_healed(memory: EngineMemory, heal: HealAction) -> None:
    """After a heal is written the discrepancy is over, and the new row version describes
    the life it was healed to."""
    text = key_text(heal.key)
    memory.pending.pop(text, None)
    seen = memory.seen.get(text)
    new_version = 1 if heal.expected_version is None else heal.expected_version + 1
    if heal.pos != "0" and heal.c_time is not None:
        at = seen.seen_ms if seen is not None else heal.event.at_ms
        memory.seen[text] = Seen(heal.pos_id, heal.c_time, at, new_version)
