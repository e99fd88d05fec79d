"""Every validation rule, declared once: its GX expectations, how a failing row is explained,
and the same rule as a plain-pandas mask (what the validation benchmark compares GX with).

The suites (`expectations.suites`), the report's rule list (`expectations.runner`) and the
benchmark are all derived from `POSITION_RULES` and `INSTRUMENT_RULES`; adding a rule is one
`Rule(...)` here and its case in tests/expectations/test_rules.py. A rule may need more than
one GX expectation (a value must be present *and* positive): the report groups GX results by
rule, so users read one line per rule.

Masks follow GX's semantics: a "between" or "in set" expectation ignores missing values, so a
rule that must also catch them carries a "not null" expectation and its mask says so.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import great_expectations.expectations as gxe
import pandas as pd
from great_expectations.expectations.row_conditions import Column

from expectations import built_once as gx_once
from expectations.report import FailingRow, RuleResult

Row = dict[str, Any]
# Run-time parameters of the positions suite: notional_tolerance, allowed_pos_sides.
Parameters = Mapping[str, Any]

KNOWN_STATES = ["live", "suspend", "rebase", "post_only", "preopen", "test", "settling", "expired"]
POS_SIDES = ["long", "short", "net"]
MGN_MODES = ["cross", "isolated"]
CT_TYPES = ["linear", "inverse"]


def fmt(value: object, places: int = 8) -> str:
    """A number or text for a message; "N/A" for None, NaN and "" (never raises)."""
    if value is None:
        return "N/A"
    if isinstance(value, float):
        if math.isnan(value):
            return "N/A"
        return f"{value:.{places}g}"
    try:
        if value != value:  # pandas NA / numpy NaN
            return "N/A"
    except (TypeError, ValueError):
        return "N/A"
    text = str(value)
    return text if text else "N/A"


def pct(value: object) -> str:
    if isinstance(value, int | float) and not math.isnan(float(value)):
        return f"{float(value):.2%}"
    return "N/A"


@dataclass(frozen=True)
class Rule:
    """One rule: `expectations()` builds its GX expectations (each tagged with the rule's
    name), `explain` says why a row breaks it, `fails` marks the rows that break it."""

    name: str
    build: Callable[[], list[gxe.Expectation]]
    explain: Callable[[Row], str]
    fails: Callable[[pd.DataFrame, Parameters], pd.Series]

    def expectations(self) -> list[gxe.Expectation]:
        built = self.build()
        for expectation in built:
            expectation.meta = {"rule": self.name}
        return built


def explain_rows(frame: pd.DataFrame, rows: list[int], rule: Rule | None) -> list[FailingRow]:
    """The failing rows (by the frame's `row` column, in the given order) named and explained.

    One selection for all of a rule's rows: a lookup per row costs more than the rule itself
    on a large snapshot.
    """
    if not rows:
        return []
    selected = frame[frame["row"].isin(rows)]
    by_row = dict(zip(selected["row"].tolist(), selected.to_dict("records"), strict=True))
    named: list[FailingRow] = []
    for number in rows:
        row = by_row.get(number)
        if row is None:
            named.append(FailingRow("", "", "", f"row {number} is not in the frame"))
            continue
        detail = rule.explain(row) if rule else fmt(row)
        named.append(
            FailingRow(
                fmt(row.get("instId")),
                _text(row.get("posSide")),
                _text(row.get("mgnMode")),
                detail,
                account=_text(row.get("account")),
            )
        )
    return named


def _text(value: object) -> str:
    text = fmt(value)
    return "" if text == "N/A" else text


def rule_result(rule: Rule, suite: str, frame: pd.DataFrame, parameters: Parameters) -> RuleResult:
    """The rule evaluated by its pandas mask alone, failing rows named as the runner names
    GX's (the benchmark's comparison, and the tests' check that both agree)."""
    mask = rule.fails(frame, parameters).to_numpy(dtype=bool)
    rows = frame["row"].to_numpy()[mask].tolist()
    failing = explain_rows(frame, rows, rule)
    return RuleResult(rule.name, suite, not failing, failing)


def _not_true(values: pd.Series) -> pd.Series:
    """Present and not True (GX's "in set [True]" ignores missing values)."""
    return values.notna() & values.astype(object).ne(True)


def _not_positive(values: pd.Series) -> pd.Series:
    """Missing or <= 0 ("not null" and "between, strictly above 0" together)."""
    return ~(pd.to_numeric(values, errors="coerce") > 0).fillna(False)


def _positive(column: str, condition: Any = None) -> Callable[[], list[gxe.Expectation]]:
    def build() -> list[gxe.Expectation]:
        scope = {} if condition is None else {"row_condition": condition}
        return [
            gx_once.NotNull(column=column, **scope),
            gx_once.Between(column=column, min_value=0, strict_min=True, **scope),
        ]

    return build


def _in_set(column: str, values: list[Any]) -> Callable[[], list[gxe.Expectation]]:
    return lambda: [gx_once.InSet(column=column, value_set=values)]


def _outside(frame: pd.DataFrame, column: str, values: list[Any]) -> pd.Series:
    """Present and not in `values` (GX's "in set" ignores missing values)."""
    return frame[column].notna() & ~frame[column].isin(values)


def _lever_unknown(row: Row) -> str:
    return f"lever is unknown ({fmt(row.get('lever_reason')) or 'no reason'})"


def _coins(row: Row) -> str:
    computed, reported = row.get("notional"), row.get("notionalUsd")
    ratio = "N/A"
    if isinstance(computed, float) and isinstance(reported, float) and computed:
        ratio = fmt(reported / computed, 4)
    return (
        f"contracts used as coins: notionalUsd {fmt(reported)} is {ratio} x the notional "
        f"from |pos| {fmt(row.get('size'))} x ctVal {fmt(row.get('ctVal'))} x markPx "
        f"{fmt(row.get('markPx'))} = {fmt(computed)}; multiply contracts by ctVal"
    )


def _notional(row: Row) -> str:
    if row.get("notional_verdict") == "contracts_as_coins":
        return _coins(row)
    return (
        f"notionalUsd {fmt(row.get('notionalUsd'))} vs computed {fmt(row.get('notional'))} "
        f"({fmt(row.get('ctType'))}, ctVal {fmt(row.get('ctVal'))}): relative error "
        f"{pct(row.get('notional_rel_err'))}"
    )


def _notional_off(frame: pd.DataFrame, parameters: Parameters) -> pd.Series:
    error = frame["notional_rel_err"]
    inside = (error >= 0) & (error <= float(parameters["notional_tolerance"]))
    return error.notna() & ~inside.fillna(False)


def _lever_above_max(frame: pd.DataFrame, _: Parameters) -> pd.Series:
    lever, most = frame["lever"], frame["maxLever"]
    return lever.notna() & most.notna() & (lever > most).fillna(False)


POSITION_KEY = ["account", "instId", "posSide", "mgnMode"]

# Over the open positions of `posguard.frames.contract.positions_frame` (zero-size records are not
# positions and are skipped). Row conditions are avoided on purpose: each one makes GX filter
# the whole frame again, so scoping lives in derived columns instead (NA where out of scope).
POSITION_RULES: dict[str, Rule] = {
    r.name: r
    for r in (
        Rule(
            "lever > 0",
            _positive("lever"),
            lambda row: (
                _lever_unknown(row)
                if fmt(row.get("lever")) == "N/A"
                else f"lever is {fmt(row.get('lever'))} ({fmt(row.get('lever_source'))})"
            ),
            lambda f, _: _not_positive(f["lever"]),
        ),
        Rule(
            "lever <= instrument max lever",
            lambda: [
                gx_once.PairAGreaterThanB(
                    column_A="maxLever",
                    column_B="lever",
                    or_equal=True,
                    ignore_row_if="either_value_is_missing",
                )
            ],
            lambda row: (
                f"lever {fmt(row.get('lever'))} exceeds the instrument's max lever "
                f"{fmt(row.get('maxLever'))}"
            ),
            _lever_above_max,
        ),
        Rule(
            "ctVal and ctMult known",
            # Open contract positions on known instruments only (NA elsewhere).
            _in_set("contract_spec_ok", [True]),
            lambda row: (
                f"ctVal {fmt(row.get('ctVal'))} x ctMult {fmt(row.get('ctMult'))} of the "
                f"instrument is unknown or not positive: the position's notional is unknown "
                f"(never assumed); check the instruments answer"
            ),
            lambda f, _: _not_true(f["contract_spec_ok"]),
        ),
        Rule(
            "notional consistent with ctVal",
            lambda: [
                gx_once.Between(
                    column="notional_rel_err",
                    min_value=0,
                    max_value={"$PARAMETER": "notional_tolerance"},
                )
            ],
            _notional,
            _notional_off,
        ),
        Rule(
            "contracts used as coins",
            lambda: [gx_once.NotInSet(column="notional_verdict", value_set=["contracts_as_coins"])],
            _coins,
            lambda f, _: f["notional_verdict"].eq("contracts_as_coins").fillna(False),
        ),
        Rule(
            "instId present in instruments",
            _in_set("instrument_known", [True]),
            lambda row: (
                f"{fmt(row.get('instId'))} is not in the instruments: its ctVal, lotSz and max "
                f"lever are unknown (delisted, or instruments from another environment?)"
            ),
            lambda f, _: _not_true(f["instrument_known"]),
        ),
        Rule(
            "posSide in {long, short, net}",
            _in_set("posSide", POS_SIDES),
            lambda row: f"posSide is {fmt(row.get('posSide'))}",
            lambda f, _: _outside(f, "posSide", POS_SIDES),
        ),
        Rule(
            "posSide consistent with posMode",
            # posSide of SWAP/FUTURES rows only (NA elsewhere): MARGIN is always "net".
            lambda: [
                gx_once.InSet(column="mode_pos_side", value_set={"$PARAMETER": "allowed_pos_sides"})
            ],
            lambda row: f"posSide {fmt(row.get('posSide'))} does not fit the account's posMode",
            lambda f, p: _outside(f, "mode_pos_side", list(p["allowed_pos_sides"])),
        ),
        Rule(
            "mgnMode in {cross, isolated}",
            _in_set("mgnMode", MGN_MODES),
            lambda row: f"mgnMode is {fmt(row.get('mgnMode'))}",
            lambda f, _: _outside(f, "mgnMode", MGN_MODES),
        ),
        Rule(
            "markPx > 0 on open positions",
            _positive("markPx"),
            lambda row: f"markPx is {fmt(row.get('markPx'))}",
            lambda f, _: _not_positive(f["markPx"]),
        ),
        Rule(
            "avgPx > 0 on open positions",
            _positive("avgPx"),
            lambda row: f"avgPx is {fmt(row.get('avgPx'))}",
            lambda f, _: _not_positive(f["avgPx"]),
        ),
        Rule(
            "liqPx on the losing side of markPx",
            _in_set("liq_side_ok", [True]),
            lambda row: (
                f"{fmt(row.get('side'))} position with liqPx {fmt(row.get('liqPx'))} and markPx "
                f"{fmt(row.get('markPx'))}"
            ),
            lambda f, _: _not_true(f["liq_side_ok"]),
        ),
        Rule(
            "(instId, posSide, mgnMode) unique",
            # Per account: a round validates several accounts' positions in one run.
            lambda: [gx_once.CompoundUnique(column_list=POSITION_KEY)],
            lambda row: "the position key appears twice",
            lambda f, _: f.duplicated(POSITION_KEY, keep=False),
        ),
        Rule(
            "pos a multiple of lotSz",
            _in_set("lot_multiple_ok", [True]),
            lambda row: (
                f"pos {fmt(row.get('pos'))} is not a multiple of lotSz {fmt(row.get('lotSz'))}"
            ),
            lambda f, _: _not_true(f["lot_multiple_ok"]),
        ),
    )
}

# Over `posguard.frames.contract.instruments_frame`: the specs posguard's arithmetic needs.
DERIVATIVE = Column(name="is_derivative") == True  # noqa: E712 - a GX condition


def _derivative(frame: pd.DataFrame) -> pd.Series:
    return frame["is_derivative"].astype(object).eq(True)


def _positive_rule(column: str, *, derivatives_only: bool) -> Rule:
    def fails(frame: pd.DataFrame, _: Parameters) -> pd.Series:
        broken = _not_positive(frame[column])
        return broken & _derivative(frame) if derivatives_only else broken

    return Rule(
        f"{column} > 0",
        _positive(column, DERIVATIVE if derivatives_only else None),
        lambda row: f"{column} is {fmt(row.get(column))}",
        fails,
    )


INSTRUMENT_RULES: dict[str, Rule] = {
    r.name: r
    for r in (
        _positive_rule("ctVal", derivatives_only=True),
        _positive_rule("ctMult", derivatives_only=True),
        Rule(
            "ctType in {linear, inverse}",
            lambda: [
                gx_once.InSet(column="ctType", value_set=CT_TYPES, row_condition=DERIVATIVE),
                gx_once.NotNull(column="ctType", row_condition=DERIVATIVE),
            ],
            lambda row: f"ctType is {fmt(row.get('ctType'))}",
            lambda f, _: _derivative(f) & ~f["ctType"].isin(CT_TYPES),
        ),
        _positive_rule("lotSz", derivatives_only=False),
        _positive_rule("minSz", derivatives_only=False),
        _positive_rule("tickSz", derivatives_only=False),
        Rule(
            "max lever >= 1",
            lambda: [
                gx_once.NotNull(column="maxLever", row_condition=DERIVATIVE),
                gx_once.Between(column="maxLever", min_value=1, row_condition=DERIVATIVE),
            ],
            lambda row: f"max lever is {fmt(row.get('maxLever'))}",
            lambda f, _: (
                _derivative(f) & ~(pd.to_numeric(f["maxLever"], errors="coerce") >= 1).fillna(False)
            ),
        ),
        Rule(
            "state known",
            lambda: [
                gx_once.InSet(column="state", value_set=KNOWN_STATES),
                gx_once.NotNull(column="state"),
            ],
            lambda row: f"state is {fmt(row.get('state'))}",
            lambda f, _: ~f["state"].isin(KNOWN_STATES),
        ),
        Rule(
            "instId unique",
            lambda: [gx_once.Unique(column="instId")],
            lambda row: "the instId appears twice",
            lambda f, _: f["instId"].notna() & f.duplicated(["instId"], keep=False),
        ),
    )
}

RULES: dict[str, dict[str, Rule]] = {"positions": POSITION_RULES, "instruments": INSTRUMENT_RULES}
