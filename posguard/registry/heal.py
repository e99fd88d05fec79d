"""Carrying out the `heal` policy: compare-and-set writes that lose to the bot."""

from __future__ import annotations

from dataclasses import replace

from posguard.drift import DriftEvent, EngineMemory, HealAction
from posguard.drift.model import key_text
from posguard.registry.store import Registry


def apply_heals(
    registry: Registry, heals: list[HealAction], memory: EngineMemory, at_ms: int
) -> list[DriftEvent]:
    """Apply each heal; returns a `healed` event, or a `resolved` one when the bot won.

    Either way the engine forgets the discrepancy: the next cycle judges the key afresh
    against whatever the registry now holds.
    """
    events: list[DriftEvent] = []
    for heal in heals:
        written = registry.compare_and_set(
            heal.account,
            heal.key,
            heal.expected_version,
            pos=heal.pos,
            avg_px=heal.avg_px,
            lever=heal.lever,
            pos_id=heal.pos_id,
            c_time=heal.c_time,
            at_ms=at_ms,
            by="posguard-heal",
        )
        confirmed = heal.event
        if written:
            evidence = {
                **confirmed.evidence,
                "heal": {
                    "wrote": {"pos": heal.pos, "lever": heal.lever},
                    "expected_version": heal.expected_version,
                    "confirmed_event": confirmed.id,
                },
            }
            events.append(
                DriftEvent.make(
                    confirmed.at_ms,
                    confirmed.account,
                    heal.key,
                    confirmed.kind,
                    "healed",
                    confirmed.cause,
                    evidence,
                )
            )
        else:
            current = registry.row(heal.account, heal.key)
            evidence = {
                **confirmed.evidence,
                "heal": {
                    "conflict": "the bot wrote this position meanwhile; its write wins",
                    "expected_version": heal.expected_version,
                    "found_version": None if current is None else current["version"],
                    "confirmed_event": confirmed.id,
                },
            }
            events.append(
                DriftEvent.make(
                    confirmed.at_ms,
                    confirmed.account,
                    heal.key,
                    confirmed.kind,
                    "resolved",
                    "registry_lag",
                    evidence,
                    salt="heal-conflict",
                )
            )
        memory.pending.pop(key_text(heal.key), None)
    return [replace(e) for e in events]
