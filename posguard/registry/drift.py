"""Drift events (append-only, each once by its deterministic id) and the engine's memory."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, and_, select, update

from posguard.drift import DriftEvent, EngineMemory
from posguard.registry import schema as S
from posguard.registry.database import Database, now_ms


def append_events(
    db: Database,
    connection: Connection,
    events: Iterable[DriftEvent],
    *,
    run_id: str | None = None,
) -> list[DriftEvent]:
    """Store events once each; returns those that were new."""
    fresh: list[DriftEvent] = []
    recorded = now_ms()
    for drift in events:
        statement = (
            db.insert(S.drift_events)
            .values(
                id=drift.id,
                account=drift.account,
                inst_id=drift.inst_id,
                pos_side=drift.pos_side,
                mgn_mode=drift.mgn_mode,
                kind=drift.kind,
                status=drift.status,
                cause=drift.cause,
                at_ms=drift.at_ms,
                evidence=json.dumps(drift.evidence, sort_keys=True, default=str),
                run_id=run_id,
                recorded_at_ms=recorded,
            )
            .on_conflict_do_nothing()
            .returning(S.drift_events.c.id)
        )
        if connection.execute(statement).first() is not None:
            fresh.append(drift)
    return fresh


def read_events(connection: Connection, account: str | None = None) -> list[dict[str, Any]]:
    t = S.drift_events.c
    statement = select(S.drift_events).order_by(t.at_ms, t.recorded_at_ms, t.id)
    if account is not None:
        statement = statement.where(t.account == account)
    rows = [dict(r) for r in connection.execute(statement).mappings()]
    for row in rows:
        row["evidence"] = json.loads(row["evidence"])
    return rows


def load_memory(
    connection: Connection, account: str, *, lock: bool = False
) -> tuple[EngineMemory, int]:
    """The account's memory and its version (0: none saved yet). `lock` holds the row until
    the transaction ends, so one account's cycles run one after the other (PostgreSQL;
    SQLite's write transactions are serialized already)."""
    statement = select(S.engine_state).where(S.engine_state.c.account == account)
    if lock and connection.dialect.name == "postgresql":
        statement = statement.with_for_update()
    found = connection.execute(statement).mappings().first()
    if found is None:
        return EngineMemory(), 0
    return EngineMemory.from_json(json.loads(found["state"])), int(found["version"])


def memory_saved_at(connection: Connection, account: str) -> int | None:
    """When the account's memory was last saved (this host's clock, as `save_memory` stamps
    it): the last cycle that drew a conclusion. None: no cycle saved one yet."""
    statement = select(S.engine_state.c.updated_at_ms).where(S.engine_state.c.account == account)
    found = connection.execute(statement).scalar_one_or_none()
    return None if found is None else int(found)


def save_memory(
    db: Database,
    connection: Connection,
    account: str,
    memory: EngineMemory,
    expected_version: int,
) -> bool:
    """Compare-and-set the engine's memory; False when another cycle saved first."""
    state = json.dumps(memory.to_json(), sort_keys=True)
    if expected_version == 0:
        statement = (
            db.insert(S.engine_state)
            .values(account=account, state=state, version=1, updated_at_ms=now_ms())
            .on_conflict_do_nothing()
            .returning(S.engine_state.c.version)
        )
        return connection.execute(statement).first() is not None
    t = S.engine_state.c
    statement = (
        update(S.engine_state)
        .where(and_(t.account == account, t.version == expected_version))
        .values(state=state, version=t.version + 1, updated_at_ms=now_ms())
    )
    return bool(connection.execute(statement).rowcount == 1)
