"""Reading one account's state from OKX: the I/O half of the fetch stage.

A snapshot is all or nothing: when the positions call fails the error propagates (the
cycle is "not observed", never "flat"). leverage-info is asked only for open positions whose
`lever` is "", per mgnMode in batches; a refused batch is retried per instrument so one bad
instrument cannot hide the others' leverage.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import pandas as pd

from posguard import frames
from posguard.errors import RejectedError
from posguard.frames import AccountConfig
from posguard.leverage import resolve_leverage
from posguard.okx import OkxClient, Record

logger = logging.getLogger("posguard.snapshot")


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


def fetch_snapshot(
    client: OkxClient, *, inst_type: str | None = "SWAP", config: AccountConfig | None = None
) -> AccountSnapshot:
    account = client.account_name or "public"
    if config is None:
        config = frames.parse_account_config([client.account_config()])
    started = client.now_ms()
    positions = frames.parse_positions(client.positions(inst_type=inst_type), account=account)
    leverage_info, failures = fetch_leverage_info(client, positions)
    resolved = resolve_leverage(
        positions,
        leverage_info,
        failures=failures,
        portfolio_margin=config.portfolio_margin,
    )
    return AccountSnapshot(account, started, config, resolved, leverage_info, failures)
