"""The rules' names and how a failing row is explained, shared by both suites.

A rule may need more than one GX expectation (a value must be present *and* positive); the
report groups GX results by rule, so users read one line per rule.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from expectations.report import FailingRow

Row = dict[str, Any]


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
    name: str
    explain: Callable[[Row], str]


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
                fmt(row.get("instId")), _text(row.get("posSide")), _text(row.get("mgnMode")), detail
            )
        )
    return named


def _text(value: object) -> str:
    text = fmt(value)
    return "" if text == "N/A" else text


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


POSITION_RULES: dict[str, Rule] = {
    r.name: r
    for r in (
        Rule(
            "lever > 0",
            lambda row: (
                _lever_unknown(row)
                if fmt(row.get("lever")) == "N/A"
                else f"lever is {fmt(row.get('lever'))} ({fmt(row.get('lever_source'))})"
            ),
        ),
        Rule(
            "lever <= instrument max lever",
            lambda row: (
                f"lever {fmt(row.get('lever'))} exceeds the instrument's max lever "
                f"{fmt(row.get('maxLever'))}"
            ),
        ),
        Rule(
            "ctVal and ctMult known",
            lambda row: (
                f"ctVal {fmt(row.get('ctVal'))} x ctMult {fmt(row.get('ctMult'))} of the "
                f"instrument is unknown or not positive: the position's notional is unknown "
                f"(never assumed); check the instruments answer"
            ),
        ),
        Rule("notional consistent with ctVal", _notional),
        Rule("contracts used as coins", _coins),
        Rule(
            "instId present in instruments",
            lambda row: (
                f"{fmt(row.get('instId'))} is not in the instruments: its ctVal, lotSz and max "
                f"lever are unknown (delisted, or instruments from another environment?)"
            ),
        ),
        Rule("posSide in {long, short, net}", lambda row: f"posSide is {fmt(row.get('posSide'))}"),
        Rule(
            "posSide consistent with posMode",
            lambda row: f"posSide {fmt(row.get('posSide'))} does not fit the account's posMode",
        ),
        Rule("mgnMode in {cross, isolated}", lambda row: f"mgnMode is {fmt(row.get('mgnMode'))}"),
        Rule("markPx > 0 on open positions", lambda row: f"markPx is {fmt(row.get('markPx'))}"),
        Rule("avgPx > 0 on open positions", lambda row: f"avgPx is {fmt(row.get('avgPx'))}"),
        Rule(
            "liqPx on the losing side of markPx",
            lambda row: (
                f"{fmt(row.get('side'))} position with liqPx {fmt(row.get('liqPx'))} and markPx "
                f"{fmt(row.get('markPx'))}"
            ),
        ),
        Rule("(instId, posSide, mgnMode) unique", lambda row: "the position key appears twice"),
        Rule(
            "pos a multiple of lotSz",
            lambda row: (
                f"pos {fmt(row.get('pos'))} is not a multiple of lotSz {fmt(row.get('lotSz'))}"
            ),
        ),
    )
}

INSTRUMENT_RULES: dict[str, Rule] = {
    r.name: r
    for r in (
        Rule("ctVal > 0", lambda row: f"ctVal is {fmt(row.get('ctVal'))}"),
        Rule("ctMult > 0", lambda row: f"ctMult is {fmt(row.get('ctMult'))}"),
        Rule("ctType in {linear, inverse}", lambda row: f"ctType is {fmt(row.get('ctType'))}"),
        Rule("lotSz > 0", lambda row: f"lotSz is {fmt(row.get('lotSz'))}"),
        Rule("minSz > 0", lambda row: f"minSz is {fmt(row.get('minSz'))}"),
        Rule("tickSz > 0", lambda row: f"tickSz is {fmt(row.get('tickSz'))}"),
        Rule("max lever >= 1", lambda row: f"max lever is {fmt(row.get('maxLever'))}"),
        Rule("state known", lambda row: f"state is {fmt(row.get('state'))}"),
        Rule("instId unique", lambda row: "the instId appears twice"),
    )
}
