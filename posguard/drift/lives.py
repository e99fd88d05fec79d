"""Which life of a position the registry describes, and what the evidence says about it.

A registry row is about one life (posId, cTime): the one it records, the one it was seen
agreeing with, or the newest one alive when it was written. Evidence explains a discrepancy
only when it is about that life (a close of an earlier life of the key says nothing), and
only when it is older than the grace window (the bot may still be recording it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from posguard.drift import evidence as ev
from posguard.drift.evidence import Evidence, same_life
from posguard.drift.join import number, pos_id, text, whole
from posguard.drift.model import EngineMemory, Key, Life, key_of, key_text

SIZE_EPSILON = 1e-9
# A registry write names the life alive when it was written; lives created this close to
# the write are too close to tell apart, so such inference is not used as evidence.
IDENTITY_TOLERANCE_MS = 1000


@dataclass
class Finding:
    cause: str
    conclusive: bool  # evidence enough to confirm at first sight
    evidence: dict[str, Any]
    hold: bool = False  # evidence says it is not what it seems: observations do not confirm
    registry_life: Life | None = None
    exchange_life: Life | None = None


def other_mode(key: Key) -> Key:
    """The same instrument and side in the other margin mode (fills carry no margin mode)."""
    inst_id, pos_side, mgn_mode = key
    return (inst_id, pos_side, "isolated" if mgn_mode == "cross" else "cross")


class Lives:
    """What one cycle can say about each key's lives: the registry's, the exchange's, and the
    evidence of how they ended."""

    def __init__(
        self,
        *,
        at_ms: int,
        grace_ms: int,
        registry_offset_ms: int,
        evidence: Evidence,
        state: EngineMemory,
        merged: pd.DataFrame,
        lot_sizes: dict[str, float],
    ) -> None:
        self.at_ms = at_ms
        self.grace_ms = grace_ms
        self.registry_offset_ms = registry_offset_ms
        self.evidence = evidence
        self.state = state
        self.merged = merged
        self.lot_sizes = lot_sizes
        self._rows: dict[str, int] | None = None

    def half_lot(self, inst_id: str) -> float:
        """Sizes closer than this are the same size at the instrument's precision."""
        return float(self.lot_sizes.get(inst_id, 0.0)) / 2 + SIZE_EPSILON

    def row(self, index: int) -> dict[str, Any]:
        return dict(self.merged.iloc[index])

    def _lost_from_answer(self, key: Key, row: dict[str, Any] | None) -> bool:
        """Is the exchange's side of this key missing from this answer although the life
        last seen there has no recorded end (OKX records every close)?"""
        if row is not None and row["_merge"] != "right_only":
            return False
        seen = self.state.seen.get(key_text(key))
        # Seen open within the lookback: an end after that would be in the history read now,
        # however long ago the life began (a position older than the lookback is common).
        if seen is None or seen.seen_ms < self.evidence.since_ms:
            return False
        closed = ev.newest_record_of(self.evidence.history_of(key), seen.life)
        if closed is not None and closed.get("type") in ev.FULL_CLOSE_TYPES:
            return False
        fills = self.evidence.fills_of(key)
        later = fills[fills["stamp"] > seen.seen_ms] if not fills.empty else fills
        closing = ev.closing_fills(later)
        # Closing fills that add up to less than the size last seen cannot have closed it
        # (opening fills only add): the answer lost it (soak seed 7 life 193: one answer
        # without a position right after a partial close ended a confirmed ADD, which the
        # next answer confirmed again).
        if (
            not closing.empty
            and seen.pos is not None
            and self.evidence.fills_complete_since(seen.seen_ms)
            and float(closing["fillSz"].sum()) < abs(seen.pos) - self.half_lot(key[0])
        ):
            return True
        if not closing.empty and self._modes_share_fills(key):
            # Fills carry no margin mode: a close the other mode's history records at that
            # instant is that mode's (soak seed 1 life 888 read an isolated close as the end
            # of the cross position an answer had lost, and a confirmed discrepancy twice).
            others = self._other_mode_records(key)
            closing = closing[~closing["stamp"].astype("int64").isin(list(others))]
        return closing.empty

    def _exchange_life(self, row: dict[str, Any]) -> Life | None:
        c_time = whole(row.get("cTime_ex"))
        return None if c_time is None else (pos_id(row.get("posId_ex")), c_time)

    def _written_ms(self, row: dict[str, Any]) -> int | None:
        """When the registry row was last written, on OKX's clock."""
        recorded = whole(row.get("recorded_at_ms"))
        if recorded is None:
            recorded = whole(row.get("updated_at_ms"))
        return None if recorded is None else recorded + self.registry_offset_ms

    def _registry_life(
        self, key: Key, row: dict[str, Any], history: pd.DataFrame
    ) -> tuple[Life | None, str]:
        """The life the registry row describes, and how that is known."""
        c_time = whole(row.get("cTime_reg"))
        if c_time is not None:
            return (pos_id(row.get("posId_reg")), c_time), "recorded"
        seen = self.state.seen.get(key_text(key))
        version = whole(row.get("version"))
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
            # A life opened around the write (a quick reopen): the row's size may tell which
            # of the lives of that moment it records.
            close = [c for c in before if c[1] > written - IDENTITY_TOLERANCE_MS - self.grace_ms]
            earlier = [c for c in before if c not in close]
            if earlier:
                # ... or the life alive before them, which the bot may have been recording
                # as the venue replaced it (a flip right after the write).
                close.insert(0, earlier[-1])
            sized = [c for c in close if self._size_matches(c, row, history)]
            if len(sized) == 1:
                return sized[0], "written"
            return None, "unknown"
        return newest, "written"

    def _size_matches(self, life: Life, row: dict[str, Any], history: pd.DataFrame) -> bool:
        """Did this life ever hold the size the registry row records (at half a lot)?"""
        size = number(row.get("pos_reg"))
        if size is None:
            return False
        held: list[float] = []
        if row["_merge"] == "both" and same_life(self._exchange_life(row), life):
            current = number(row.get("pos_ex"))
            if current is not None:
                held.append(abs(current))
        newest = ev.newest_record_of(history, life)
        if newest is not None and newest.get("openMaxPos") is not None:
            held.append(abs(float(newest["openMaxPos"])))
        if newest is not None and newest.get("type") in ev.FULL_CLOSE_TYPES:
            # What it held last: what its final close closed (a bot records the size it
            # partly closed down to, then the venue closes the rest; soak seed 1 life 1522).
            fills = self.evidence.fills_of(key_of(str(row["key"])))
            if not fills.empty:
                final = ev.closing_fills(fills[fills["stamp"] == int(newest["uTime"])])
                if not final.empty:
                    held.append(float(final["fillSz"].sum()))
        half_lot = self.half_lot(str(row.get("instId")))
        return any(abs(abs(size) - amount) < half_lot for amount in held)

    def _find(self, key: Key, kind: str, row: dict[str, Any]) -> Finding:
        history = self.evidence.history_of(key)
        described, how = self._registry_life(key, row, history)
        current = self._exchange_life(row) if row["_merge"] != "right_only" else None
        finding = Finding(
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
            finding.conclusive = current[1] <= self.at_ms - self.grace_ms
            finding.evidence["history"] = ev.newest_record_of(history, described)
            return finding
        if kind == "DRIFT_SIZE":
            return self._resized(key, row, finding, history)
        return finding  # DRIFT_SIDE on one life: nothing explains it

    def _removed(
        self,
        key: Key,
        row: dict[str, Any],
        finding: Finding,
        history: pd.DataFrame,
        how: str,
    ) -> Finding:
        finding = self._removed_by_evidence(key, row, finding, history, how)
        described = finding.registry_life
        if (
            not finding.conclusive
            and described is not None
            and self._end_would_be_recorded(key, described)
        ):
            # A life known to have begun within the lookback whose end the evidence does not
            # (yet) explain (OKX records every close; pages cut short may hide it; a newer
            # life may have been opened since): its absence from this answer is the answer's
            # fault, or not yet explained. Either way observations alone do not make it gone
            # (a position missing from two answers in a row is not closed); evidence will, or
            # the escalation.
            finding.hold = True
            finding.evidence.setdefault("no_end_recorded", {"life_began": described[1]})
        if self._lost_from_answer(key, row):
            # The life last seen here has no recorded end: the answer lost it. Whatever the
            # evidence says of the life the registry describes, this is not the moment the
            # exchange holds nothing on the key.
            finding.conclusive = False
            finding.hold = True
            finding.evidence["lost_from_answer"] = True
        return finding

    def _end_would_be_recorded(self, key: Key, life: Life) -> bool:
        """Would an end of this life be in the history read now? Yes when it began within
        the lookback, or when the engine saw it open within the lookback (its end came later,
        so inside the window; the reviewer's case: a position opened two hours ago)."""
        if life[1] >= self.evidence.since_ms:
            return True
        seen = self.state.seen.get(key_text(key))
        return (
            seen is not None
            and same_life(seen.life, life)
            and seen.seen_ms >= self.evidence.since_ms
        )

    def _removed_by_evidence(
        self,
        key: Key,
        row: dict[str, Any],
        finding: Finding,
        history: pd.DataFrame,
        how: str,
    ) -> Finding:
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
                    how, row, closed_ms, fills, history
                )
                return finding
            since = described[1]
        elif written is not None:
            newest = self._newest_life(key, history)
            closed = ev.newest_record_of(history, newest) if newest is not None else None
            if closed is not None and closed.get("type") in ev.FULL_CLOSE_TYPES:
                # Which life the row meant is unclear (a wrong size, a write around a reopen),
                # but the newest life there was has ended since the row was written, and
                # nothing was opened after: whichever life it meant is gone, and this close
                # is what left the key flat.
                closed_ms = int(closed["uTime"])
                if self._explains("written", row, closed_ms, fills, history):
                    finding.evidence["history"] = closed
                    finding.cause = ev.HISTORY_CAUSE[int(closed["type"])]
                    finding.conclusive = self._settled(closed_ms)
                    return finding
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
            enough = closed_size + self.half_lot(key[0]) >= abs(float(row["pos_reg"]))
            if cause is not None and enough and not self._modes_share_fills(key):
                newest_close = int(closing["stamp"].max())
                finding.cause = cause
                finding.conclusive = self._settled(newest_close) and self._explains(
                    how, row, newest_close, fills, history
                )
                return finding
        self._note_partial(finding, since if since is not None else written)
        if described is None and written is not None:
            opened = self._opened_since_last_close(key, history, fills, written)
            if opened is not None:
                # Which life the row means is unclear, but the key's newest trade opened a
                # position that nothing has closed since: the same reasoning holds.
                finding.hold = True
                finding.evidence["no_end_recorded"] = {"opened": opened}
        return finding

    def _newest_life(self, key: Key, history: pd.DataFrame) -> Life | None:
        """The newest life known on the key: the one last seen open, or a newer one in the
        history."""
        lives = [life for life, _ in ev.lives(history)]
        seen = self.state.seen.get(key_text(key))
        if seen is not None:
            lives.append(seen.life)
        return max(lives, key=lambda life: life[1], default=None)

    def _opened_since_last_close(
        self, key: Key, history: pd.DataFrame, fills: pd.DataFrame, written: int
    ) -> int | None:
        """When the key's newest fill (before the row was written) opened a position that no
        full close in the history and no fill has closed since: that time; else None."""
        if fills.empty:
            return None
        shared = self._modes_share_fills(key)
        if shared and key[1] != "net":
            return None
        before = fills[fills["stamp"] <= written + IDENTITY_TOLERANCE_MS]
        if before.empty:
            return None
        ordered = before.sort_values("stamp")
        opened = int(ordered["stamp"].iloc[-1])
        sub_type = ordered["subType"].iloc[-1]
        if pd.isna(sub_type) or int(sub_type) not in ev.OPEN_FILLS:
            return None
        if shared:
            # In net mode an opening fill opens (or adds to) a long (3) or a short (4). The
            # other margin mode held the opposite direction then, without a close since:
            # it could not have taken this fill (a flip would have begun a life there), so
            # the fill is this key's (soak seed 1 life 728: an isolated long opened beside a
            # cross short, both lost from two answers in a row).
            direction = "long" if int(sub_type) == ev.OPENS["long"] else "short"
            other = self._other_mode_direction_at(key, opened)
            if other is None or other == direction:
                return None
        if not self.evidence.fills_complete_since(opened):
            return None
        # Strictly later: a quick reopen closes the old life and opens the new one within
        # the same millisecond, and that close is not the new life's end.
        closing = ev.closing_fills(fills[fills["stamp"] > opened])
        if shared and not closing.empty:
            # ... and a close the other mode's history records is that mode's.
            others = self._other_mode_records(key)
            closing = closing[~closing["stamp"].astype("int64").isin(list(others))]
        if not closing.empty:
            return None
        if self._closed_since_opened(opened, history):
            return None
        return opened

    def _explains(
        self,
        how: str,
        row: dict[str, Any],
        closed_ms: int,
        fills: pd.DataFrame,
        history: pd.DataFrame,
    ) -> bool:
        """Does a close at `closed_ms` explain the registry's open row, now?

        The life must be the registry's: one the bot recorded or the engine saw agreeing is;
        one inferred from the write time is only if it closed after the write, or so shortly
        before it that the bot was still recording (the grace window). And the key must be
        flat since: a life opened after that close, and not closed again, is on the exchange
        even if this answer lost it.
        """
        if how not in ("recorded", "agreed"):
            written = self._written_ms(row)
            if written is None or closed_ms < written - self.grace_ms:
                return False
        if not self.evidence.fills_complete_since(closed_ms):
            return False
        return self._flat_since(key_of(str(row["key"])), closed_ms, fills, history)

    def _flat_since(
        self, key: Key, moment_ms: int, fills: pd.DataFrame, history: pd.DataFrame
    ) -> bool:
        """No position opened on the key since `moment_ms`, or the newest one was closed."""
        opened = ev.opening_fills(fills[fills["stamp"] >= moment_ms]) if not fills.empty else fills
        if not opened.empty and self._modes_share_fills(key):
            # Fills carry no margin mode: an opening fill that began a life of the other mode
            # on this instrument and side is that life's, not a new one here.
            mine = [not self._other_mode_open_at(key, int(s)) for s in opened["stamp"].tolist()]
            opened = opened[mine]
        if opened.empty:
            return True
        return Lives._closed_since_opened(int(opened["stamp"].max()), history)

    def _other_mode_open_at(self, key: Key, stamp_ms: int) -> bool:
        """Is the opening fill at `stamp_ms` known to be the other margin mode's (same
        instrument and side)? It is when a life of that mode began then (by its history, the
        life last seen, or this answer), or when this answer shows that mode's position last
        adjusted then (its uTime): an add to it. Any other opening fill while both modes hold
        a position could be either's, and is kept as this key's (which holds, not confirms)."""
        other = other_mode(key)
        began = {life[1] for life, _ in ev.lives(self.evidence.history_of(other))}
        seen = self.state.seen.get(key_text(other))
        if seen is not None:
            began.add(seen.c_time)
        row = self._row_of(other)
        if row is not None and row["_merge"] != "right_only":
            for moment in (whole(row.get("cTime_ex")), whole(row.get("uTime"))):
                if moment is not None:
                    began.add(moment)
        return stamp_ms in began or self._within_a_balanced_life(key, other, stamp_ms)

    def _within_a_balanced_life(self, key: Key, other: Key, stamp_ms: int) -> bool:
        """Did a closed life of the other mode span `stamp_ms` and open, by the fills of its
        direction over its span, exactly what its full close says it closed (closeTotalPos)?
        Then every such fill was its own, this one included: a life that ends flat opened
        what it closed (soak seed 292499968 life 9: a cross add after the isolated close)."""
        fills = self.evidence.fills_of(key)
        if fills.empty:
            return False
        half_lot = self.half_lot(key[0])
        for life, newest in ev.lives(self.evidence.history_of(other)):
            if newest.get("type") not in ev.FULL_CLOSE_TYPES:
                continue
            began, ended = life[1], int(newest["uTime"])
            total = number(newest.get("closeTotalPos"))
            direction = newest.get("direction")
            if not began <= stamp_ms <= ended or total is None or direction not in ev.OPENS:
                continue
            if not self.evidence.fills_complete_since(began):
                continue
            span = fills[(fills["stamp"] >= began) & (fills["stamp"] <= ended)]
            opened = span[span["subType"] == ev.OPENS[str(direction)]]
            if abs(float(opened["fillSz"].sum()) - total) < half_lot:
                return True
        return False

    def _other_mode_direction_at(self, key: Key, stamp_ms: int) -> str | None:
        """The direction (long/short) of the position the other margin mode held at
        `stamp_ms` (net mode), when a life of it is known to have begun before and not to
        have ended by then; None when unknown."""
        other = other_mode(key)
        history = self.evidence.history_of(other)
        # Lives with a full close recorded: their direction, and when they ended.
        ended: dict[int, int] = {}
        for life, newest in ev.lives(history):
            if newest.get("type") in ev.FULL_CLOSE_TYPES:
                ended[life[1]] = int(newest["uTime"])
            if life[1] < stamp_ms and ended.get(life[1], stamp_ms + 1) > stamp_ms:
                direction = newest.get("direction")
                if direction in ("long", "short"):
                    return str(direction)
        began: int | None = None
        row = self._row_of(other)
        if row is not None and row["_merge"] != "right_only":
            c_time = whole(row.get("cTime_ex"))
            size = number(row.get("pos_ex"))
            if c_time is not None and c_time < stamp_ms and size:
                return "long" if size > 0 else "short"
        seen = self.state.seen.get(key_text(other))
        if seen is not None and seen.c_time < stamp_ms and seen.c_time not in ended:
            began = seen.c_time
        if began is None:
            return None
        # The fill that began it says which way it went.
        fills = self.evidence.fills_of(other)
        at_start = ev.opening_fills(fills[fills["stamp"] == began]) if not fills.empty else fills
        if len(at_start) != 1:
            return None
        return "long" if int(at_start["subType"].iloc[0]) == ev.OPENS["long"] else "short"

    def _other_mode_records(self, key: Key) -> set[int]:
        """When the other margin mode's history recorded something (its records' uTime)."""
        other = other_mode(key)
        history = self.evidence.history_of(other)
        if history.empty:
            return set()
        return {int(u) for u in history["uTime"].dropna().tolist()}

    def _row_of(self, key: Key) -> dict[str, Any] | None:
        """The joined row of a key, or None when neither side has it."""
        if self._rows is None:
            self._rows = {str(k): i for i, k in enumerate(self.merged["key"].tolist())}
        index = self._rows.get(key_text(key))
        return None if index is None else self.row(index)

    @staticmethod
    def _closed_since_opened(opened_ms: int, history: pd.DataFrame) -> bool:
        """Was the position opened (or added to) at `opened_ms` fully closed since?

        A close in the same millisecond counts only if it ended a life that began then: a quick
        reopen closes the old life and opens the new one at one instant (seed 20251220 life 22
        of the soak read the old life's close as the new life's and confirmed a false removal).
        """
        if history.empty:
            return False
        full = history[history["type"].isin(list(ev.FULL_CLOSE_TYPES))]
        later = (full["uTime"] > opened_ms) | (
            (full["uTime"] == opened_ms) & (full["cTime"] >= opened_ms)
        )
        return bool(later.any())

    def _added(
        self, key: Key, row: dict[str, Any], finding: Finding, history: pd.DataFrame
    ) -> Finding:
        fills = self.evidence.fills_of(key)
        finding.evidence["fills"] = [int(s) for s in fills["subType"].dropna().tolist()]
        current = finding.exchange_life
        if row["_merge"] != "both" or current is None:
            return finding  # no row at all: nothing says whose position this is
        # A closed row: the bot recorded a close. A life that began after that write (or
        # after the life the row names) is a new life on a known row.
        closed = whole(row.get("cTime_reg"))
        written = self._written_ms(row)
        if (closed is not None and current[1] > closed) or (
            closed is None and written is not None and current[1] > written + IDENTITY_TOLERANCE_MS
        ):
            finding.cause = "reopened"
        return finding

    def _resized(
        self, key: Key, row: dict[str, Any], finding: Finding, history: pd.DataFrame
    ) -> Finding:
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
        return moment_ms <= self.at_ms - self.grace_ms

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

    def _note_partial(self, finding: Finding, since_ms: int | None) -> None:
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
                "pos": text(row["pos_ex"]),
                "lever": text(row["lever_ex"]),
                "posId": pos_id(row["posId_ex"]),
                "cTime": whole(row["cTime_ex"]),
            }
        registry = None
        if row["_merge"] != "left_only":
            registry = {
                "pos": text(row["pos_reg"]),
                "lever": text(row["lever_reg"]),
                "version": whole(row["version"]),
                "updatedAt": whole(row["updated_at_ms"]),
                "recordedAt": whole(row.get("recorded_at_ms")),
            }
        return {"exchange": exchange, "registry": registry}
