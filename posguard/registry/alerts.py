"""What each account's last validation alerted on (to alert once per standing failure)."""

from __future__ import annotations

import json

from sqlalchemy import Connection, select

from posguard.registry import schema as S
from posguard.registry.database import Database, now_ms

# (expectation, instId, posSide, mgnMode)
FailureKey = tuple[str, str, str, str]


def read_alerted(connection: Connection, account: str) -> set[FailureKey]:
    t = S.expectation_alerts.c
    found = connection.execute(select(t.failing).where(t.account == account)).first()
    if found is None:
        return set()
    return {(str(a), str(b), str(c), str(d)) for a, b, c, d in json.loads(found[0])}


def save_alerted(
    db: Database, connection: Connection, account: str, failing: set[FailureKey]
) -> None:
    text = json.dumps(sorted(failing))
    statement = db.insert(S.expectation_alerts).values(
        account=account, failing=text, updated_at_ms=now_ms()
    )
    connection.execute(
        statement.on_conflict_do_update(
            index_elements=["account"],
            set_={"failing": text, "updated_at_ms": statement.excluded.updated_at_ms},
        )
    )
