"""`posguard status` over a real SQLite registry that replayed timelines and recorded runs."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from expectations.report import FailingRow, RuleResult, ValidationReport
from posguard.cli import app
from posguard.cli.status_cmd import age_text
from posguard.drift import EngineMemory
from posguard.registry import Registry, sqlite_url
from posguard.stages.replay import replay, timeline_from
from posguard.status import last_cycle, status

TIMELINE = Path(__file__).resolve().parent / "timelines" / "confirmation-needs-time.json"
FIRST_SEEN_MS = 1766188860000  # 2025-12-20T00:01:00Z: ADA-USDT-SWAP appears on the exchange
runner = CliRunner()


def replay_into(url: str, account: str, steps: int | None = None) -> None:
    """The timeline's ADA-USDT-SWAP that the registry does not know: confirmed as external
    after its fourth step (`posguard replay`), still suspected after its first."""
    document = json.loads(TIMELINE.read_text())
    document["account"] = account
    document["steps"] = document["steps"][:steps]
    list(replay(timeline_from(document, TIMELINE.name), registry_url=url))


def reconcile_summary() -> dict[str, object]:
    """What flows/reconcile.py records after a cycle that observed the account."""
    report = ValidationReport(
        success=False,
        results=[
            RuleResult("expect_lever_positive", "positions", True),
            RuleResult(
                "expect_notional_matches_okx",
                "positions",
                False,
                [FailingRow("ADA-USDT-SWAP", "net", "cross", "notionalUsd 5790 vs 579.0")],
            ),
        ],
    )
    return {
        "account": "main",
        "open_positions": [
            {
                "instId": "ADA-USDT-SWAP",
                "posSide": "net",
                "mgnMode": "cross",
                "pos": 30.0,
                "notional": 579.0,
                "lever": 5.0,
                "lever_source": "position",
            }
        ],
        "expectations": report.to_json(),
        "skipped": None,
    }


@pytest.fixture
def registry_url(tmp_path: Path) -> str:
    url = sqlite_url(tmp_path / "registry.db")
    replayed = runner.invoke(app, ["replay", str(TIMELINE), "--registry", url])
    assert replayed.exit_code == 0, replayed.output  # the timeline's account is main
    replay_into(url, "desk", steps=1)
    with Registry(url) as registry:
        registry.start_run("run-1", "main", "reconcile-positions")
        registry.finish_run("run-1", "completed", reconcile_summary())
        registry.start_run("run-2", "main", "reconcile-positions")
        registry.finish_run(
            "run-2", "not_observed", {"not_observed": "GET /api/v5/account/positions: timeout"}
        )
        registry.record_leverage_change(
            account="main",
            inst_id="ADA-USDT-SWAP",
            mgn_mode="cross",
            pos_side="net",
            from_lever="5",
            to_lever="3",
            outcome="applied",
            at_ms=FIRST_SEEN_MS + 120_000,
        )
    return url


@pytest.fixture
def config(tmp_path: Path, registry_url: str) -> Path:
    path = tmp_path / "posguard.toml"
    accounts = "".join(
        f'[accounts.{name}]\napi_key = "k-{name}"\nsecret_key = "not-shown"\npassphrase = "p"\n\n'
        for name in ("main", "desk")
    )
    path.write_text(f'registry_url = "{registry_url}"\n\n{accounts}')
    return path


def test_each_account_reads_what_the_registry_holds(registry_url: str) -> None:
    with Registry(registry_url) as registry:
        document = status(registry, ["main", "desk"], now_ms=FIRST_SEEN_MS + 150_000)
    main, desk = document["accounts"]
    assert [(d["instId"], d["kind"], d["status"], d["cause"]) for d in main["discrepancies"]] == [
        ("ADA-USDT-SWAP", "DRIFT_ADD", "confirmed", "external")
    ]
    assert main["discrepancies"][0]["age_seconds"] == 150.0
    assert main["discrepancies"][0]["observations"] == 2
    assert [(d["instId"], d["status"], d["cause"]) for d in desk["discrepancies"]] == [
        ("ADA-USDT-SWAP", "suspected", "unknown")
    ]
    # The last run observed nothing: said, with why; the failing rows are the last run's
    # that evaluated expectations.
    cycle = main["last_cycle"]
    assert (cycle["run"]["id"], cycle["observed"]) == ("run-2", False)
    assert cycle["why"] == "GET /api/v5/account/positions: timeout"
    assert cycle["last_observed_snapshot"] == "2025-12-20T00:01:30.000Z"
    assert main["expectations"]["run"] == "run-1"
    assert [(f["expectation"], f["instId"]) for f in main["expectations"]["failing"]] == [
        ("expect_notional_matches_okx", "ADA-USDT-SWAP")
    ]
    assert main["positions"]["rows"][0]["notional"] == 579.0
    assert [(a["instId"], a["status"], a["cause"]) for a in main["alerts"]] == [
        ("ADA-USDT-SWAP", "confirmed", "external")
    ]
    change = main["leverage_change"]
    assert (change["from_lever"], change["to_lever"], change["outcome"]) == ("5", "3", "applied")
    # Nothing recorded is None, never a guess.
    assert desk["last_cycle"]["run"] is None
    assert desk["last_cycle"]["observed"] is None
    assert desk["expectations"] is None
    assert desk["leverage_plan"] is None
    assert desk["leverage_change"] is None
    assert desk["alerts"] == []


def test_text_has_one_block_per_account(config: Path) -> None:
    result = runner.invoke(app, ["status", "--config", str(config)])
    assert result.exit_code == 0, result.output
    out = result.output
    assert out.index("account desk") < out.index("account main")
    main = out[out.index("account main") :]
    assert "run run-2 not_observed, NOT observed: GET /api/v5/account/positions: timeout" in main
    assert re.search(
        r"ADA-USDT-SWAP\s+net\s+cross\s+DRIFT_ADD\s+confirmed\s+external\s+age \d+d\d\dh", main
    )
    assert re.search(r"ADA-USDT-SWAP .*expect_notional_matches_okx: notionalUsd 5790", main)
    assert "5 -> 3 applied" in main
    desk = out[out.index("account desk") : out.index("account main")]
    assert "last cycle: not recorded (no reconcile run in the registry)" in desk
    assert re.search(r"DRIFT_ADD\s+suspected\s+unknown", desk)
    assert "failing expectations: not recorded" in desk
    assert "last leverage change: none recorded" in desk
    assert "not-shown" not in out
    assert "k-main" not in out


def test_json_is_one_object_for_the_asked_account(config: Path) -> None:
    result = runner.invoke(app, ["status", "--config", str(config), "--account", "desk", "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert [a["account"] for a in document["accounts"]] == ["desk"]
    (pending,) = document["accounts"][0]["discrepancies"]
    assert (pending["instId"], pending["kind"], pending["status"]) == (
        "ADA-USDT-SWAP",
        "DRIFT_ADD",
        "suspected",
    )
    assert pending["first_seen"] == "2025-12-20T00:01:00.000Z"
    assert pending["age_seconds"] > 300 * 86400  # measured from now, on the wall clock


def test_an_unknown_account_or_config_is_one_line_and_status_2(
    config: Path, tmp_path: Path
) -> None:
    result = runner.invoke(app, ["status", "--config", str(config), "--account", "nope"])
    assert result.exit_code == 2
    assert result.output.startswith("error: account 'nope' is not configured (configured: desk")
    assert len(result.output.strip().splitlines()) == 1
    missing = runner.invoke(app, ["status", "--config", str(tmp_path / "absent.toml")])
    assert missing.exit_code == 2
    assert missing.output.startswith("error: ")
    # A registry path with a typo is said, not created empty and reported as "nothing".
    typo = tmp_path / "typo.toml"
    typo.write_text(config.read_text().replace("registry.db", "nowhere/registry.db"))
    result = runner.invoke(app, ["status", "--config", str(typo)])
    assert result.exit_code == 2
    assert "nowhere/registry.db does not exist" in result.output
    assert not (tmp_path / "nowhere").exists()


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (59.9, "59s"), (65, "1m05s"), (7800, "2h10m"), (1_047_600, "12d03h")],
)
def test_ages_are_compact(seconds: float, text: str) -> None:
    assert age_text(seconds) == text


def test_a_cycle_the_engine_skipped_is_not_observed_and_says_why() -> None:
    run = {
        "id": "run-3",
        "status": "completed",
        "started_at_ms": FIRST_SEEN_MS,
        "finished_at_ms": FIRST_SEEN_MS + 1000,
        "summary": json.dumps({"skipped": "positions call failed (50001)"}),
    }
    cycle = last_cycle(EngineMemory(last_snapshot_ms=FIRST_SEEN_MS - 30_000), None, run)
    assert (cycle["observed"], cycle["why"]) == (False, "positions call failed (50001)")
    assert cycle["last_observed_snapshot"] == "2025-12-20T00:00:30.000Z"
    running = last_cycle(EngineMemory(), None, {**run, "status": "running", "summary": None})
    assert (running["observed"], running["why"]) == (None, "run running")
