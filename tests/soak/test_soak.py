"""The soak, small: fixed seeds through the real path, every count zero; the command's shape;
a written life replays to the same events."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from posguard.cli import app
from posguard.soak import SoakPlan, run_soak
from posguard.soak.runner import COUNTS, LifeOutcome, play, write_failures
from posguard.stages.replay import load_timeline, replay

runner = CliRunner()


@pytest.mark.parametrize("policy", ["report", "heal"])
def test_a_few_dozen_lives_have_no_false_missed_or_doubled_alarm(policy: str) -> None:
    result = run_soak(SoakPlan(lives=24, seed=20251220, policy=policy, workers=1))  # type: ignore[arg-type]
    summary = result.to_json()
    assert summary["lives"] == 24
    assert summary["true_discrepancies"] > 24  # the lives do produce real drift to find
    assert {name: summary[name] for name in COUNTS} == dict.fromkeys(COUNTS, 0), summary["failures"]
    assert summary["confirmed_with_a_push"] > 0  # the on-change runs were given the pushes


def test_the_stream_confirms_sooner_than_the_schedule_alone() -> None:
    """The same lives with and without OKX's stream: on-change runs given the pushed changes
    confirm real drift seconds after it began instead of a poll or two later."""
    delays = {}
    for stream in (True, False):
        plan = SoakPlan(lives=8, seed=20251220, workers=1, stream=stream)
        summary = run_soak(plan).to_json()
        assert {name: summary[name] for name in COUNTS} == dict.fromkeys(COUNTS, 0)
        delays[stream] = summary["confirmed_after_seconds"]["median"]
    assert delays[True] < 10 < delays[False], delays


def test_a_shorter_grace_window_keeps_every_count_zero_and_confirms_sooner(
    tmp_path: Path,
) -> None:
    """The demo's window (3 s) against posguard's default (5 s) on the same lives: the engine
    waits out the window it is given, no more, and what is real follows the window."""
    summaries = {}
    for grace in ("3", "5"):
        result = runner.invoke(
            app,
            [
                *("soak", "--lives", "8", "--seed", "20251220", "--workers", "1", "--json"),
                *("--grace", grace, "--out", str(tmp_path)),
            ],
        )
        assert result.exit_code == 0, result.output
        summaries[grace] = json.loads(result.stdout)
        assert summaries[grace]["grace_seconds"] == float(grace)
    fast, slow = summaries["3"], summaries["5"]
    assert fast["confirmed_after_seconds"]["median"] < slow["confirmed_after_seconds"]["median"]
    assert runner.invoke(app, ["soak", "--grace", "0.5"]).exit_code == 2  # below the 1 s floor


def test_lives_are_reproducible_from_their_seed() -> None:
    plan = SoakPlan(lives=1, seed=7)
    assert play(plan, 3).timeline == play(plan, 3).timeline
    assert play(plan, 3).timeline != play(plan, 4).timeline


def test_a_written_life_replays_to_the_events_the_soak_judged(tmp_path: Path) -> None:
    plan = SoakPlan(lives=1, seed=11)
    record = play(plan, 0)
    outcome = LifeOutcome(0, len(record.polls), 0, {}, [], record.timeline)
    written = write_failures([outcome], tmp_path, plan)
    path = Path(written[0])
    first = [e.to_json() for e in replay(load_timeline(path))]
    second = [e.to_json() for e in replay(load_timeline(path))]
    assert first == second
    assert first  # a life with no event would prove nothing here


def test_the_command_prints_one_json_object_and_exits_by_the_counts(tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        ["soak", "--lives", "2", "--seed", "3", "--workers", "1", "--json", "--out", str(tmp_path)],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert set(summary) == {
        "lives",
        "grace_seconds",
        "polls",
        "true_discrepancies",
        *COUNTS,
        "seconds",
        "failures",
        "confirmed_after_seconds",
        "confirmed_with_a_push",
    }
    assert summary["lives"] == 2
    assert summary["grace_seconds"] == 5.0  # posguard's default
    assert summary["polls"] > 40
    assert "lives" in result.stderr  # the progress bar goes to stderr


def test_bad_arguments_exit_2() -> None:
    assert runner.invoke(app, ["soak", "--lives", "0"]).exit_code == 2
    assert runner.invoke(app, ["soak", "--policy", "fix"]).exit_code == 2
