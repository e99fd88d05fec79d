"""The position registry: what the bot believes, what posguard found, and what it changed.

`Registry` is the one interface callers use; each table's queries live in their own module
(positions, drift, specs, runs), over one `Database`. Every method is one transaction;
`cycle()` gives one reconciliation cycle a single transaction for everything it reads and
writes, so heal writes, the engine's memory and the events commit together or not at all.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import pandas as pd
from sqlalchemy import Connection

from posguard.drift import DriftEvent, EngineMemory, HealAction
from posguard.drift.model import Key
from posguard.errors import ConflictError
from posguard.registry import alerts, drift, marks, positions, runs, specs
from posguard.registry.alerts import FailureKey
from posguard.registry.database import Clock, Database, now_ms, sqlite_url

__all__ = ["CycleTransaction", "Registry", "now_ms", "sqlite_url"]


class CycleTransaction:
    """One cycle's view of one account, inside one write transaction."""

    def __init__(self, db: Database, connection: Connection, account: str) -> None:
        self._db = db
        self._connection = connection
        self.account = account

    def memory(self) -> tuple[EngineMemory, int]:
        return drift.load_memory(self._connection, self.account, lock=True)

    def clock_ms(self) -> int:
        return self._db.now_ms(self._connection)

    def positions(self) -> pd.DataFrame:
        return positions.frame(positions.read_rows(self._connection, self.account))

    def heal(self, action: HealAction, *, by: str = "posguard-heal") -> None:
        """Write a heal with compare-and-set; `ConflictError` when the bot wrote first."""
        key = positions.checked_key(action.account, *action.key)
        values = positions.row_values(
            self._db,
            key,
            pos=action.pos,
            avg_px=action.avg_px,
            lever=action.lever,
            pos_id=action.pos_id,
            c_time=action.c_time,
            at_ms=None,
            by=by,
        )
        if action.expected_version is None:
            written = positions.insert_row(self._db, self._connection, key, values)
        else:
            written = positions.update_row(self._connection, key, action.expected_version, values)
        if not written:
            raise ConflictError(
                f"registry: {action.key[0]} {action.key[1]} {action.key[2]} of {action.account} "
                f"changed after it was read (expected version {action.expected_version}); "
                f"the cycle is decided again"
            )

    def save_memory(self, memory: EngineMemory, expected_version: int) -> None:
        if not drift.save_memory(
            self._db, self._connection, self.account, memory, expected_version
        ):
            raise ConflictError(
                f"registry: the engine memory of {self.account} was saved by another cycle "
                f"meanwhile; the cycle is decided again"
            )

    def append_events(
        self, events: Iterable[DriftEvent], *, run_id: str | None = None
    ) -> list[DriftEvent]:
        return drift.append_events(self._db, self._connection, events, run_id=run_id)


class Registry:
    """One registry database. Cheap to keep open; thread-safe (SQLAlchemy pools)."""

    def __init__(self, url: str, *, migrate: bool = True, clock: Clock | None = None) -> None:
        self.db = Database(url, clock=clock)
        self.url = url
        self.safe_url = self.db.safe_url
        self.dialect = self.db.dialect
        if migrate:
            self.db.migrate()

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def migrate(self) -> None:
        self.db.migrate()

    def clock_ms(self) -> int:
        """The registry's clock (see `Database.now_ms`)."""
        return self.db.now_ms()

    @contextmanager
    def cycle(self, account: str) -> Iterator[CycleTransaction]:
        with self.db.write(f"reconciliation cycle of {account}") as connection:
            yield CycleTransaction(self.db, connection, account)

    # -- the bot's side of the contract -------------------------------------------------------

    def write(
        self,
        account: str,
        inst_id: str,
        *,
        pos_side: str = "net",
        mgn_mode: str = "cross",
        pos: object,
        avg_px: object = None,
        lever: object = None,
        pos_id: str | None = None,
        c_time: int | None = None,
        at_ms: int | None = None,
        by: str = "bot",
    ) -> int:
        """Record the bot's belief for one position (unconditional); returns the new version.

        `pos` "0" records a close. Fields left None keep their stored value. `at_ms` is the
        writer's own time (kept, shown); the registry stamps the write with its own clock.
        """
        key = positions.checked_key(account, inst_id, pos_side, mgn_mode)
        values = positions.row_values(
            self.db,
            key,
            pos=pos,
            avg_px=avg_px,
            lever=lever,
            pos_id=pos_id,
            c_time=c_time,
            at_ms=at_ms,
            by=by,
        )
        with self.db.write("record position") as connection:
            return positions.write(self.db, connection, key, values)

    def write_many(
        self,
        rows: Iterable[dict[str, Any]],
        *,
        progress: Callable[[int], None] | None = None,
    ) -> int:
        """`write` for many rows in one transaction (an import, a fresh registry): all of
        them land or none does. Each dict holds `write`'s arguments; returns the count.
        `progress` hears how many rows were written, batch by batch (before the commit)."""
        with self.db.write("record positions") as connection:
            return positions.write_many(self.db, connection, rows, progress=progress)

    def record_open(self, account: str, inst_id: str, **fields: Any) -> int:
        return self.write(account, inst_id, **fields)

    def record_change(self, account: str, inst_id: str, **fields: Any) -> int:
        return self.write(account, inst_id, **fields)

    def record_close(
        self,
        account: str,
        inst_id: str,
        *,
        pos_side: str = "net",
        mgn_mode: str = "cross",
        at_ms: int | None = None,
    ) -> int:
        return self.write(
            account, inst_id, pos_side=pos_side, mgn_mode=mgn_mode, pos="0", at_ms=at_ms
        )

    def compare_and_set(
        self,
        account: str,
        key: Key,
        expected_version: int | None,
        *,
        pos: str,
        avg_px: str | None = None,
        lever: str | None = None,
        pos_id: str | None = None,
        c_time: int | None = None,
        at_ms: int | None = None,
        by: str = "posguard",
    ) -> bool:
        """Write only if the row is still at `expected_version` (None: still absent)."""
        full_key = positions.checked_key(account, *key)
        values = positions.row_values(
            self.db,
            full_key,
            pos=pos,
            avg_px=avg_px,
            lever=lever,
            pos_id=pos_id,
            c_time=c_time,
            at_ms=at_ms,
            by=by,
        )
        with self.db.write("compare-and-set position") as connection:
            if expected_version is None:
                return positions.insert_row(self.db, connection, full_key, values)
            return positions.update_row(connection, full_key, expected_version, values)

    # -- reading -------------------------------------------------------------------------------

    def row(self, account: str, key: Key) -> dict[str, Any] | None:
        with self.db.read("read position") as connection:
            return positions.read_row(connection, (account, *key))

    def rows(self, account: str | None = None) -> list[dict[str, Any]]:
        with self.db.read("read positions") as connection:
            return positions.read_rows(connection, account)

    def positions(self, account: str) -> pd.DataFrame:
        """The account's rows in the drift engine's registry shape (REGISTRY_COLUMNS)."""
        return positions.frame(self.rows(account))

    # -- drift events and the engine's memory -------------------------------------------------

    def append_events(
        self, events: Iterable[DriftEvent], *, run_id: str | None = None
    ) -> list[DriftEvent]:
        """Store events once each; returns those that were new."""
        with self.db.write("append drift events") as connection:
            return drift.append_events(self.db, connection, events, run_id=run_id)

    def events(self, account: str | None = None) -> list[dict[str, Any]]:
        with self.db.read("read drift events") as connection:
            return drift.read_events(connection, account)

    def load_memory(self, account: str) -> tuple[EngineMemory, int]:
        with self.db.read("read engine state") as connection:
            return drift.load_memory(connection, account)

    def memory_saved_at(self, account: str) -> int | None:
        """When a cycle last saved the account's memory (host clock); None: never."""
        with self.db.read("read engine state") as connection:
            return drift.memory_saved_at(connection, account)

    def save_memory(self, account: str, memory: EngineMemory, expected_version: int) -> bool:
        """Compare-and-set the engine's memory; False when another run saved first."""
        with self.db.write("save engine state") as connection:
            return drift.save_memory(self.db, connection, account, memory, expected_version)

    # -- instruments, leverage changes, runs ----------------------------------------------------

    def record_instruments(
        self, environment: str, instruments: pd.DataFrame, at_ms: int | None = None
    ) -> int:
        """Store specs that changed since the last fetch; returns how many rows were added."""
        with self.db.write("record instrument specs") as connection:
            return specs.record_instruments(
                connection, environment, instruments, at_ms if at_ms is not None else now_ms()
            )

    def instrument_history(self, environment: str, inst_id: str) -> list[dict[str, Any]]:
        with self.db.read("read instrument history") as connection:
            return specs.instrument_history(connection, environment, inst_id)

    def record_leverage_change(
        self,
        *,
        account: str,
        inst_id: str,
        mgn_mode: str,
        pos_side: str,
        from_lever: str | None,
        to_lever: str | None,
        outcome: str,
        code: str | None = None,
        reason: str | None = None,
        at_ms: int | None = None,
        run_id: str | None = None,
    ) -> None:
        with self.db.write("record leverage change") as connection:
            runs.record_leverage_change(
                connection,
                {
                    "account": account,
                    "inst_id": inst_id,
                    "mgn_mode": mgn_mode,
                    "pos_side": pos_side,
                    "from_lever": from_lever,
                    "to_lever": to_lever,
                    "outcome": outcome,
                    "code": code,
                    "reason": reason,
                    "at_ms": at_ms if at_ms is not None else now_ms(),
                    "run_id": run_id,
                },
            )

    def leverage_changes(self, account: str | None = None) -> list[dict[str, Any]]:
        with self.db.read("read leverage changes") as connection:
            return runs.read_leverage_changes(connection, account)

    def start_run(self, run_id: str, account: str, flow: str) -> None:
        with self.db.write("record run start") as connection:
            runs.start_run(self.db, connection, run_id, account, flow)

    def finish_run(self, run_id: str, status: str, summary: dict[str, Any]) -> None:
        with self.db.write("record run end") as connection:
            runs.finish_run(connection, run_id, status, summary)

    def runs(self, account: str | None = None) -> list[dict[str, Any]]:
        with self.db.read("read runs") as connection:
            return runs.read_runs(connection, account)

    def record_run(
        self, run_id: str, account: str, flow: str, status: str, summary: dict[str, Any]
    ) -> None:
        """A run that is over, recorded in one transaction (its start kept if recorded)."""
        with self.db.write("record run") as connection:
            runs.start_run(self.db, connection, run_id, account, flow)
            runs.finish_run(connection, run_id, status, summary)

    def run_statuses(self, run_ids: list[str]) -> dict[str, str]:
        """The status of each of these runs that was recorded (by primary key: O(ids))."""
        with self.db.read("read run statuses") as connection:
            return runs.read_statuses(connection, run_ids)

    def alerted_failures(self, account: str) -> set[FailureKey]:
        """The failing expectation rows the account's last validation alerted on."""
        with self.db.read("read alerted failures") as connection:
            return alerts.read_alerted(connection, account)

    def save_alerted_failures(self, account: str, failing: set[FailureKey]) -> None:
        with self.db.write("record alerted failures") as connection:
            alerts.save_alerted(self.db, connection, account, failing)

    def claim_due(self, job: str, keys: Collection[str], every_seconds: float) -> set[str]:
        """The keys whose periodic `job` is due now, marked done: across every process that
        shares this registry, each key is claimed once per `every_seconds`."""
        with self.db.write(f"claim the due {job} jobs") as connection:
            return marks.claim_due(
                self.db,
                connection,
                job,
                keys,
                int(every_seconds * 1000),
                self.db.now_ms(connection),
            )

    def give_back_due(self, job: str, keys: Collection[str]) -> None:
        """The claims of `keys` whose work failed: due again at the next round."""
        with self.db.write(f"give back the {job} jobs") as connection:
            marks.give_back(connection, job, keys)
