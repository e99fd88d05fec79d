"""The simulated bot: the scenario's `registry_write` steps, written into a real registry.

The demo and the tests use it to play the bot's side of the contract (its opens and closes
land in the registry at the scenario's times), so the race guard sees real timestamps.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from posguard.registry import Registry


def apply_registry_writes(
    registry: Registry,
    writes: Iterable[Mapping[str, Any]],
    *,
    accounts: Mapping[str, str] | None = None,
) -> int:
    """Write each scenario write; `accounts` maps simulator accounts to posguard's names."""
    count = 0
    for write in writes:
        account = (accounts or {}).get(str(write["account"]), str(write["account"]))
        registry.write(
            account,
            str(write["instId"]),
            pos_side=str(write.get("posSide") or "net"),
            mgn_mode=str(write.get("mgnMode") or "cross"),
            pos=write["pos"],
            avg_px=write.get("avgPx"),
            lever=write.get("lever"),
            at_ms=int(write["at_ms"]),
        )
        count += 1
    return count
