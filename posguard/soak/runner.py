"""`posguard soak`: many lives through the real reconciliation path, judged by the oracle.

Each life is played on the simulator (`world`), written as a replay timeline, replayed
through `posguard.stages.replay` (the frames parser, `run_cycle`, the registry: the code path of
the scheduled flow) and judged against the simulator's truth (`oracle`). A failing life's
timeline is written out: `posguard replay` reproduces it exactly.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import statistics
import tempfile
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from posguard.drift.model import DriftEvent, DriftSettings, HealPolicy
from posguard.errors import PosguardError
from posguard.registry import sqlite_url
from posguard.soak.oracle import Failure, judge
from posguard.soak.world import LifeRecord, Shape, Trouble, World
from posguard.stages.replay import replay, timeline_from

COUNTS = (
    "false_confirmed",
    "missed",
    "wrong_cause",
    "duplicate_confirmed",
    "heal_loops",
    "unhandled",
)
_KIND_TO_COUNT = {"heal_loop": "heal_loops"}


@dataclass(frozen=True)
class SoakPlan:
    lives: int
    seed: int
    policy: HealPolicy = "report"
    registry_url: str | None = None
    faults: bool = True
    minutes: float = 15.0
    workers: int = 2
    stream: bool = True  # on-change runs given the pushed changes, beside the schedule
    # [drift] grace_seconds: what the oracle calls real (longer than the window) and how
    # stale an answer may be follow it.
    grace_seconds: float = DriftSettings.grace_seconds

    def settings(self) -> DriftSettings:
        return DriftSettings(heal=self.policy, grace_seconds=self.grace_seconds)


@dataclass
class LifeOutcome:
    number: int
    polls: int
    true_discrepancies: int
    counts: dict[str, int]
    failures: list[Failure]
    timeline: dict[str, Any] | None  # kept only when the life failed
    delays_ms: list[int] = field(default_factory=list)
    by_push: int = 0


@dataclass
class SoakResult:
    plan: SoakPlan
    outcomes: list[LifeOutcome] = field(default_factory=list)
    seconds: float = 0.0
    written: dict[int, str] = field(default_factory=dict)

    def total(self, name: str) -> int:
        return sum(o.counts.get(name, 0) for o in self.outcomes)

    def to_json(self) -> dict[str, Any]:
        failures = [
            {
                "seed": self.plan.seed,
                "life": o.number,
                "kind": f.kind,
                "detail": f.detail,
                "timeline": self.written.get(o.number),
            }
            for o in self.outcomes
            for f in o.failures
        ]
        delays = sorted(d for o in self.outcomes for d in o.delays_ms)
        return {
            "lives": len(self.outcomes),
            "grace_seconds": self.plan.grace_seconds,
            "polls": sum(o.polls for o in self.outcomes),
            "true_discrepancies": sum(o.true_discrepancies for o in self.outcomes),
            **{name: self.total(name) for name in COUNTS},
            # How soon real discrepancies were confirmed, from when they began (seconds).
            "confirmed_after_seconds": {
                "median": round(statistics.median(delays) / 1000, 2) if delays else None,
                "p90": round(delays[int(0.9 * (len(delays) - 1))] / 1000, 2) if delays else None,
            },
            "confirmed_with_a_push": sum(o.by_push for o in self.outcomes),
            "seconds": round(self.seconds, 2),
            "failures": failures,
        }

    @property
    def clean(self) -> bool:
        return all(self.total(name) == 0 for name in COUNTS)


def play(plan: SoakPlan, number: int) -> LifeRecord:
    trouble = Trouble() if plan.faults else Trouble.none()
    world = World(
        plan.seed,
        number,
        settings=plan.settings(),
        trouble=trouble,
        shape=Shape(minutes=plan.minutes, stream=plan.stream),
    )
    return world.play()


def run_life(plan: SoakPlan, number: int, registry_url: str) -> LifeOutcome:
    """Play, replay and judge one life; nothing escapes as an exception."""
    record: LifeRecord | None = None
    try:
        record = play(plan, number)
        timeline = timeline_from(record.timeline, f"life {number}")
        events: list[DriftEvent] = list(replay(timeline, registry_url=registry_url))
        verdict = judge(record, events)
    except Exception as exc:  # the soak counts what escapes instead of stopping
        where = traceback.extract_tb(exc.__traceback__)[-1]
        handled = isinstance(exc, PosguardError)
        detail = f"{type(exc).__name__}: {exc} ({where.filename.rsplit('/', 1)[-1]}:{where.lineno})"
        failure = Failure("unhandled", ("posguard error " if handled else "") + detail)
        return LifeOutcome(
            number,
            len(record.polls) if record else 0,
            0,
            {"unhandled": 1},
            [failure],
            record.timeline if record else None,
        )
    counts: dict[str, int] = {}
    for failure in verdict.failures:
        name = _KIND_TO_COUNT.get(failure.kind, failure.kind)
        counts[name] = counts.get(name, 0) + 1
    return LifeOutcome(
        number,
        verdict.polls,
        verdict.true_discrepancies,
        counts,
        verdict.failures,
        record.timeline if verdict.failures else None,
        verdict.delays_ms,
        verdict.by_push,
    )


def _worker(plan: SoakPlan, numbers: list[int], queue: Any) -> None:
    # This process exists for the soak: the cycles it replays fail on purpose, and their
    # warnings are the exercise, not news (the parent's logging does not reach a spawn).
    logging.getLogger("posguard").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory(prefix="posguard-soak-") as folder:
        url = plan.registry_url or sqlite_url(Path(folder) / "registry.db")
        for number in numbers:
            queue.put(run_life(plan, number, url))
    queue.put(None)


def run_soak(
    plan: SoakPlan,
    *,
    out: Path | None = None,
    progress: Callable[[int, int], None] = lambda _done, _total: None,
) -> SoakResult:
    """Run every life of the plan, in `plan.workers` processes."""
    started = time.perf_counter()
    result = SoakResult(plan)
    numbers = list(range(plan.lives))
    workers = max(1, min(plan.workers, plan.lives))
    if workers == 1:
        with tempfile.TemporaryDirectory(prefix="posguard-soak-") as folder:
            url = plan.registry_url or sqlite_url(Path(folder) / "registry.db")
            for number in numbers:
                result.outcomes.append(run_life(plan, number, url))
                progress(len(result.outcomes), plan.lives)
    else:
        context = multiprocessing.get_context("spawn")
        queue = context.Queue()
        shares = [numbers[i::workers] for i in range(workers)]
        processes = [context.Process(target=_worker, args=(plan, share, queue)) for share in shares]
        for process in processes:
            process.start()
        finished = 0
        while finished < workers:
            outcome = queue.get()
            if outcome is None:
                finished += 1
                continue
            result.outcomes.append(outcome)
            progress(len(result.outcomes), plan.lives)
        for process in processes:
            process.join()
    result.outcomes.sort(key=lambda o: o.number)
    result.seconds = time.perf_counter() - started
    if out is not None:
        result.written = write_failures(result.outcomes, out, plan)
    return result


def write_failures(outcomes: Iterable[LifeOutcome], out: Path, plan: SoakPlan) -> dict[int, str]:
    written: dict[int, str] = {}
    for outcome in outcomes:
        if outcome.timeline is None:
            continue
        out.mkdir(parents=True, exist_ok=True)
        path = out / f"soak-{plan.seed}-{outcome.number}-{plan.policy}.json"
        document = {
            **outcome.timeline,
            "soak": {
                **outcome.timeline.get("soak", {}),
                "failures": [{"kind": f.kind, "detail": f.detail} for f in outcome.failures],
            },
        }
        path.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
        written[outcome.number] = str(path)
    return written
