"""Flow runs as posguard saw them, and the leverage changes it made or was refused."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection, insert, select, update

from posguard.registry import schema as S
from posguard.registry.database import Database, now_ms


def start_run(db: Database, connection: Connection, run_id: str, account: str, flow: str) -> None:
    statement = (
        db.insert(S.runs)
        .values(id=run_id, account=account, flow=flow, started_at_ms=now_ms(), status="running")
        .on_conflict_do_nothing()
    )  # a retried run keeps its first start
    connection.execute(statement)


def finish_run(connection: Connection, run_id: str, status: str, summary: dict[str, Any]) -> None:
    connection.execute(
        update(S.runs)
        .where(S.runs.c.id == run_id)
        .values(
            finished_at_ms=now_ms(),
            status=status,
            summary=json.dumps(summary, sort_keys=True, default=str),
        )
    )


def read_runs(connection: Connection, account: str | None = None) -> list[dict[str, Any]]:
    statement = select(S.runs).order_by(S.runs.c.started_at_ms)
    if account is not None:
        statement = statement.where(S.runs.c.account == account)
    return [dict(r) for r in connection.execute(statement).mappings()]


def read_statuses(connection: Connection, run_ids: list[str]) -> dict[str, str]:
    statement = select(S.runs.c.id, S.runs.c.status).where(S.runs.c.id.in_(run_ids))
    return {str(row.id): str(row.status) for row in connection.execute(statement)}


def record_leverage_change(connection: Connection, values: dict[str, Any]) -> None:
    connection.execute(insert(S.leverage_changes).values(**values))


def read_leverage_changes(
    connection: Connection, account: str | None = None
) -> list[dict[str, Any]]:
    statement = select(S.leverage_changes).order_by(S.leverage_changes.c.id)
    if account is not None:
        statement = statement.where(S.leverage_changes.c.account == account)
    return [dict(r) for r in connection.execute(statement).mappings()]
