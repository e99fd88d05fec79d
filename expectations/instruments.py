"""The instruments suite: contract specs posguard's arithmetic depends on (GX, as code).

Runs over `posguard.contract.instruments_frame`.
"""

from __future__ import annotations

import great_expectations as gx
import great_expectations.expectations as gxe
from great_expectations.expectations.row_conditions import Column

DERIVATIVE = Column(name="is_derivative") == True  # noqa: E712 - a GX condition
KNOWN_STATES = ["live", "suspend", "rebase", "post_only", "preopen", "test", "settling", "expired"]


def _rule(name: str) -> dict[str, str]:
    return {"rule": name}


def _positive(column: str, rule: str, *, derivatives_only: bool) -> list[gxe.Expectation]:
    condition = {"row_condition": DERIVATIVE} if derivatives_only else {}
    return [
        gxe.ExpectColumnValuesToNotBeNull(column=column, meta=_rule(rule), **condition),
        gxe.ExpectColumnValuesToBeBetween(
            column=column, min_value=0, strict_min=True, meta=_rule(rule), **condition
        ),
    ]


def instruments_suite(name: str = "posguard-instruments") -> gx.ExpectationSuite:
    return gx.ExpectationSuite(
        name=name,
        expectations=[
            *_positive("ctVal", "ctVal > 0", derivatives_only=True),
            *_positive("ctMult", "ctMult > 0", derivatives_only=True),
            gxe.ExpectColumnValuesToBeInSet(
                column="ctType",
                value_set=["linear", "inverse"],
                row_condition=DERIVATIVE,
                meta=_rule("ctType in {linear, inverse}"),
            ),
            gxe.ExpectColumnValuesToNotBeNull(
                column="ctType",
                row_condition=DERIVATIVE,
                meta=_rule("ctType in {linear, inverse}"),
            ),
            *_positive("lotSz", "lotSz > 0", derivatives_only=False),
            *_positive("minSz", "minSz > 0", derivatives_only=False),
            *_positive("tickSz", "tickSz > 0", derivatives_only=False),
            gxe.ExpectColumnValuesToNotBeNull(
                column="maxLever",
                row_condition=DERIVATIVE,
                meta=_rule("max lever >= 1"),
            ),
            gxe.ExpectColumnValuesToBeBetween(
                column="maxLever",
                min_value=1,
                row_condition=DERIVATIVE,
                meta=_rule("max lever >= 1"),
            ),
            gxe.ExpectColumnValuesToBeInSet(
                column="state", value_set=KNOWN_STATES, meta=_rule("state known")
            ),
            gxe.ExpectColumnValuesToNotBeNull(column="state", meta=_rule("state known")),
            gxe.ExpectColumnValuesToBeUnique(column="instId", meta=_rule("instId unique")),
        ],
    )
