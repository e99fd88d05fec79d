"""Replay treats a code "0" answer without a data array as the client does: a failed call."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from posguard.cli import app
from posguard.stages.replay import replay, timeline_from
from tests.drift.builders import registry_row, sync, timeline

runner = CliRunner()

WITHOUT_DATA: list[dict[str, Any]] = [
    {"code": "0", "msg": ""},
    {"code": "0", "msg": "", "data": None},
    {"code": "0", "msg": "", "data": {}},
    {"code": "0", "msg": "", "data": "[]"},
]


def no_data(seconds: float, member: str, answer: dict[str, Any]) -> dict[str, Any]:
    step = sync(seconds, [])
    step["sync"][member] = answer
    return step


@pytest.mark.parametrize("answer", WITHOUT_DATA, ids=["absent", "null", "object", "string"])
@pytest.mark.parametrize("member", ["positions", "positions_history", "fills"])
def test_two_answers_without_data_confirm_nothing(member: str, answer: dict[str, Any]) -> None:
    # Read as "no positions", two such cycles would confirm a DRIFT_REMOVE of the XRP row.
    skipped: list[str] = []
    document = timeline(
        [no_data(0, member, answer), no_data(30, member, answer)],
        registry=[registry_row()],
        heal="heal",
    )
    events = list(replay(timeline_from(document, "test timeline"), on_skip=skipped.append))
    assert events == []
    assert len(skipped) == 2
    assert "no conclusion for account main" in skipped[0]
    assert member in skipped[0]
    assert "malformed answer" in skipped[0]


def test_the_cli_reports_it_on_stderr_and_exits_0(tmp_path: Path) -> None:
    path = tmp_path / "timeline.json"
    path.write_text(
        json.dumps(timeline([no_data(0, "positions", WITHOUT_DATA[0])], registry=[registry_row()]))
    )
    result = runner.invoke(app, ["replay", str(path), "--json"])
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert "step 0" in result.stderr
    assert "positions answered code 0 with no 'data' member" in result.stderr
