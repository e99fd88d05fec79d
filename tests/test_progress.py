"""Progress of long commands: lines on stderr only, so `--json` stdout stays one object."""

from __future__ import annotations

import io
import json
from pathlib import Path

from typer.testing import CliRunner

from posguard.cli import app
from posguard.progress import Progress, progress_on_stderr
from posguard.registry import Registry, sqlite_url

runner = CliRunner()


def test_progress_reports_the_first_step_and_the_end_then_at_its_interval() -> None:
    stream = io.StringIO()
    with progress_on_stderr(stream):
        slow = Progress("rows", 4, interval=3600)
        for _ in range(4):
            slow.advance()
        every = Progress("pages", 3, interval=0)
        for done in (1, 2, 2, 3):
            every.update(done)
    lines = stream.getvalue().splitlines()
    assert [line.split(" after ")[0] for line in lines] == [
        "rows: 1/4 (25%)",
        "rows: 4/4 (100%)",
        "pages: 1/3 (33%)",
        "pages: 2/3 (66%)",
        "pages: 2/3 (66%)",
        "pages: 3/3 (100%)",
    ]


def test_progress_is_silent_unless_a_command_shows_it() -> None:
    stream = io.StringIO()
    with progress_on_stderr(stream):
        pass
    Progress("rows", 2, interval=0).update(2)  # no handler now: nothing printed, no error
    assert stream.getvalue() == ""


def test_registry_import_shows_progress_on_stderr_and_json_on_stdout(tmp_path: Path) -> None:
    source = tmp_path / "positions.json"
    rows = [
        {"account": "main", "instId": f"SYN{n:06d}-USDT-SWAP", "pos": "10", "lever": "5"}
        for n in range(1_200)
    ]
    rows.append({**rows[0], "pos": "11"})  # a key twice: the last row wins
    source.write_text(json.dumps(rows))
    url = sqlite_url(tmp_path / "r.db")
    result = runner.invoke(app, ["registry", "import", str(source), "--url", url, "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"imported": 1_201, "source": str(source)}
    assert "positions written: 1200/1200 (100%)" in result.stderr
    assert "positions written" not in result.stdout
    with Registry(url) as registry:
        first = [r for r in registry.rows("main") if r["inst_id"] == "SYN000000-USDT-SWAP"]
    assert [(r["pos"], r["version"]) for r in first] == [("11", 1)]
