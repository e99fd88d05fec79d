"""The positions suite: what a sane OKX positions snapshot looks like (GX, as code).

Runs over the open positions of `posguard.contract.positions_frame` (zero-size records are not
positions and are skipped). Parameters at run time: `notional_tolerance` (relative) and
`allowed_pos_sides` (from the account's posMode). Row conditions are avoided on purpose: each
one makes GX filter the whole frame again, so scoping lives in derived columns instead.
"""

from __future__ import annotations

import great_expectations as gx
import great_expectations.expectations as gxe


def _rule(name: str) -> dict[str, str]:
    return {"rule": name}


def positions_suite(name: str = "posguard-positions") -> gx.ExpectationSuite:
    return gx.ExpectationSuite(
        name=name,
        expectations=[
            gxe.ExpectColumnValuesToNotBeNull(column="lever", meta=_rule("lever > 0")),
            gxe.ExpectColumnValuesToBeBetween(
                column="lever",
                min_value=0,
                strict_min=True,
                meta=_rule("lever > 0"),
            ),
            gxe.ExpectColumnPairValuesAToBeGreaterThanB(
                column_A="maxLever",
                column_B="lever",
                or_equal=True,
                ignore_row_if="either_value_is_missing",
                meta=_rule("lever <= instrument max lever"),
            ),
            gxe.ExpectColumnValuesToBeInSet(
                # Open contract positions on known instruments only (NA elsewhere).
                column="contract_spec_ok",
                value_set=[True],
                meta=_rule("ctVal and ctMult known"),
            ),
            gxe.ExpectColumnValuesToBeBetween(
                column="notional_rel_err",
                min_value=0,
                max_value={"$PARAMETER": "notional_tolerance"},
                meta=_rule("notional consistent with ctVal"),
            ),
            gxe.ExpectColumnValuesToNotBeInSet(
                column="notional_verdict",
                value_set=["contracts_as_coins"],
                meta=_rule("contracts used as coins"),
            ),
            gxe.ExpectColumnValuesToBeInSet(
                column="instrument_known",
                value_set=[True],
                meta=_rule("instId present in instruments"),
            ),
            gxe.ExpectColumnValuesToBeInSet(
                column="posSide",
                value_set=["long", "short", "net"],
                meta=_rule("posSide in {long, short, net}"),
            ),
            gxe.ExpectColumnValuesToBeInSet(
                # posSide of SWAP/FUTURES rows only (NA elsewhere): MARGIN is always "net".
                column="mode_pos_side",
                value_set={"$PARAMETER": "allowed_pos_sides"},
                meta=_rule("posSide consistent with posMode"),
            ),
            gxe.ExpectColumnValuesToBeInSet(
                column="mgnMode",
                value_set=["cross", "isolated"],
                meta=_rule("mgnMode in {cross, isolated}"),
            ),
            gxe.ExpectColumnValuesToNotBeNull(
                column="markPx",
                meta=_rule("markPx > 0 on open positions"),
            ),
            gxe.ExpectColumnValuesToBeBetween(
                column="markPx",
                min_value=0,
                strict_min=True,
                meta=_rule("markPx > 0 on open positions"),
            ),
            gxe.ExpectColumnValuesToNotBeNull(
                column="avgPx",
                meta=_rule("avgPx > 0 on open positions"),
            ),
            gxe.ExpectColumnValuesToBeBetween(
                column="avgPx",
                min_value=0,
                strict_min=True,
                meta=_rule("avgPx > 0 on open positions"),
            ),
            gxe.ExpectColumnValuesToBeInSet(
                column="liq_side_ok",
                value_set=[True],
                meta=_rule("liqPx on the losing side of markPx"),
            ),
            gxe.ExpectCompoundColumnsToBeUnique(
                column_list=["instId", "posSide", "mgnMode"],
                meta=_rule("(instId, posSide, mgnMode) unique"),
            ),
            gxe.ExpectColumnValuesToBeInSet(
                column="lot_multiple_ok",
                value_set=[True],
                meta=_rule("pos a multiple of lotSz"),
            ),
        ],
    )
