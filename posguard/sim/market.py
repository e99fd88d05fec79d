"""The simulated market: real instrument specs, generated position tiers, seeded candles.

Instruments are the SWAP records of shared/okx-samples (ccxt's and NautilusTrader's captures),
shipped as package data with their real ctVal/lotSz/tickSz/max lever.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from decimal import Decimal
from importlib import resources
from typing import Any

import numpy as np

from posguard.bars import BAR_MS
from posguard.sim.numbers import dec, okx_str, round_to

# Reference prices (USD) for instruments a scenario does not price.
DEFAULT_PRICES: dict[str, str] = {
    "BTC": "92000",
    "ETH": "3200",
    "LTC": "68.24",
    "ADA": "0.62",
    "XRP": "1.93",
    "DOGE": "0.15",
    "TRX": "0.28",
    "SUSHI": "1.25",
}

# Tier boundaries in USD notional with the share of the instrument's max lever allowed and
# the maintenance margin rate: a shape like OKX's published tiers, not a copy of them.
TIER_SHAPE: tuple[tuple[int, Decimal, Decimal], ...] = (
    (50_000, Decimal("1"), Decimal("0.004")),
    (200_000, Decimal("0.5"), Decimal("0.008")),
    (1_000_000, Decimal("0.2"), Decimal("0.02")),
    (5_000_000, Decimal("0.1"), Decimal("0.05")),
    (50_000_000, Decimal("0.04"), Decimal("0.12")),
)


@dataclass(frozen=True)
class Tier:
    tier: int
    min_sz: Decimal
    max_sz: Decimal
    max_lever: Decimal
    mmr: Decimal

    @property
    def imr(self) -> Decimal:
        return 1 / self.max_lever


@dataclass
class Instrument:
    record: dict[str, Any]
    tiers: list[Tier]

    @property
    def inst_id(self) -> str:
        return str(self.record["instId"])

    @property
    def inst_family(self) -> str:
        return str(self.record.get("instFamily") or self.record.get("uly") or "")

    @property
    def ct_type(self) -> str:
        return str(self.record["ctType"])

    @property
    def ct_val(self) -> Decimal:
        return dec(self.record["ctVal"])

    @property
    def ct_mult(self) -> Decimal:
        return dec(self.record.get("ctMult") or "1")

    @property
    def lot_sz(self) -> Decimal:
        return dec(self.record["lotSz"])

    @property
    def tick_sz(self) -> Decimal:
        return dec(self.record["tickSz"])

    @property
    def max_lever(self) -> Decimal:
        return dec(self.record["lever"])

    @property
    def settle_ccy(self) -> str:
        return str(self.record.get("settleCcy") or "")

    @property
    def base_ccy(self) -> str:
        return self.inst_id.split("-")[0]

    def tier_for(self, contracts: Decimal) -> Tier:
        """The tier holding `contracts`; past the last tier, the last (strictest) one."""
        for tier in self.tiers:
            if contracts <= tier.max_sz:
                return tier
        return self.tiers[-1]


def _tiers(record: dict[str, Any], ref_price: Decimal) -> list[Tier]:
    ct_val = dec(record["ctVal"])
    lot = dec(record["lotSz"])
    max_lever = dec(record["lever"])
    per_contract_usd = ct_val if record["ctType"] == "inverse" else ct_val * ref_price
    tiers: list[Tier] = []
    low = Decimal(0)
    for number, (usd, share, mmr) in enumerate(TIER_SHAPE, start=1):
        high = max(round_to(Decimal(usd) / per_contract_usd, lot), lot)
        lever = max(Decimal(1), (max_lever * share).to_integral_value())
        tiers.append(Tier(number, low, high, lever, mmr))
        low = high + lot
    return tiers


def load_instruments(prices: dict[str, Decimal]) -> dict[str, Instrument]:
    text = resources.files("posguard.sim").joinpath("data/instruments_swap.json").read_text()
    catalog: dict[str, Instrument] = {}
    for record in json.loads(text):
        inst_id = record["instId"]
        price = prices.get(inst_id) or dec(DEFAULT_PRICES[inst_id.split("-")[0]])
        catalog[inst_id] = Instrument(record=record, tiers=_tiers(record, price))
    return catalog


SYNTHETIC_PREFIX = "SYN"


def synthetic_id(number: int) -> str:
    return f"{SYNTHETIC_PREFIX}{number:06d}-USDT-SWAP"


def synthetic_instruments(count: int) -> dict[str, Instrument]:
    """`count` made-up linear USDT swaps (SYN000001-USDT-SWAP, ...) for load tests: the shape
    of XRP-USDT-SWAP with ctVal 10 and whole-contract lots, priced 1 USD by default."""
    catalog: dict[str, Instrument] = {}
    for number in range(1, count + 1):
        inst_id = synthetic_id(number)
        base = inst_id.split("-")[0]
        record = {
            **SYNTHETIC_TEMPLATE,
            "ctValCcy": base,
            "instFamily": f"{base}-USDT",
            "instId": inst_id,
            "uly": f"{base}-USDT",
        }
        catalog[inst_id] = Instrument(record=record, tiers=_tiers(record, Decimal(1)))
    return catalog


SYNTHETIC_TEMPLATE: dict[str, str] = {
    "alias": "",
    "baseCcy": "",
    "category": "1",
    "ctMult": "1",
    "ctType": "linear",
    "ctVal": "10",
    "expTime": "",
    "instType": "SWAP",
    "lever": "50",
    "listTime": "1611916828000",
    "lotSz": "1",
    "maxLmtSz": "100000000",
    "maxMktSz": "1000000",
    "minSz": "1",
    "optType": "",
    "quoteCcy": "",
    "ruleType": "normal",
    "settleCcy": "USDT",
    "state": "live",
    "stk": "",
    "tickSz": "0.0001",
}


def default_price(inst_id: str) -> Decimal:
    return dec(DEFAULT_PRICES.get(inst_id.split("-")[0], "1"))


def tier_record(instrument: Instrument, tier: Tier, td_mode: str) -> dict[str, str]:
    return {
        "uly": instrument.inst_family,
        "instFamily": instrument.inst_family,
        "instId": "",
        "tier": str(tier.tier),
        "minSz": okx_str(tier.min_sz),
        "maxSz": okx_str(tier.max_sz),
        "mmr": okx_str(tier.mmr),
        "imr": okx_str(tier.imr, 6),
        "maxLever": okx_str(tier.max_lever),
        "optMgnFactor": "0",
        "quoteMaxLoan": "",
        "baseMaxLoan": "",
    }


def _seed_for(seed: int, inst_id: str, bar: str) -> int:
    digest = hashlib.sha256(f"{seed}:{inst_id}:{bar}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def candle_rows(
    *,
    seed: int,
    inst_id: str,
    bar: str,
    now_ms: int,
    last_price: Decimal,
    tick: Decimal,
    ct_val: Decimal,
    history_bars: int,
) -> list[list[str]]:
    """Every candle up to `now_ms`, newest first; the last one is still forming.

    A seeded random walk that ends at `last_price`, so candles agree with the mark price.
    The same (seed, instId, bar) always gives the same returns.
    """
    step = BAR_MS[bar]
    newest = now_ms - now_ms % step
    count = max(0, history_bars)
    if count == 0:
        return []
    rng = np.random.default_rng(_seed_for(seed, inst_id, bar))
    # 1m volatility around 0.1%, scaled by sqrt(bar length).
    sigma = 0.001 * float(np.sqrt(step / 60_000))
    returns = rng.normal(0.0, sigma, count)
    closes = float(last_price) * np.exp(-np.concatenate(([0.0], np.cumsum(returns[:-1]))))
    wiggle = np.abs(rng.normal(0.0, sigma / 2, count))
    volume = rng.integers(10, 5000, count)
    rows: list[list[str]] = []
    for index in range(count):
        close = dec(f"{closes[index]:.10f}")
        open_ = dec(f"{closes[index] * float(np.exp(returns[index])):.10f}")
        high = max(open_, close) * (1 + dec(f"{wiggle[index]:.10f}"))
        low = min(open_, close) * (1 - dec(f"{wiggle[index]:.10f}"))
        contracts = Decimal(int(volume[index]))
        rows.append(
            [
                str(newest - index * step),
                okx_str(round_to(open_, tick)),
                okx_str(round_to(high, tick)),
                okx_str(round_to(low, tick)),
                okx_str(round_to(close, tick)),
                okx_str(contracts),
                okx_str(contracts * ct_val, 8),
                okx_str(contracts * ct_val * close, 4),
                "0" if index == 0 else "1",
            ]
        )
    return rows
