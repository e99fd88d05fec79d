"""Reading one account's state from OKX: the I/O half of the fetch stage.

A snapshot is all or nothing: when the positions call fails the error propagates (the
cycle is "not observed", never "flat"). leverage-info is asked only for open positions whose
`lever` is "", per mgnMode in batches; a refused batch is retried per instrument so one bad
instrument cannot hide the others' leverage.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd

from posguard import frames
from posguard.errors import RejectedError
from posguard.frames import AccountConfig
from posguard.frames.entities import INSTRUMENTS, POSITIONS
from posguard.leverage import resolve_leverage
from posguard.okx import OkxClient, Record

logger = logging.getLogger("posguard.stages.fetch")

# What parse_positions reads: the rest of OKX's ~60 fields per record is dropped on decoding.
POSITION_FIELDS = frozenset(POSITIONS.wire_names)
INSTRUMENT_FIELDS = frozenset(INSTRUMENTS.wire_names)


def fetch_instruments(client: OkxClient, inst_type: str = "SWAP") -> pd.DataFrame:
    """The instruments of the client's environment, parsed (only the fields we read kept)."""
    return frames.parse_instruments(client.instruments(inst_type, keep=INSTRUMENT_FIELDS))


@dataclass
class AccountSnapshot:
    account: str
    # OKX time just before the positions request was sent: writes the bot made after it
    # are newer than what the snapshot can show.
    started_ms: int
    config: AccountConfig
    positions: pd.DataFrame
    leverage_info: pd.DataFrame
    leverage_failures: dict[tuple[str, str], str] = field(default_factory=dict)
    # The same moment on the registry's clock, when one was given: the race guard compares
    # registry writes with it (the bot's clock and OKX's need not agree).
    registry_started_ms: int | None = None


def fetch_leverage_info(
    client: OkxClient, positions: pd.DataFrame
) -> tuple[pd.DataFrame, dict[tuple[str, str], str]]:
    """leverage-info rows for open positions whose lever is unknown, and per-key failures."""
    need = positions[positions["is_open"] & positions["lever"].isna()]
    rows: list[Record] = []
    failures: dict[tuple[str, str], str] = {}
    for mgn_mode, group in need.groupby("mgnMode", sort=True):
        inst_ids = sorted(set(group["instId"]))
        try:
            rows += client.leverage_info(str(mgn_mode), inst_ids)
            continue
        except RejectedError as batch_error:
            logger.warning(
                "leverage-info refused a batch of %s %s instruments (%s); asking one by one",
                len(inst_ids),
                mgn_mode,
                batch_error.code,
            )
        for inst_id in inst_ids:
            try:
                rows += client.leverage_info(str(mgn_mode), [inst_id])
            except RejectedError as exc:
                failures[(inst_id, str(mgn_mode))] = (
                    f"leverage-info failed for {inst_id} ({mgn_mode}): {exc.code} "
                    f"{exc.okx_msg or ''}".rstrip()
                )
    return frames.parse_leverage_info(rows), failures


# Past the grace window by this much: the engine's "older than the window" is strict.
SETTLE_MARGIN_MS = 100


@dataclass(frozen=True)
class Settled:
    until_ms: int  # OKX's time the read may start at
    waited: float  # seconds slept for it


def settle_after_change(
    client: OkxClient,
    changed_at_ms: int,
    *,
    grace_ms: int,
    longest_seconds: float,
    sleep: Callable[[float], None] = time.sleep,
) -> Settled:
    """Sleep until a pushed change (OKX's time of it; 0 or less: unknown, taken as now) is
    older than the grace window, so that its evidence can conclude (the engine holds younger
    evidence back: the bot may still be recording it). Never longer than `longest_seconds`:
    a moment far ahead is a wrong one, not a reason to hold the account's slot."""
    client.sync_clock()
    now = client.now_ms()
    until = (changed_at_ms if changed_at_ms > 0 else now) + grace_ms + SETTLE_MARGIN_MS
    wait = min(max(0.0, (until - now) / 1000), longest_seconds)
    if wait > 0:
        logger.info("waiting %.2f s for the change to pass the grace window", wait)
        sleep(wait)
    return Settled(until, wait)


def fetch_snapshot(
    client: OkxClient,
    *,
    inst_type: str | None = "SWAP",
    config: AccountConfig | None = None,
    registry_clock: Callable[[], int] | None = None,
) -> AccountSnapshot:
    account = client.account_name or "public"
    if config is None:
        config = frames.parse_account_config([client.account_config()])
    registry_started = registry_clock() if registry_clock is not None else None
    started = client.now_ms()
    records = client.positions(inst_type=inst_type, keep=POSITION_FIELDS)
    positions = frames.parse_positions(records, account=account)
    del records
    leverage_info, failures = fetch_leverage_info(client, positions)
    resolved = resolve_leverage(
        positions,
        leverage_info,
        failures=failures,
        portfolio_margin=config.portfolio_margin,
    )
    return AccountSnapshot(
        account, started, config, resolved, leverage_info, failures, registry_started
    )


def fetch_candles(
    client: OkxClient, inst_ids: list[str], *, bar: str, bars: int
) -> tuple[dict[str, pd.DataFrame], dict[str, str]]:
    """Enough recent candles per instrument for a volatility window; refusals per instId."""
    found: dict[str, pd.DataFrame] = {}
    failures: dict[str, str] = {}
    pages = max(1, -(-bars // 300))
    for inst_id in sorted(set(inst_ids)):
        try:
            walk = client.candles(inst_id, bar=bar, limit=min(bars, 300), max_pages=pages)
        except RejectedError as exc:
            failures[inst_id] = f"candles refused: {exc.code} {exc.okx_msg or ''}".rstrip()
            continue
        # Fewer bars than wanted is reported by the volatility stage ("only N closed").
        found[inst_id] = frames.parse_candles(walk.records[:bars], inst_id=inst_id)
    return found, failures


def fetch_tiers(
    client: OkxClient, instruments: pd.DataFrame, positions: pd.DataFrame
) -> pd.DataFrame:
    """Position tiers for the families and margin modes of the open positions."""
    open_positions = positions[positions["is_open"]]
    families = instruments.set_index("instId")["instFamily"].to_dict()
    frames_: list[pd.DataFrame] = []
    for mgn_mode, group in open_positions.groupby("mgnMode", sort=True):
        wanted = sorted({str(families[i]) for i in group["instId"] if families.get(i)})
        for start in range(0, len(wanted), 5):  # OKX accepts up to 5 families per request
            chunk = ",".join(wanted[start : start + 5])
            rows = client.position_tiers("SWAP", str(mgn_mode), inst_family=chunk)
            tier_frame = frames.parse_position_tiers(rows)
            tier_frame["tdMode"] = str(mgn_mode)
            frames_.append(tier_frame)
    if not frames_:
        empty = frames.parse_position_tiers([])
        empty["tdMode"] = pd.Series([], dtype="str")
        return empty
    return pd.concat(frames_, ignore_index=True)
