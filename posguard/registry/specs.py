"""Instrument specs as fetched; a row is added only when a spec changed."""

from __future__ import annotations

from typing import Any

import pandas as pd
from sqlalchemy import Connection, and_, insert, select

from posguard.registry import schema as S
from posguard.registry.positions import decimal_text

FIELDS = {
    "ct_type": "ctType",
    "ct_val": "ctVal",
    "ct_mult": "ctMult",
    "lot_sz": "lotSz",
    "min_sz": "minSz",
    "tick_sz": "tickSz",
    "max_lever": "maxLever",
    "state": "state",
}
TEXT_FIELDS = ("ct_type", "state")


def record_instruments(
    connection: Connection, environment: str, instruments: pd.DataFrame, at_ms: int
) -> int:
    latest: dict[str, dict[str, Any]] = {}
    t = S.instrument_specs.c
    for row in connection.execute(
        select(S.instrument_specs)
        .where(t.environment == environment)
        .order_by(t.fetched_at_ms, t.id)
    ).mappings():
        latest[row["inst_id"]] = dict(row)
    added: list[dict[str, Any]] = []
    for record in instruments.to_dict("records"):
        values = {
            column: (
                None
                if pd.isna(record.get(name))
                else (
                    str(record[name]) if column in TEXT_FIELDS else decimal_text(record[name], name)
                )
            )
            for column, name in FIELDS.items()
        }
        previous = latest.get(str(record["instId"]))
        if previous is None or any(previous[c] != v for c, v in values.items()):
            added.append(
                {
                    "environment": environment,
                    "inst_id": str(record["instId"]),
                    "fetched_at_ms": at_ms,
                    **values,
                }
            )
    if added:
        connection.execute(insert(S.instrument_specs), added)
    return len(added)


def instrument_history(
    connection: Connection, environment: str, inst_id: str
) -> list[dict[str, Any]]:
    t = S.instrument_specs.c
    return [
        dict(r)
        for r in connection.execute(
            select(S.instrument_specs)
            .where(and_(t.environment == environment, t.inst_id == inst_id))
            .order_by(t.fetched_at_ms, t.id)
        ).mappings()
    ]
