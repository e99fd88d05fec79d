"""`posguard replay` over timeline files: exact output, identical twice, clear errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from posguard.cli import app
from tests.drift.builders import position, registry_row, sync, timeline

TIMELINES = Path(__file__).resolve().parents[1] / "timelines"
runner = CliRunner()


def replay_json(path: Path) -> tuple[int, list[dict[str, Any]], str]:
    result = runner.invoke(app, ["replay", str(path), "--json"])
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    return result.exit_code, lines, result.stderr


def test_incident_timeline_file() -> None:
    code, events, _ = replay_json(TIMELINES / "incident-xrp-flap.json")
    assert code == 0
    assert [(e["at"], e["instId"], e["kind"], e["status"], e["cause"]) for e in events] == [
        ("2025-12-20T00:02:27.000Z", "XRP-USDT-SWAP", "DRIFT_REMOVE", "suspected", "unknown"),
        ("2025-12-20T00:02:58.000Z", "XRP-USDT-SWAP", "DRIFT_REMOVE", "resolved", "spurious"),
    ]
    for event in events:
        assert {
            "at",
            "account",
            "instId",
            "posSide",
            "mgnMode",
            "kind",
            "status",
            "cause",
            "id",
            "evidence",
        } <= set(event)


@pytest.mark.parametrize("path", sorted(TIMELINES.glob("*.json")), ids=lambda p: p.stem)
def test_every_timeline_replays_identically_twice(path: Path) -> None:
    first = runner.invoke(app, ["replay", str(path), "--json"])
    second = runner.invoke(app, ["replay", str(path), "--json"])
    assert first.exit_code == second.exit_code == 0
    assert first.stdout == second.stdout


def test_failed_calls_say_so_on_stderr() -> None:
    code, events, stderr = replay_json(TIMELINES / "failed-positions-call.json")
    assert code == 0
    assert events == []
    assert "step 0" in stderr
    assert "no conclusion for account main" in stderr


def test_liquidation_file() -> None:
    _, events, _ = replay_json(TIMELINES / "liquidation-type3.json")
    assert [(e["kind"], e["status"], e["cause"]) for e in events] == [
        ("DRIFT_REMOVE", "confirmed", "liquidated")
    ]


def test_table_output() -> None:
    result = runner.invoke(app, ["replay", str(TIMELINES / "reopened-new-ctime.json")])
    assert result.exit_code == 0
    assert "reopened" in result.stdout


def write(tmp_path: Path, document: object) -> Path:
    path = tmp_path / "timeline.json"
    path.write_text(json.dumps(document))
    return path


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (
            lambda d: d["steps"].append({"at": "2025-12-20T00:05:00.000Z"}),
            "step 1: needs exactly one of 'sync' or 'registry_write'",
        ),
        (lambda d: d["steps"][0].pop("at"), "step 0: 'at' must be"),
        (
            lambda d: d["steps"][0]["sync"].update(positions={"data": []}),
            "step 0 (sync): member 'positions' must be an OKX envelope",
        ),
        (
            lambda d: d["steps"][0]["sync"]["positions"]["data"][0].update(lever="5x"),
            "step 0 (sync): member 'positions': positions: field 'lever'",
        ),
        (
            lambda d: d["steps"].append(
                {"at": "2025-12-20T00:05:00.000Z", "registry_write": {"instId": "XRP-USDT-SWAP"}}
            ),
            "step 1 (registry_write): member 'pos' is required",
        ),
        (lambda d: d.update(settings={"confirm": 3}), "settings confirm unknown"),
        (lambda d: d.update(settings={"confirm_after": 0}), "confirm_after must be at least 1"),
    ],
)
def test_invalid_timelines_exit_2_naming_step_and_member(
    tmp_path: Path, mutate: Any, expected: str
) -> None:
    document = timeline([sync(0, [position()])], registry=[registry_row()])
    mutate(document)
    result = runner.invoke(app, ["replay", str(write(tmp_path, document)), "--json"])
    assert result.exit_code == 2
    assert expected in result.stderr
    assert "Traceback" not in result.output


def test_unreadable_timeline(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    path.write_text("{")
    result = runner.invoke(app, ["replay", str(path)])
    assert result.exit_code == 2
    assert "not valid JSON" in result.stderr


@pytest.mark.parametrize(
    "text", ["[" * 100_000 + "]" * 100_000, '{"account": "main", "steps": [' + "9" * 5000 + "]}"]
)
def test_unreadable_json_is_a_clear_error_not_a_traceback(tmp_path: Path, text: str) -> None:
    path = tmp_path / "timeline.json"
    path.write_text(text)
    result = runner.invoke(app, ["replay", str(path)])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert "timeline.json" in result.stderr
