"""When a round's periodic jobs last ran (an account's leverage plan, an environment's
instruments check), claimed atomically so that one process of a team runs each when due."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import Connection, update

from posguard.registry import schema as S
from posguard.registry.database import Database


def claim_due(
    db: Database,
    connection: Connection,
    job: str,
    keys: Collection[str],
    every_ms: int,
    now_ms: int,
) -> set[str]:
    """The keys whose `job` is due (never done, or done at least `every_ms` ago), marked
    done at `now_ms` in the same statement: a worker racing this one claims none of them
    (PostgreSQL re-checks the condition on the row it waited for; SQLite writes one at a
    time)."""
    if not keys:
        return set()
    t = S.schedule_marks.c
    wanted = sorted(set(keys))
    renewed = connection.execute(
        update(S.schedule_marks)
        .where(t.job == job, t.key.in_(wanted), t.done_at_ms <= now_ms - every_ms)
        .values(done_at_ms=now_ms)
        .returning(t.key)
    )
    claimed = {str(k) for (k,) in renewed}
    first = connection.execute(
        db.insert(S.schedule_marks)
        .values([{"job": job, "key": k, "done_at_ms": now_ms} for k in wanted])
        .on_conflict_do_nothing()
        .returning(S.schedule_marks.c.key)
    )
    claimed.update(str(k) for (k,) in first)
    return claimed
