"""OKX payloads -> typed pandas frames: the one place strings become numbers."""

from posguard.frames.detect import detect_entity, parse_records
from posguard.frames.parse import (
    AccountConfig,
    parse_account_config,
    parse_candles,
    parse_fills,
    parse_instruments,
    parse_leverage_info,
    parse_position_tiers,
    parse_positions,
    parse_positions_history,
    parse_server_time,
)

__all__ = [
    "AccountConfig",
    "detect_entity",
    "parse_account_config",
    "parse_candles",
    "parse_fills",
    "parse_instruments",
    "parse_leverage_info",
    "parse_position_tiers",
    "parse_positions",
    "parse_positions_history",
    "parse_records",
    "parse_server_time",
]
