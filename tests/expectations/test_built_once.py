"""posguard's GX classes keep a run's configuration, never a suite's (issue 14, goal 3)."""

from __future__ import annotations

import pickle

import great_expectations.expectations as gxe

from expectations import built_once as gx_once
from expectations.rules import RULES
from expectations.runner import ExpectationsRunner
from posguard.frames import parse_instruments, parse_leverage_info, parse_positions
from posguard.frames.contract import positions_frame
from posguard.leverage import resolve_leverage
from posguard.okx.saved import load_records
from tests.conftest import SAMPLES
from tests.helpers import xrp_position as xrp

MODE_RULE = "posSide consistent with posMode"


def test_a_run_bound_expectation_builds_its_configuration_once_and_as_gx_does() -> None:
    ours = gx_once.Between(column="lever", min_value=0, strict_min=True, batch_id="b")
    theirs = gxe.ExpectColumnValuesToBeBetween(
        column="lever", min_value=0, strict_min=True, batch_id="b"
    )
    assert ours.configuration is ours.configuration
    assert ours.configuration.kwargs == theirs.configuration.kwargs
    assert ours.configuration.type == "posguard_expect_column_values_to_be_between"
    # The cache is private: it is not a field of the expectation (nor of its JSON).
    assert "_built" not in ours.dict()


def test_a_suite_expectation_gives_a_new_configuration_on_every_read() -> None:
    # GX substitutes a run's parameters into it in place: a kept one would keep them.
    ours = gx_once.InSet(column="mode_pos_side", value_set={"$PARAMETER": "allowed_pos_sides"})
    first = ours.configuration
    first.kwargs["value_set"] = ["net"]
    assert ours.configuration is not first
    assert ours.configuration.kwargs["value_set"] == {"$PARAMETER": "allowed_pos_sides"}


def test_a_kept_configuration_follows_the_fields_copies_and_pickles() -> None:
    ours = gx_once.Between(column="lever", min_value=0, batch_id="b")
    assert ours.configuration.kwargs["min_value"] == 0
    ours.min_value = 5  # a field set again: built again
    assert ours.configuration.kwargs["min_value"] == 5
    copied = ours.copy(update={"column": "other"})  # pydantic copies the private cache too
    assert copied.configuration.kwargs["column"] == "other"
    again = pickle.loads(pickle.dumps(ours))
    assert again.configuration.kwargs == ours.configuration.kwargs


def test_a_run_bound_expectation_still_naming_a_parameter_is_built_on_every_read() -> None:
    ours = gx_once.InSet(
        column="mode_pos_side", value_set={"$PARAMETER": "allowed_pos_sides"}, batch_id="b"
    )
    assert ours.configuration is not ours.configuration


def test_every_rule_is_declared_with_posguards_classes() -> None:
    for rules in RULES.values():
        for rule in rules.values():
            for expectation in rule.expectations():
                assert type(expectation).__module__ == gx_once.__name__, rule.name


def test_each_run_of_one_runner_uses_its_own_parameters() -> None:
    """A hedged position is fine in long/short mode, wrong in net mode, and fine again:
    the first run's allowed posSides must not stay in the suite."""
    runner = ExpectationsRunner()
    instruments = parse_instruments(
        load_records(SAMPLES / "instruments_swap_ccxt_markets_info.json")
    )
    positions = resolve_leverage(parse_positions([xrp(posSide="long")]), parse_leverage_info([]))
    frame = positions_frame(positions, instruments)

    def mode_rule_holds(pos_mode: str) -> bool:
        report = runner.validate(frame, None, pos_mode=pos_mode)
        return next(r for r in report.results if r.expectation == MODE_RULE).success

    assert mode_rule_holds("long_short_mode")
    assert not mode_rule_holds("net_mode")
    assert mode_rule_holds("long_short_mode")
