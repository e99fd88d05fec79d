"""The declared schema of every OKX entity posguard reads (okx-facts.md sections 2-5)."""

from __future__ import annotations

from posguard.frames.schema import Column, Schema

C = Column

POSITIONS = Schema(
    "positions",
    (
        C("instType", required=True),
        C("instId", required=True),
        C("mgnMode", required=True),
        C("posSide", required=True),
        C("pos", "num", required=True),
        C("posId"),
        C("posCcy"),
        C("ccy"),
        C("availPos", "num"),
        C("avgPx", "num"),
        C("markPx", "num"),
        C("last", "num"),
        C("idxPx", "num"),
        C("upl", "num"),
        C("uplRatio", "num"),
        C("lever", "num"),
        C("liqPx", "num"),
        C("imr", "num"),
        C("margin", "num"),
        C("mgnRatio", "num"),
        C("mmr", "num"),
        C("notionalUsd", "num"),
        C("adl", "int"),
        C("realizedPnl", "num"),
        C("fee", "num"),
        C("fundingFee", "num"),
        C("cTime", "ms"),
        C("uTime", "ms"),
    ),
)

INSTRUMENTS = Schema(
    "instruments",
    (
        C("instType", required=True),
        C("instId", required=True),
        C("uly"),
        C("instFamily"),
        C("baseCcy"),
        C("quoteCcy"),
        C("settleCcy"),
        C("ctType"),
        C("ctVal", "num"),
        C("ctMult", "num"),
        C("ctValCcy"),
        C("lotSz", "num"),
        C("minSz", "num"),
        C("tickSz", "num"),
        C("lever", "num", rename="maxLever"),
        C("state"),
        C("listTime", "ms"),
        C("expTime", "ms"),
    ),
)

LEVERAGE_INFO = Schema(
    "leverage_info",
    (
        C("instId"),
        C("ccy"),
        C("mgnMode", required=True),
        C("posSide"),
        C("lever", "num", required=True),
    ),
)

POSITIONS_HISTORY = Schema(
    "positions_history",
    (
        C("instType", required=True),
        C("instId", required=True),
        C("mgnMode"),
        C("posSide"),
        C("posId"),
        # The latest close type: 1 partial close, 2 close, 3 liquidation, 4 partial
        # liquidation, 5/6 ADL.
        C("type", "int"),
        C("direction"),
        C("lever", "num"),
        C("openAvgPx", "num"),
        C("nonSettleAvgPx", "num"),
        C("closeAvgPx", "num"),
        C("openMaxPos", "num"),
        C("closeTotalPos", "num"),
        C("realizedPnl", "num"),
        C("settledPnl", "num"),
        C("pnlRatio", "num"),
        C("pnl", "num"),
        C("fee", "num"),
        C("fundingFee", "num"),
        C("liqPenalty", "num"),
        C("triggerPx", "num"),
        C("uly"),
        C("ccy"),
        C("cTime", "ms", required=True),
        C("uTime", "ms", required=True),
    ),
)

FILLS = Schema(
    "fills",
    (
        C("instType"),
        C("instId", required=True),
        C("tradeId"),
        C("ordId"),
        C("clOrdId"),
        C("billId"),
        # 3/4 open, 5/6 close, 100/101 partial liquidation, 104/105 liquidation, 125/126 ADL...
        C("subType", "int"),
        C("side"),
        C("posSide"),
        C("execType"),
        C("fillPx", "num"),
        C("fillSz", "num", required=True),
        C("fillPnl", "num"),
        C("fillMarkPx", "num"),
        C("fee", "num"),
        C("feeCcy"),
        C("ts", "ms"),
        C("fillTime", "ms"),
    ),
)

CANDLE_FIELDS = ("ts", "o", "h", "l", "c", "vol", "volCcy", "volCcyQuote", "confirm")
CANDLES = Schema(
    "candles",
    (
        C("instId"),
        C("ts", "ms", required=True),
        C("o", "num", required=True),
        C("h", "num", required=True),
        C("l", "num", required=True),
        C("c", "num", required=True),
        C("vol", "num"),
        C("volCcy", "num"),
        C("volCcyQuote", "num"),
        # "0" the bar is still forming, "1" closed; only closed bars feed volatility.
        C("confirm", "int"),
    ),
)

POSITION_TIERS = Schema(
    "position_tiers",
    (
        C("uly"),
        C("instFamily"),
        C("instId"),
        C("tier", "int", required=True),
        C("minSz", "num"),
        C("maxSz", "num"),
        C("mmr", "num"),
        C("imr", "num"),
        C("maxLever", "num", required=True),
        C("optMgnFactor", "num"),
        C("quoteMaxLoan", "num"),
        C("baseMaxLoan", "num"),
    ),
)
