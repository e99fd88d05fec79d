"""When a round's periodic jobs last ran (an account's leverage plan, an environment's
instruments check), claimed atomically so that one process of a team runs each when due."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import Connection, delete

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
    done at `now_ms`. One statement, keys in one order: a worker racing this one claims none
    of them (PostgreSQL re-checks the condition on the row it waited for; SQLite writes one
    at a time), and two workers cannot deadlock (an UPDATE then an INSERT, each locking some
    rows, did on PostgreSQL when the workers' clocks disagreed on which keys were due)."""
    if not keys:
        return set()
    t = S.schedule_marks.c
    statement = db.insert(S.schedule_marks).values(
        [{"job": job, "key": k, "done_at_ms": now_ms} for k in sorted(set(keys))]
    )
    claimed = connection.execute(
        statement.on_conflict_do_update(
            index_elements=["job", "key"],
            set_={"done_at_ms": statement.excluded.done_at_ms},
            where=t.done_at_ms <= now_ms - every_ms,
        ).returning(t.key)
    )
    return {str(k) for (k,) in claimed}


def give_back(connection: Connection, job: str, keys: Collection[str]) -> None:
    """Forget that `job` was done for `keys` (claimed, then the work failed): due again at
    once, for whichever worker runs the next round."""
    if keys:
        t = S.schedule_marks.c
        connection.execute(delete(S.schedule_marks).where(t.job == job, t.key.in_(list(keys))))
