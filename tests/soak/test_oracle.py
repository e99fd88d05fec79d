"""The soak's oracle on hand-made lives whose truth is known, apart from any engine run."""

from __future__ import annotations

from decimal import Decimal

from posguard.drift import DriftEvent, DriftSettings
from posguard.drift.model import Key
from posguard.soak.oracle import Verdict, discrepancies, judge
from posguard.soak.world import Belief, Change, Holding, LifeRecord, Poll

KEY: Key = ("XRP-USDT-SWAP", "net", "cross")
START = 1_766_188_800_000  # 2025-12-20T00:00:00Z
LIFE = ("900", START + 1_000)
NEW_LIFE = ("900", START + 200_000)


def s(seconds: float) -> int:
    return START + int(seconds * 1000)


def held(pos: str, life: tuple[str, int] = LIFE, lever: str = "5") -> Holding:
    return Holding(Decimal(pos), Decimal(lever), life)


def believed(pos: str, life: tuple[str, int] | None = LIFE) -> Belief:
    return Belief(Decimal(pos), None, life if Decimal(pos) != 0 else None, recorded=False)


def life(
    holdings: list[tuple[float, Holding | None]],
    beliefs: list[tuple[float, Belief]],
    changes: list[tuple[float, str]],
    polls: list[float],
    *,
    history: list[dict[str, str]] | None = None,
    endings: dict[int, str] | None = None,
) -> LifeRecord:
    return LifeRecord(
        seed=0,
        number=0,
        account="hand-made",
        settings=DriftSettings(),
        timeline={},
        end_ms=s(600),
        lots={KEY[0]: Decimal("0.1")},
        net=True,
        holdings={KEY: [(s(at), h) for at, h in holdings]},
        beliefs={KEY: [(s(at), b) for at, b in beliefs]},
        changes=[Change(s(at), KEY, why, LIFE) for at, why in changes],
        polls=[
            Poll(s(at), s(at) + 200, s(at), observed=True, history=list(history or []))
            for at in polls
        ],
        endings=endings or {},
    )


def event(at: float, kind: str, status: str, cause: str, **evidence: object) -> DriftEvent:
    return DriftEvent.make(
        s(at), "hand-made", KEY, kind, status, cause, dict(evidence), discrepancy=f"d{at}{kind}"
    )


def counts(verdict: Verdict) -> dict[str, int]:
    kinds = ("false_confirmed", "missed", "wrong_cause", "duplicate_confirmed", "heal_loop")
    return {k: verdict.count(k) for k in kinds if verdict.count(k)}


# A bot holds 108 XRP from 0:01; the venue liquidates it at 2:00; the bot never records it.
LIQUIDATED = life(
    holdings=[(1, held("108")), (120, None)],
    beliefs=[(1.3, believed("108"))],
    changes=[(1, "open"), (120, "liquidation")],
    polls=[30, 60, 90, 150, 180, 210, 240],
    history=[{"cTime": str(LIFE[1]), "type": "3"}],
    endings={LIFE[1]: "liquidation"},
)


def test_the_truth_of_a_liquidation_the_bot_never_recorded() -> None:
    found = discrepancies(LIQUIDATED, [])
    shapes = [(d.kind, d.start_ms, d.end_ms) for d in found]
    # The open lagged the write by 0.3 s (not real); the liquidation stays to the end.
    assert shapes == [("DRIFT_ADD", s(1), s(1.3)), ("DRIFT_REMOVE", s(120), s(600))]


def test_confirming_it_in_time_with_its_cause_is_right() -> None:
    verdict = judge(LIQUIDATED, [event(150, "DRIFT_REMOVE", "confirmed", "liquidated")])
    assert counts(verdict) == {}
    assert verdict.true_discrepancies == 1


def test_not_confirming_it_within_confirm_after_plus_one_clean_polls_is_missed() -> None:
    late = judge(LIQUIDATED, [event(240, "DRIFT_REMOVE", "confirmed", "liquidated")])
    assert counts(late) == {"missed": 1}
    assert counts(judge(LIQUIDATED, [])) == {"missed": 1}


def test_a_cause_the_truth_contradicts_is_wrong_and_unknown_needs_absent_evidence() -> None:
    assert counts(judge(LIQUIDATED, [event(150, "DRIFT_REMOVE", "confirmed", "adl")])) == {
        "wrong_cause": 1
    }
    assert counts(judge(LIQUIDATED, [event(150, "DRIFT_REMOVE", "confirmed", "unknown")])) == {
        "wrong_cause": 1
    }
    blind = life(
        holdings=[(1, held("108")), (120, None)],
        beliefs=[(1.3, believed("108"))],
        changes=[(1, "open"), (120, "liquidation")],
        polls=[30, 60, 90, 150, 180, 210, 240],
        history=[],  # this cycle's evidence said nothing about the life
    )
    assert counts(judge(blind, [event(150, "DRIFT_REMOVE", "confirmed", "unknown")])) == {}


def test_twice_confirmed_is_a_duplicate_and_twice_healed_a_loop() -> None:
    twice = [
        event(150, "DRIFT_REMOVE", "confirmed", "liquidated"),
        event(180, "DRIFT_REMOVE", "confirmed", "liquidated"),
    ]
    assert counts(judge(LIQUIDATED, twice)) == {"duplicate_confirmed": 1}
    escalated = [
        event(150, "DRIFT_REMOVE", "confirmed", "liquidated"),
        event(240, "DRIFT_REMOVE", "confirmed", "liquidated", escalated=True),
    ]
    assert counts(judge(LIQUIDATED, escalated)) == {}  # escalation is not a second alarm


def test_an_alarm_with_nothing_behind_it_is_false() -> None:
    quiet = life(
        holdings=[(1, held("108"))],
        beliefs=[(1.3, believed("108"))],
        changes=[(1, "open")],
        polls=[30, 60, 90],
    )
    verdict = judge(quiet, [event(60, "DRIFT_REMOVE", "confirmed", "unknown")])
    assert counts(verdict) == {"false_confirmed": 1}
    assert verdict.true_discrepancies == 0


def test_a_discrepancy_shorter_than_the_grace_window_is_not_real() -> None:
    # The bot closed at 2:00 and recorded it 2 s later: a snapshot at 2:01 saw a difference
    # that was the bot still writing, and confirming it is a false alarm.
    lagging = life(
        holdings=[(1, held("108")), (120, None)],
        beliefs=[(1.3, believed("108")), (122, believed("0"))],
        changes=[(1, "open"), (120, "close")],
        polls=[30, 60, 90, 121],
    )
    assert counts(judge(lagging, [event(121, "DRIFT_REMOVE", "confirmed", "closed")])) == {
        "false_confirmed": 1
    }


def test_a_registry_still_naming_an_ended_life_is_a_discrepancy_though_sizes_agree() -> None:
    # The bot missed both writes of a close and reopen of the same size.
    reopened = life(
        holdings=[(1, held("108")), (200, held("108", NEW_LIFE))],
        beliefs=[(1.3, believed("108"))],
        changes=[(1, "open"), (200, "reopen")],
        polls=[30, 230, 260, 290],
        endings={LIFE[1]: "reopen"},
    )
    found = [(d.kind, d.start_ms) for d in discrepancies(reopened, [])]
    assert ("DRIFT_REMOVE", s(200)) in found
    assert counts(judge(reopened, [event(230, "DRIFT_REMOVE", "confirmed", "reopened")])) == {}


def test_a_heal_that_ends_a_discrepancy_does_not_make_it_short() -> None:
    confirmed = event(150, "DRIFT_REMOVE", "confirmed", "liquidated")
    healed = DriftEvent.make(
        s(150),
        "hand-made",
        KEY,
        "DRIFT_REMOVE",
        "healed",
        "liquidated",
        {"heal": {"wrote": {"pos": "0", "lever": None, "posId": "900", "cTime": LIFE[1]}}},
        discrepancy="d150",
    )
    verdict = judge(LIQUIDATED, [confirmed, healed])
    assert counts(verdict) == {}
    found = discrepancies(LIQUIDATED, [confirmed, healed])
    assert found[-1].ended_by_heal
