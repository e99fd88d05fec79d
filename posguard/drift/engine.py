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
   A push from OKX's private stream (`Pushed`) that shows what the snapshot shows, at least
   the grace window before it, is one more observation: the two prove the discrepancy lasted
   that long. A push never counts alone, and counts once per discrepancy.
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
from posguard.drift.join import (
    EXCHANGE_COLUMNS,
    KEY,
    REGISTRY_COLUMNS,
    empty_registry,
    number,
    outer_join,
    pos_id,
    text,
    whole,
)
from posguard.drift.lives import IDENTITY_TOLERANCE_MS, SIZE_EPSILON, Finding, Lives
from posguard.drift.model import (
    DriftEvent,
    DriftSettings,
    EngineMemory,
    HealAction,
    Key,
    Life,
    Pending,
    Pushed,
    Seen,
    digest,
    iso_ms,
    key_of,
    key_text,
)

__all__ = [
    "EXCHANGE_COLUMNS",
    "KEY",
    "REGISTRY_COLUMNS",
    "CycleInput",
    "CycleResult",
    "empty_registry",
    "forget_healed",
    "healed_event",
    "reconcile",
]

# Snapshot times are OKX time as each run measured its clock offset: early by up to the
# sync answer's way back (ms on a good link), never late. Two runs within this much of each
# other are simultaneous, not one older than the other.
RATCHET_TOLERANCE_MS = 1000


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
    # What OKX's private stream pushed before this run was started (posguard watch).
    pushed: list[Pushed] = field(default_factory=list)


@dataclass
class CycleResult:
    events: list[DriftEvent]
    memory: EngineMemory
    heals: list[HealAction]
    skipped: str | None = None
    guarded: list[Key] = field(default_factory=list)  # keys the bot was acting on


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


# Causes that only say the evidence named nothing more specific.
GENERIC_CAUSES = frozenset({"unknown", "size_changed"})
# Causes a venue record (positions-history, fills) names.
EVIDENCE_CAUSES = frozenset({"closed", "liquidated", "adl"})


def _named(earlier: str, now: str) -> str:
    """The cause of a discrepancy after another look: newer evidence may name it better, but
    evidence that named it once does not un-happen. A record seen at an earlier observation
    and missing now (a history page cut short, a record past the lookback) leaves the cause
    it named (soak seed 1 life 1640: a partial ADL seen, then "size_changed" on a short page)."""
    if now in GENERIC_CAUSES and earlier in EVIDENCE_CAUSES:
        return earlier
    return now


class _Cycle(Lives):
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
        registry_at = cycle.registry_at_ms if cycle.registry_at_ms is not None else cycle.at_ms
        self.registry_at_ms = registry_at
        super().__init__(
            at_ms=cycle.at_ms,
            grace_ms=int(settings.grace_seconds * 1000),
            # Registry times mapped onto OKX's clock with the offset measured at snapshot start.
            registry_offset_ms=cycle.at_ms - registry_at,
            evidence=Evidence(
                cycle.history,
                cycle.fills,
                since_ms=cycle.at_ms - int(settings.lookback_seconds * 1000),
                until_ms=cycle.at_ms,
                history_covers_from_ms=cycle.history_covers_from_ms,
                fills_covers_from_ms=cycle.fills_covers_from_ms,
            ),
            state=memory.copy(),
            merged=outer_join(exchange, cycle.registry[REGISTRY_COLUMNS]),
            lot_sizes=dict(cycle.lot_sizes),
        )
        self.events: list[DriftEvent] = []
        self.heals: list[HealAction] = []
        self.pushes = {key_text(push.key): push for push in cycle.pushed}

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
        # "" is unknown, never a value: an answer without the lever says nothing about a
        # leverage discrepancy (it neither confirms nor ends one).
        lever_unknown = both & ~side & ~size & ~other_life & np.isnan(lever_ex)
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
        for key_name in sorted(visit):
            index = rows.get(key_name)
            if index is not None and guarded[index]:
                guarded_keys.append(key_of(key_name))
                continue  # the bot is acting on this key: judge it next cycle
            if index is not None and behind[index]:
                continue  # the answer is older than what the bot recorded: no conclusion
            pending = self.state.pending.get(key_name)
            if (
                index is not None
                and lever_unknown[index]
                and pending is not None
                and pending.kind == "DRIFT_LEVER"
            ):
                continue
            self._judge(key_name, index, str(kinds[index]) if index is not None else "")
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
        for key_name, is_open, raw_pos_id, c_time, version, is_unsettled, size in zip(
            merged["key"].tolist(),
            ex_open.tolist(),
            merged["posId_ex"].tolist(),
            merged["cTime_ex"].tolist(),
            merged["version"].tolist(),
            unsettled.tolist(),
            merged["pos_ex"].tolist(),
            strict=True,
        ):
            if not is_open:
                continue
            life_c_time = whole(c_time)
            if life_c_time is None:
                continue
            life_pos_id = pos_id(raw_pos_id)
            old = previous.get(key_name)
            bound = None
            if not is_unsettled and whole(version) is not None:
                bound = whole(version)
            elif old is not None and same_life(old.life, (life_pos_id, life_c_time)):
                bound = old.bound_version
            seen[key_name] = Seen(life_pos_id, life_c_time, at, bound, number(size))
        # A key gone from the exchange stays remembered while its registry row is open or a
        # discrepancy is pending: that is what removal evidence is matched against.
        keep = set(self.state.pending)
        keep.update(merged["key"][reg_open].tolist())
        for key_name in keep:
            if key_name not in seen and key_name in previous:
                seen[key_name] = previous[key_name]
        self.state.seen = seen

    # -- one key --------------------------------------------------------------------------------

    def _judge(self, text: str, index: int | None, kind: str) -> None:
        key = key_of(text)
        pending = self.state.pending.get(text)
        row = self.row(index) if index is not None else None
        finding = self._find(key, kind, row) if kind and row is not None else None
        rewritten = (
            pending is not None
            and row is not None
            and whole(row.get("version")) != pending.registry_version
        )
        if pending is not None and (pending.kind != kind or rewritten):
            # Another kind of discrepancy, or a new write by the bot (a new belief, even if
            # still wrong): the one being watched is over.
            lost = (finding is not None and finding.hold) or self._lost_from_answer(key, row)
            if lost and not rewritten:
                # The answer lost a position that evidence says is open: this cycle says
                # nothing about the discrepancy already being watched.
                return
            self._resolve(text, key, pending, row)
            pending = None
        elif pending is not None and row is not None and self._interlude(key, pending, row):
            # Another life, of another size, came and went on the key since the engine last
            # looked (answers that lost it, reads that failed): the disagreement changed kind
            # meanwhile, and this is a new one (soak seed 7 life 256: never confirmed again).
            self._resolve(text, key, pending, row, cause="reopened")
            pending = None
        if finding is None or row is None:
            return
        if pending is None:
            self._open(text, key, kind, finding, row)
        else:
            self._observe(key, pending, finding, row)

    def _open(
        self, text: str, key: Key, kind: str, finding: Finding, row: dict[str, Any]
    ) -> Pending:
        at = self.cycle.at_ms
        version = whole(row.get("version"))
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
        self._count_push(key, pending, finding, row, after_ms=None)
        counted = pending.count >= self.settings.confirm_after
        if finding.conclusive or (counted and not finding.hold):
            self._confirm(key, pending, finding, row)
        else:
            self._emit(key, pending, "suspected", finding.cause, finding.evidence)
        return pending

    def _observe(self, key: Key, pending: Pending, finding: Finding, row: dict[str, Any]) -> None:
        at = self.cycle.at_ms
        if not pending.confirmed:  # a push confirms; it does not count towards escalation
            self._count_push(key, pending, finding, row, after_ms=pending.last_ms)
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
            held = finding.hold and not finding.conclusive
            if held:
                # Confirmed by the escalation itself: this alert is the "still unresolved"
                # one, not followed by an escalation a cycle later (found by the engine's
                # table tests: two alerts 30 s apart for one held discrepancy).
                finding.evidence["held_until_escalation"] = True
            self._confirm(key, pending, finding, row)
            pending.escalated = pending.escalated or held
        else:
            pending.cause = _named(pending.cause, finding.cause)

    def _lost_from_answer(self, key: Key, row: dict[str, Any] | None) -> bool:
        """Also lost when a push showed the life open after every close the evidence holds
        and the answer has nothing on the key: one answer losing a position right after a
        partial fill must not end a discrepancy that the next one shows again (soak seed 1
        life 608: a confirmed ADD resolved, then confirmed a second time). The push
        concludes nothing here: it only keeps this cycle from concluding."""
        if super()._lost_from_answer(key, row):
            return True
        if row is not None and row["_merge"] != "right_only":
            return False
        push = self.pushes.get(key_text(key))
        if push is None or not push.open or push.life is None:
            return False
        if push.venue_ms > self.cycle.at_ms:
            return False
        ended = ev.newest_record_of(self.evidence.history_of(key), push.life)
        if ended is not None and ended.get("type") in ev.FULL_CLOSE_TYPES:
            return False
        fills = self.evidence.fills_of(key)
        closing = (
            ev.closing_fills(fills[fills["stamp"] > push.venue_ms]) if not fills.empty else fills
        )
        return closing.empty

    def _count_push(
        self,
        key: Key,
        pending: Pending,
        finding: Finding,
        row: dict[str, Any],
        *,
        after_ms: int | None,
    ) -> None:
        """Count the push on this key as an observation when it shows what this snapshot
        shows, at least the grace window before it (and after `after_ms`, the last
        observation counted before this cycle, by as much): the position was so all along,
        and the registry's row has not changed within the window either (the race guard),
        so the discrepancy lasted longer than a write the bot may still be making.

        It must also be about this discrepancy: pushed after the registry's row was written
        (an older push saw the exchange before the bot's current belief), and not older
        than the position's last adjustment the snapshot shows (a later change, pushed to
        another run, may have come and gone)."""
        push = self.pushes.get(key_text(key))
        if push is None or pending.pushed_ms is not None:
            return
        if push.venue_ms > self.cycle.at_ms - self.grace_ms:
            return
        if after_ms is not None and push.venue_ms < after_ms + self.grace_ms:
            return
        written = self._written_ms(row) if row["_merge"] != "left_only" else None
        if written is not None and push.venue_ms < written:
            return
        adjusted = whole(row.get("uTime")) if row["_merge"] != "right_only" else None
        if adjusted is not None and adjusted > push.venue_ms:
            return
        if not self._push_agrees(key, pending.kind, push, row, finding.registry_life):
            return
        # From the change, not the push: a change seen in a regular snapshot is pushed later.
        since = min(push.venue_ms, adjusted if adjusted is not None else push.venue_ms)
        since -= self.grace_ms
        if not self.evidence.complete_since(since):
            # Pages cut short may hold the record that names the cause: confirming now would
            # say "unknown" for good (soak seed 7 life 233: an ADL).
            return
        pending.count += 1
        pending.pushed_ms = push.venue_ms
        described = finding.registry_life
        if (
            pending.kind == "DRIFT_REMOVE"
            and described is not None
            and same_life(push.life, described)
            and self.evidence.complete_since(described[1])
        ):
            # OKX itself said this life closed: not an answer that lost it (what a hold
            # waits out). Only on whole evidence: pages cut short may still hold the record
            # that names the cause (soak seed 7 lives 28, 117, 368 confirmed "unknown" what
            # the next page said was an ADL, a close, a liquidation).
            finding.hold = False
        finding.evidence["pushed"] = {
            "at": iso_ms(push.venue_ms),
            "pos": push.pos,
            "posId": None if push.life is None else push.life[0],
            "cTime": None if push.life is None else push.life[1],
            "lever": push.lever,
        }

    def _push_agrees(
        self,
        key: Key,
        kind: str,
        push: Pushed,
        row: dict[str, Any],
        described: Life | None,
    ) -> bool:
        """Does the push show the position this snapshot shows (open or not, its life, its
        size at the lot's precision, its leverage where both say)? A close must be of a
        life it names, and of the one the registry describes when that is known."""
        exchange_open = row["_merge"] != "right_only"
        if push.open != exchange_open:
            return False
        if not exchange_open:
            return push.life is not None and (described is None or same_life(push.life, described))
        if not same_life(push.life, self._exchange_life(row)):
            return False
        pos_ex = number(row["pos_ex"])
        lot = float(self.lot_sizes.get(key[0], 0.0))
        if pos_ex is None or abs(push.pos - pos_ex) >= max(lot / 2, SIZE_EPSILON):
            return False
        lever_ex = number(row["lever_ex"])
        if push.lever is None or lever_ex is None:
            return kind != "DRIFT_LEVER"
        return abs(push.lever - lever_ex) <= 1e-9

    def _confirm(self, key: Key, pending: Pending, finding: Finding, row: dict[str, Any]) -> None:
        cause = _named(pending.cause, finding.cause)
        if not finding.conclusive and pending.kind == "DRIFT_ADD" and cause == "unknown":
            cause = "external"  # seen twice on the exchange, never recorded by the bot
        pending.confirmed = True
        pending.cause = cause
        evidence = {**finding.evidence, "observations": pending.count}
        confirmed = self._emit(key, pending, "confirmed", cause, evidence)
        if self.settings.heal == "heal":
            self.heals.append(self._heal(key, pending, row, confirmed))

    def _interlude(self, key: Key, pending: Pending, row: dict[str, Any]) -> bool:
        """A removal still seen as one, although the whole history shows another life,
        opened after the removal began and ended since the history was last read whole,
        that differed from the registry's row while it was open (its peak size, a partial
        close, the other side in net mode): the disagreement was of another kind meanwhile.
        Each cycle whose history is whole moves the mark, so one life splits it once."""
        if pending.kind != "DRIFT_REMOVE" or row["_merge"] != "right_only":
            return False
        registry_pos = number(row["pos_reg"])
        mark = pending.history_ms if pending.history_ms is not None else pending.first_ms
        if registry_pos is None or not self.evidence.history_complete_since(mark):
            return False
        pending.history_ms = self.cycle.at_ms
        half_lot = self.half_lot(key[0])
        described = pending.registry_life
        known: Life | None = None if described is None else (described[0], int(described[1]))
        history = self.evidence.history_of(key).to_dict("records")
        # Lives partly closed at some point: their size moved while they were open.
        partly = {
            (pos_id(r.get("posId")), whole(r.get("cTime")))
            for r in history
            if whole(r.get("type")) in ev.PARTIAL_CLOSE_TYPES
        }
        for record in history:
            c_time, u_time = whole(record.get("cTime")), whole(record.get("uTime"))
            if c_time is None or u_time is None:
                continue
            if whole(record.get("type")) not in ev.FULL_CLOSE_TYPES:
                continue
            life = (pos_id(record.get("posId")), c_time)
            if c_time <= pending.first_ms or u_time <= mark or same_life(life, known):
                continue
            peak = number(record.get("openMaxPos"))
            other_side = key[1] == "net" and (record.get("direction") == "short") != (
                registry_pos < 0
            )
            if (
                life in partly
                or other_side
                or (peak is not None and abs(abs(peak) - abs(registry_pos)) >= half_lot)
            ):
                return True
        return False

    def _resolve(
        self,
        text: str,
        key: Key,
        pending: Pending,
        row: dict[str, Any] | None,
        cause: str | None = None,
    ) -> None:
        """The discrepancy is gone (or became another kind): say why, and forget it."""
        del self.state.pending[text]
        cause = cause or self._resolution_cause(key, pending, row)
        evidence = self._snapshot_evidence(row) if row is not None else {}
        evidence["observations"] = pending.count
        evidence["was"] = {
            "status": "confirmed" if pending.confirmed else "suspected",
            "cause": pending.cause,
        }
        self._emit(key, pending, "resolved", cause, evidence)

    def _resolution_cause(self, key: Key, pending: Pending, row: dict[str, Any] | None) -> str:
        version = None if row is None else whole(row.get("version"))
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
        version = whole(row.get("version")) if row["_merge"] != "left_only" else None
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
            text(row["pos_ex"]) or "0",
            text(row["avgPx_ex"]),
            text(row["lever_ex"]),
            pos_id(row["posId_ex"]),
            whole(row["cTime_ex"]),
            confirmed,
        )


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
