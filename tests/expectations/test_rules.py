"""Every declared rule can fail, names the rows that break it, and its GX expectations and its
pandas mask agree; the suites hold exactly the declared rules.

Adding a rule to expectations/rules.py means adding its breaking case here (the test that the
two tables name the same rules fails until then).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from expectations.report import RuleResult
from expectations.rules import RULES, rule_result
from expectations.runner import ALLOWED_POS_SIDES, ExpectationsRunner, shared_runner
from expectations.suites import suite
from posguard.frames import parse_instruments, parse_leverage_info, parse_positions
from posguard.frames.contract import instruments_frame, positions_frame
from posguard.leverage import resolve_leverage
from posguard.okx.saved import load_records
from tests.conftest import SAMPLES
from tests.helpers import xrp_position as position

INSTRUMENTS = parse_instruments(load_records(SAMPLES / "instruments_swap_ccxt_markets_info.json"))
Record = dict[str, str]


def _spec(inst_id: str, **fields: Any) -> pd.DataFrame:
    """The instruments with one spec changed."""
    changed = INSTRUMENTS.copy()
    for name, value in fields.items():
        changed[name] = changed[name].astype(object)
        changed.loc[changed["instId"] == inst_id, name] = value
    return changed


# A way to break each position rule: the positions (one per row) and, where the rule is about
# the instrument behind a position, the instruments. The broken row is always the first.
POSITION_CASES: dict[str, tuple[list[Record], pd.DataFrame]] = {
    "lever > 0": ([position(lever="")], INSTRUMENTS),
    "lever <= instrument max lever": ([position(lever="75")], INSTRUMENTS),
    "ctVal and ctMult known": ([position()], _spec("XRP-USDT-SWAP", ctMult=None)),
    "notional consistent with ctVal": ([position(notionalUsd="30000")], INSTRUMENTS),
    "contracts used as coins": ([position(notionalUsd="208.44")], INSTRUMENTS),
    "instId present in instruments": ([position(instId="NEW-USDT-SWAP")], INSTRUMENTS),
    "posSide in {long, short, net}": ([position(posSide="both")], INSTRUMENTS),
    "posSide consistent with posMode": ([position(posSide="long")], INSTRUMENTS),
    "mgnMode in {cross, isolated}": ([position(mgnMode="portfolio")], INSTRUMENTS),
    "markPx > 0 on open positions": ([position(markPx="0")], INSTRUMENTS),
    "avgPx > 0 on open positions": ([position(avgPx="")], INSTRUMENTS),
    "liqPx on the losing side of markPx": ([position(liqPx="2.5")], INSTRUMENTS),
    "(instId, posSide, mgnMode) unique": ([position(), position()], INSTRUMENTS),
    "pos a multiple of lotSz": ([position(pos="108.05")], INSTRUMENTS),
}

# A way to break each instrument rule (XRP-USDT-SWAP's spec changed).
INSTRUMENT_CASES: dict[str, Callable[[], pd.DataFrame]] = {
    "ctVal > 0": lambda: _spec("XRP-USDT-SWAP", ctVal=0.0),
    "ctMult > 0": lambda: _spec("XRP-USDT-SWAP", ctMult=None),
    "ctType in {linear, inverse}": lambda: _spec("XRP-USDT-SWAP", ctType="quanto"),
    "lotSz > 0": lambda: _spec("XRP-USDT-SWAP", lotSz=-1.0),
    "minSz > 0": lambda: _spec("XRP-USDT-SWAP", minSz=None),
    "tickSz > 0": lambda: _spec("XRP-USDT-SWAP", tickSz=0.0),
    "max lever >= 1": lambda: _spec("XRP-USDT-SWAP", maxLever=0.5),
    "state known": lambda: _spec("XRP-USDT-SWAP", state="halted"),
    "instId unique": lambda: pd.concat(
        [INSTRUMENTS, INSTRUMENTS[INSTRUMENTS["instId"] == "XRP-USDT-SWAP"]], ignore_index=True
    ),
}

PARAMETERS = {"notional_tolerance": 0.01, "allowed_pos_sides": ALLOWED_POS_SIDES["net_mode"]}


@pytest.fixture(scope="module")
def runner() -> ExpectationsRunner:
    return shared_runner()


def by_name(results: list[RuleResult]) -> dict[str, list[tuple[str, str]]]:
    return {r.expectation: [(f.inst_id, f.detail) for f in r.failing] for r in results}


def test_every_declared_rule_has_a_breaking_case_and_the_suites_hold_exactly_them() -> None:
    assert set(POSITION_CASES) == set(RULES["positions"])
    assert set(INSTRUMENT_CASES) == set(RULES["instruments"])
    for which, rules in RULES.items():
        tagged = {e.meta["rule"] for e in suite(which).expectations if e.meta}
        assert tagged == set(rules)
        assert all(e.meta for e in suite(which).expectations)


def test_a_clean_snapshot_passes_every_rule_by_gx_and_by_the_masks(
    runner: ExpectationsRunner,
) -> None:
    positions = positions_frame(
        resolve_leverage(parse_positions([position()]), parse_leverage_info([])), INSTRUMENTS
    )
    instruments = instruments_frame(INSTRUMENTS)
    report = runner.validate(positions, instruments, pos_mode="net_mode")
    assert report.success, [r.to_dict() for r in report.failed]
    assert {r.expectation for r in report.results} == set(RULES["positions"]) | set(
        RULES["instruments"]
    )
    for name, rule in RULES["positions"].items():
        assert rule_result(rule, "positions", positions, PARAMETERS).success, name
    for name, rule in RULES["instruments"].items():
        assert rule_result(rule, "instruments", instruments, PARAMETERS).success, name


@pytest.mark.parametrize("name", list(POSITION_CASES))
def test_each_position_rule_fails_on_its_case_by_gx_and_by_its_mask(
    runner: ExpectationsRunner, name: str
) -> None:
    records, specs = POSITION_CASES[name]
    positions = positions_frame(
        resolve_leverage(parse_positions(records), parse_leverage_info([])), specs
    )
    report = runner.validate(positions, None, pos_mode="net_mode")
    gx = by_name(report.results)[name]
    assert gx, f"GX did not fail {name!r}"
    assert gx[0][0] == records[0]["instId"]
    assert all(detail for _, detail in gx)
    mask = rule_result(RULES["positions"][name], "positions", positions, PARAMETERS)
    assert by_name([mask])[name] == gx


@pytest.mark.parametrize("name", list(INSTRUMENT_CASES))
def test_each_instrument_rule_fails_on_its_case_by_gx_and_by_its_mask(
    runner: ExpectationsRunner, name: str
) -> None:
    instruments = instruments_frame(INSTRUMENT_CASES[name]())
    report = runner.validate(None, instruments)
    gx = by_name(report.results)[name]
    assert [inst_id for inst_id, _ in gx][:1] == ["XRP-USDT-SWAP"]
    assert all(detail for _, detail in gx)
    mask = rule_result(RULES["instruments"][name], "instruments", instruments, PARAMETERS)
    assert sorted(by_name([mask])[name]) == sorted(gx)


def test_a_rule_gx_did_not_report_is_a_failure_not_a_pass(runner: ExpectationsRunner) -> None:
    """The runner never assumes success: a declared rule missing from GX's results (a suite
    that drifted from the declarations) fails and says why."""
    from expectations.runner import _by_rule

    rules = RULES["instruments"]
    expected = {name: 1 for name in rules}
    results = _by_rule("instruments", [], instruments_frame(INSTRUMENTS), rules, expected)
    assert results
    assert all(not r.success for r in results)
    assert "GX reported 0 of the rule's 1" in results[0].failing[0].detail


def _contract(*records: Record) -> pd.DataFrame:
    return positions_frame(
        resolve_leverage(parse_positions(list(records)), parse_leverage_info([])), INSTRUMENTS
    )


def test_a_round_validates_accounts_together_and_names_each_failing_row_by_account(
    runner: ExpectationsRunner,
) -> None:
    # The same position in two accounts is not a duplicate; b's unknown lever is b's alone.
    contracts = {
        "a": _contract(position()),
        "b": _contract(position(), position(mgnMode="isolated", lever="")),
        "c": _contract(),  # no positions at all
    }
    modes = dict.fromkeys(contracts, "net_mode")
    reports = runner.validate_accounts(contracts, modes)
    assert set(reports) == {"a", "b", "c"}
    assert reports["a"].success
    assert reports["c"].success
    assert not reports["b"].success
    assert [(r.expectation, f.mgn_mode) for r in reports["b"].failed for f in r.failing] == [
        ("lever > 0", "isolated")
    ]
    # Each account's report is its own: every rule reported, its rows only.
    assert len(reports["a"].results) == len(reports["b"].results) == len(RULES["positions"])


def test_a_round_with_two_position_modes_checks_each_account_against_its_own(
    runner: ExpectationsRunner,
) -> None:
    hedged = position(posSide="long")
    reports = runner.validate_accounts(
        {"net": _contract(hedged), "hedged": _contract(hedged)},
        {"net": "net_mode", "hedged": "long_short_mode"},
    )
    assert [(r.expectation, f.pos_side) for r in reports["net"].failed for f in r.failing] == [
        ("posSide consistent with posMode", "long")
    ]
    assert reports["hedged"].success


def test_a_combined_report_names_the_account_of_each_failing_row(
    runner: ExpectationsRunner,
) -> None:
    together = pd.concat(
        [_contract(position()).assign(account="a"), _contract(position()).assign(account="b")],
        ignore_index=True,
    )
    together["row"] = range(len(together))
    duplicated = pd.concat([together, together.iloc[[0]].assign(row=2)], ignore_index=True)
    report = runner.validate(duplicated, None, pos_mode="net_mode")
    (unique,) = [r for r in report.failed if r.expectation == "(instId, posSide, mgnMode) unique"]
    assert {row.account for row in unique.failing} == {"a"}
    assert unique.failing[0].to_dict()["account"] == "a"
    assert report.for_account("b").success


def test_naming_rows_of_failed_expectations_only_reports_as_one_complete_run(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Pass or fail first, then rows for what failed: the same report, rule by rule and row
    by row, as the Data Docs run, which asks GX for every expectation's complete result."""
    with_docs = ExpectationsRunner(tmp_path / "docs")
    cases = [
        *(
            positions_frame(resolve_leverage(parse_positions(r), parse_leverage_info([])), s)
            for r, s in POSITION_CASES.values()
        ),
    ]
    everything = pd.concat(cases, ignore_index=True)
    everything["row"] = range(len(everything))
    for mode in ("net_mode", "long_short_mode"):
        quick = with_docs.validate(everything, None, pos_mode=mode)
        complete = with_docs.validate(everything, None, pos_mode=mode, build_docs=True)
        assert not quick.success
        assert quick.results == complete.results
    instruments = instruments_frame(INSTRUMENT_CASES["lotSz > 0"]())
    quick = with_docs.validate(None, instruments)
    assert quick.results == with_docs.validate(None, instruments, build_docs=True).results
    # By the second, narrow run: the whole-suite fallback (slower, said in the log) is not
    # what made the reports agree.
    assert "validated whole" not in caplog.text


def test_results_that_cannot_be_matched_by_id_are_named_by_the_whole_suite_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The rows of a failed expectation are found by its id; if GX ever returns results
    without one, the whole suite runs again with complete results: the same report, slower,
    and said in the log."""
    unmatched = ExpectationsRunner()
    for expectation in unmatched._definitions["instruments"].suite.expectations:
        expectation.id = None
    instruments = instruments_frame(INSTRUMENT_CASES["lotSz > 0"]())
    with caplog.at_level(logging.ERROR, logger="posguard.expectations"):
        report = unmatched.validate(None, instruments)
    assert "not matched by id; validated whole" in caplog.text
    expected = ExpectationsRunner(tmp_path / "docs").validate(None, instruments, build_docs=True)
    assert not report.success
    assert report.results == expected.results


def test_without_row_names_a_report_still_says_which_rules_failed(
    runner: ExpectationsRunner,
) -> None:
    records, specs = POSITION_CASES["lever > 0"]
    frame = positions_frame(
        resolve_leverage(parse_positions(records), parse_leverage_info([])), specs
    )
    report = runner.validate(frame, None, pos_mode="net_mode", name_rows=False)
    assert [r.expectation for r in report.failed] == ["lever > 0"]
