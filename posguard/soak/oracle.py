"""The soak's oracle: which discrepancies were real, and was each event about one of them?

Written apart from the engine, from the simulator's truth: what the exchange held on every
key at every moment (`holdings`) and what the registry said (`beliefs`, and posguard's own
heal writes read back from its `healed` events).

- A *discrepancy* is a stretch of time during which the registry and the exchange disagree
  in one way (one kind: ADD, REMOVE, SIZE, SIDE, LEVER) on one key. The registry's row is
  about a life: the one its writer meant (the truth knows it even when the row does not name
  it); a row about a life that has ended is a REMOVE even when the sizes happen to agree.
- It is *real* when it lasts longer than the grace window (shorter ones are the bot
  recording what it just did).
- It *must* be confirmed when it spans `confirm_after + 1` clean polls (every member
  answered, no stale or partial positions answer, the bot not writing the key, each at
  least `confirm_interval_seconds` after the previous one): confirmed no later than the last
  of them, or it is *missed*. A real one that ends sooner *may* be confirmed (evidence can
  confirm at first sight).
- A confirmed (or healed) event is *false* unless a real discrepancy of its kind on its key
  was in progress at the moment its snapshot showed.
- Its cause must be one the truth allows for what happened during the discrepancy;
  `unknown` only where the evidence the reconciler received that cycle held nothing about
  the life concerned.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from posguard.drift.model import DriftEvent, Key
from posguard.soak.world import Belief, Holding, Life, LifeRecord, Poll

CAUSES_FOR: dict[str, dict[str, set[str]]] = {
    "DRIFT_ADD": {"*": {"external", "unknown", "reopened"}},
    "DRIFT_REMOVE": {
        "close": {"closed"},
        "external_close": {"closed", "external"},
        "liquidation": {"liquidated"},
        "partial_liquidation": {"liquidated"},  # a "partial" one that took all that was left
        "adl": {"adl"},
        "partial_adl": {"adl"},
        "reopen": {"reopened", "closed"},
        "flip": {"reopened", "closed"},
        "open": {"reopened"},  # a new life where the registry still holds an ended one
        "external_open": {"reopened"},
        "write": {"unknown"},
    },
    "DRIFT_SIZE": {
        "add": {"size_changed", "partial_fill"},
        "partial_close": {"size_changed"},
        "partial_liquidation": {"liquidated"},
        "partial_adl": {"adl"},
        "reopen": {"reopened"},
        "flip": {"reopened"},
        "open": {"reopened"},
        "external_open": {"reopened"},
        "write": {"size_changed", "unknown", "partial_fill"},
    },
    "DRIFT_SIDE": {
        "flip": {"reopened"},
        "reopen": {"reopened"},
        "open": {"reopened"},
        "external_open": {"reopened"},
        "write": {"unknown"},
    },
    "DRIFT_LEVER": {"*": {"leverage_changed"}},
}
# What a cause may be when the evidence of that cycle said nothing about the life.
WITHOUT_EVIDENCE = {
    "DRIFT_REMOVE": {"unknown"},
    "DRIFT_SIZE": {"size_changed", "unknown", "partial_fill"},
    "DRIFT_SIDE": {"unknown"},
}


@dataclass
class Registered:
    """The registry row as its writes left it."""

    pos: Decimal
    lever: Decimal | None
    life: Life | None


@dataclass
class Discrepancy:
    key: Key
    kind: str
    start_ms: int
    end_ms: int
    # What happened since the registry and the exchange last agreed (the whole episode,
    # across kinds), and the lives involved: each may explain what the reconciler saw.
    reasons: list[tuple[int, str]] = field(default_factory=list)
    lives: list[Life] = field(default_factory=list)
    registered_life: Life | None = None
    ended_by_heal: bool = False
    confirmed: list[DriftEvent] = field(default_factory=list)
    healed: list[DriftEvent] = field(default_factory=list)

    def reasons_until(self, moment_ms: int) -> list[str]:
        return [reason for at, reason in self.reasons if at <= moment_ms]


@dataclass
class Failure:
    kind: str  # false_confirmed | missed | wrong_cause | duplicate_confirmed | heal_loop
    detail: str


@dataclass
class Verdict:
    polls: int
    true_discrepancies: int
    failures: list[Failure]
    # Per real discrepancy confirmed: from its start to its first confirmation, and whether
    # a pushed change was one of the observations that confirmed it.
    delays_ms: list[int] = field(default_factory=list)
    by_push: int = 0

    def count(self, kind: str) -> int:
        return sum(1 for f in self.failures if f.kind == kind)


def kind_of(
    registered: Registered | None, held: Holding | None, lot: Decimal, net: bool
) -> str | None:
    registry_open = registered is not None and registered.pos != 0
    if held is not None and not registry_open:
        return "DRIFT_ADD"
    if held is None:
        return "DRIFT_REMOVE" if registry_open else None
    assert registered is not None
    if net and (registered.pos > 0) != (held.pos > 0):
        return "DRIFT_SIDE"
    gap = abs(registered.pos - held.pos) if net else abs(abs(registered.pos) - abs(held.pos))
    if gap * 2 >= lot:
        return "DRIFT_SIZE"
    if registered.life is not None and registered.life[1] != held.life[1]:
        return "DRIFT_REMOVE"  # the life the registry describes has ended
    if registered.lever is not None and registered.lever != held.lever:
        return "DRIFT_LEVER"
    return None


def _heal_beliefs(
    events: list[DriftEvent], skip: str | None = None
) -> dict[Key, list[tuple[int, Belief]]]:
    """posguard's own writes, as its `healed` events describe them (but `skip`)."""
    found: dict[Key, list[tuple[int, Belief]]] = {}
    for event in events:
        if event.status != "healed" or event.id == skip:
            continue
        wrote = event.evidence["heal"]["wrote"]
        c_time = wrote.get("cTime")
        life = (wrote.get("posId"), int(c_time)) if c_time is not None else None
        pos = Decimal(wrote["pos"])
        belief = Belief(
            pos=pos,
            lever=None if wrote.get("lever") is None else Decimal(wrote["lever"]),
            life=life if pos != 0 else None,
            recorded=life is not None,
        )
        found.setdefault(event.key, []).append((event.at_ms, belief))
    return found


def discrepancies(
    record: LifeRecord, events: list[DriftEvent], *, skip_heal: str | None = None
) -> list[Discrepancy]:
    """Every stretch of disagreement in the life (one per kind), with what caused it;
    `skip_heal` leaves one heal out (how long would it have lasted without it?)."""
    heals = _heal_beliefs(events, skip_heal)
    reasons: dict[tuple[Key, int], list[tuple[str, Life | None]]] = {}
    for change in record.changes:
        reasons.setdefault((change.key, change.at_ms), []).append((change.reason, change.life))
    found: list[Discrepancy] = []
    for key in record.holdings:
        bot = [(at, b, False) for at, b in record.beliefs.get(key, [])]
        writes = sorted(
            [*bot, *[(at, b, True) for at, b in heals.get(key, [])]], key=lambda w: w[0]
        )
        moments = sorted(
            {at for at, _ in record.holdings[key]} | {at for at, _, _ in writes} | {record.end_ms}
        )
        held: Holding | None = None
        registered: Registered | None = None
        holdings = iter(record.holdings[key])
        next_holding = next(holdings, None)
        pending_writes = iter(writes)
        next_write = next(pending_writes, None)
        current: Discrepancy | None = None
        episode: list[tuple[int, str]] = []
        episode_lives: list[Life] = []
        for moment in moments:
            exchange_moved = False
            healed_now = False
            while next_holding is not None and next_holding[0] <= moment:
                held = next_holding[1]
                exchange_moved = True
                next_holding = next(holdings, None)
            landed: list[Belief] = []
            while next_write is not None and next_write[0] <= moment:
                _, belief, by_heal = next_write
                landed.append(belief)
                healed_now = healed_now or by_heal
                # A bot's write keeps the stored lever when it gives none; a heal writes
                # every field (a compare-and-set of the whole row).
                lever = (
                    belief.lever
                    if belief.lever is not None or by_heal
                    else (registered.lever if registered is not None else None)
                )
                registered = Registered(belief.pos, lever, belief.life)
                next_write = next(pending_writes, None)
            kind = kind_of(registered, held, record.lots[key[0]], record.net and key[1] == "net")
            here = reasons.get((key, moment), [])
            why = [r.removesuffix("-side") for r, _ in here if r != "write"]
            if not why and not exchange_moved:
                why = ["write"]
            lives = [life for _, life in here if life is not None]
            wrote = bool(landed)
            if current is not None and (kind != current.kind or wrote or moment == record.end_ms):
                current.end_ms = moment
                current.ended_by_heal = healed_now
                found.append(current)
                current = None
            if kind is None:
                episode, episode_lives = [], []
                continue
            episode += [(moment, r) for r in why]
            episode_lives += lives
            if current is None and moment < record.end_ms:
                current = Discrepancy(
                    key,
                    kind,
                    moment,
                    record.end_ms,
                    episode,
                    episode_lives,
                    registered.life if registered is not None else None,
                )
    return found


def _clean(poll: Poll, key: Key, record: LifeRecord, grace_ms: int) -> bool:
    if not poll.observed or poll.exchange_ms != poll.at_ms or poll.truncated:
        return False
    if key[0] in (poll.dropped, poll.lever_blank):
        return False
    return not any(
        poll.at_ms - grace_ms <= at <= poll.done_ms for at, _ in record.beliefs.get(key, [])
    )


def _must_confirm_by(item: Discrepancy, record: LifeRecord, grace_ms: int) -> int | None:
    """The snapshot by which this discrepancy must have been confirmed, if any."""
    settings = record.settings
    interval = int(settings.confirm_interval_seconds * 1000)
    counted: list[int] = []
    for poll in record.polls:
        if not item.start_ms <= poll.at_ms < item.end_ms:
            continue
        if not _clean(poll, item.key, record, grace_ms):
            continue
        if counted and poll.at_ms - counted[-1] < interval:
            continue
        counted.append(poll.at_ms)
        if len(counted) == settings.confirm_after + 1:
            return poll.at_ms
    return None


def _evidence_held(poll: Poll, item: Discrepancy) -> bool:
    """Did this cycle's evidence say anything about the lives the discrepancy concerns?"""
    lives = {life[1] for life in item.lives}
    if item.registered_life is not None:
        lives.add(item.registered_life[1])
    if any(int(record["cTime"]) in lives for record in poll.history):
        return True
    if not lives or not poll.fills:
        return False
    first = min(lives)
    return any(
        int(fill["ts"]) >= first and fill["subType"] not in ("3", "4") for fill in poll.fills
    )


def _holding_at(record: LifeRecord, key: Key, moment_ms: int) -> Holding | None:
    held: Holding | None = None
    for at, holding in record.holdings[key]:
        if at > moment_ms:
            break
        held = holding
    return held


def _allowed(item: Discrepancy, poll: Poll, record: LifeRecord) -> set[str]:
    table = CAUSES_FOR[item.kind]
    allowed: set[str] = set(table.get("*", set()))
    happened = item.reasons_until(poll.done_ms)
    life = item.registered_life
    if life is not None and life[1] in record.endings and item.kind != "DRIFT_ADD":
        # How the life the registry describes ended explains the registry being wrong, and
        # so does a newer life on the key.
        happened.append(record.endings[life[1]])
        held = _holding_at(record, item.key, poll.exchange_ms)
        if held is not None and held.life[1] != life[1]:
            allowed.add("reopened")
    for reason in happened:
        allowed |= table.get(reason, set()) | CAUSES_FOR["DRIFT_REMOVE"].get(reason, set())
    if not _evidence_held(poll, item):
        allowed |= WITHOUT_EVIDENCE.get(item.kind, set())
    return allowed


def judge(record: LifeRecord, events: list[DriftEvent]) -> Verdict:
    grace_ms = int(record.settings.grace_seconds * 1000)
    found = discrepancies(record, events)
    heal_ids = {(e.key, e.at_ms): e.id for e in events if e.status == "healed"}
    lasting: dict[tuple[Key, str, int], bool] = {}

    def real(item: Discrepancy) -> bool:
        """Longer than the grace window; a heal that ended it early does not make it
        short: how long would it have lasted without that heal?"""
        if not item.ended_by_heal:
            return item.end_ms - item.start_ms > grace_ms
        marker = (item.key, item.kind, item.start_ms)
        if marker not in lasting:
            without = discrepancies(record, events, skip_heal=heal_ids.get((item.key, item.end_ms)))
            lasting[marker] = any(
                other.key == item.key
                and other.kind == item.kind
                and other.start_ms <= item.start_ms < other.end_ms
                and other.end_ms - other.start_ms > grace_ms
                for other in without
            )
        return lasting[marker]

    polls = {p.at_ms: p for p in record.polls}
    failures: list[Failure] = []
    by_key: dict[tuple[Key, str], list[Discrepancy]] = {}
    for item in found:
        by_key.setdefault((item.key, item.kind), []).append(item)
    for event in events:
        if event.status not in ("confirmed", "healed") or event.evidence.get("escalated"):
            continue
        poll = polls.get(event.at_ms)
        shown = poll.exchange_ms if poll is not None else event.at_ms
        match = next(
            (
                d
                for d in by_key.get((event.key, event.kind), [])
                if d.start_ms <= shown <= d.end_ms and real(d)
            ),
            None,
        )
        where = f"{event.inst_id} {event.pos_side} {event.mgn_mode} at {event.to_json()['at']}"
        if match is None:
            failures.append(
                Failure("false_confirmed", f"{event.kind} {event.status} {event.cause} {where}")
            )
            continue
        (match.confirmed if event.status == "confirmed" else match.healed).append(event)
        if event.status == "confirmed" and poll is not None:
            allowed = _allowed(match, poll, record)
            if event.cause not in allowed:
                failures.append(
                    Failure(
                        "wrong_cause",
                        f"{event.kind} {event.cause} {where}; the truth allows "
                        f"{', '.join(sorted(allowed))} (what happened: "
                        f"{', '.join(match.reasons_until(poll.done_ms))})",
                    )
                )
    real_ones = [d for d in found if real(d)]
    for item in real_ones:
        where = f"{item.kind} {' '.join(item.key)} from {item.start_ms} to {item.end_ms}"
        if len(item.confirmed) > 1:
            failures.append(Failure("duplicate_confirmed", f"{len(item.confirmed)} x {where}"))
        if len(item.healed) > 1:
            failures.append(Failure("heal_loop", f"{len(item.healed)} heals of {where}"))
        deadline = _must_confirm_by(item, record, grace_ms)
        if deadline is None:
            continue
        if not any(e.at_ms <= deadline for e in item.confirmed):
            happened = ", ".join(r for _, r in item.reasons)
            failures.append(Failure("missed", f"{where} not confirmed by {deadline} ({happened})"))
    confirmed = [d for d in real_ones if d.confirmed]
    delays = [min(e.at_ms for e in d.confirmed) - d.start_ms for d in confirmed]
    by_push = sum(1 for d in confirmed if "pushed" in d.confirmed[0].evidence)
    return Verdict(len(record.polls), len(real_ones), failures, delays, by_push)


def summary_of(failures: list[Failure]) -> dict[str, Any]:
    kinds = ("false_confirmed", "missed", "wrong_cause", "duplicate_confirmed", "heal_loop")
    return {kind: sum(1 for f in failures if f.kind == kind) for kind in kinds}
