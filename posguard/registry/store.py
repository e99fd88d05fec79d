"""The position registry: what the bot believes, what posguard found, and what it changed.

SQLite file by default, PostgreSQL by URL (`postgresql+psycopg://...`). Every foreign error
(SQLAlchemy, the driver) becomes a `RegistryError` naming the operation and the database.
Writes that can race use compare-and-set on `positions.version`; drift events are inserted
with their deterministic id and "do nothing" on conflict, so each lands exactly once.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from decimal import Decimal, InvalidOperation
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd
from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, and_, create_engine, event, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from posguard.drift import REGISTRY_COLUMNS, DriftEvent, EngineMemory
from posguard.drift.model import Key
from posguard.errors import ConfigError, RegistryError
from posguard.registry import schema as S

_migrated: set[str] = set()
_migrate_lock = threading.Lock()


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def _decimal_text(value: object, field: str) -> str | None:
    if value is None or value == "":
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise RegistryError(f"registry: {field} {value!r} is not a decimal number") from None
    if not number.is_finite():
        raise RegistryError(f"registry: {field} {value!r} is not a finite number")
    return format(number.normalize(), "f") if number != 0 else "0"


def _row_values(
    pos: object,
    avg_px: object,
    lever: object,
    pos_id: str | None,
    c_time: int | None,
    at_ms: int | None,
    by: str,
) -> dict[str, Any]:
    """One position row's stored values: decimals as exact text, the write's time and author."""
    return {
        "pos": _decimal_text(pos, "pos") or "0",
        "avg_px": _decimal_text(avg_px, "avgPx"),
        "lever": _decimal_text(lever, "lever"),
        "pos_id": pos_id,
        "c_time": c_time,
        "updated_at_ms": at_ms if at_ms is not None else now_ms(),
        "updated_by": by,
    }


class Registry:
    """One registry database. Cheap to keep open; thread-safe (SQLAlchemy pools)."""

    def __init__(self, url: str, *, migrate: bool = True) -> None:
        try:
            parsed = make_url(url)
        except ArgumentError as exc:
            raise ConfigError(f"registry URL {url!r} is not a database URL: {exc}") from None
        self.url = url
        self.safe_url = parsed.render_as_string(hide_password=True)
        self.dialect = parsed.get_backend_name()
        options: dict[str, Any] = {"future": True, "pool_pre_ping": True}
        if self.dialect == "sqlite":
            database = parsed.database or ""
            if database and database != ":memory:":
                Path(database).parent.mkdir(parents=True, exist_ok=True)
            options["connect_args"] = {"timeout": 30}
        self.engine: Engine = create_engine(url, **options)
        if self.dialect == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        if migrate:
            self.migrate()

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- plumbing ----------------------------------------------------------------------------

    @contextmanager
    def _tx(self, operation: str) -> Iterator[Connection]:
        try:
            with self.engine.begin() as connection:
                yield connection
        except SQLAlchemyError as exc:
            raise RegistryError(
                f"registry {self.safe_url}: {operation} failed ({type(exc).__name__}: "
                f"{str(exc).splitlines()[0][:200]}); check that the database is reachable "
                f"and migrated"
            ) from exc

    def migrate(self) -> None:
        """Bring the schema to the newest revision (Alembic), once per process and URL."""
        with _migrate_lock:
            if self.url in _migrated:
                return
            config = Config()
            location = resources.files("posguard.registry").joinpath("migrations")
            config.set_main_option("script_location", str(location))
            with self._tx("schema migration") as connection:
                config.attributes["connection"] = connection
                command.upgrade(config, "head")
            _migrated.add(self.url)

    def _insert(self, table: Any) -> Any:
        return pg_insert(table) if self.dialect == "postgresql" else sqlite_insert(table)

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

        `pos` "0" records a close. Fields left None keep their stored value.
        """
        key = (account, inst_id, pos_side, mgn_mode)
        values = _row_values(pos, avg_px, lever, pos_id, c_time, at_ms, by)
        for _ in range(20):
            current = self.row(account, (inst_id, pos_side, mgn_mode))
            if current is None:
                if self._insert_row(key, values):
                    return 1
                continue
            merged = {k: v for k, v in values.items() if v is not None}
            if self._cas_update(key, int(current["version"]), merged):
                return int(current["version"]) + 1
        raise RegistryError(
            f"registry: could not record {inst_id} for {account} after 20 concurrent retries"
        )

    def write_many(self, rows: Iterable[dict[str, Any]]) -> int:
        """`write` for many rows at once (an import, a fresh registry): rows whose key is new
        go in one batched insert; the others, and any key another writer inserted meanwhile,
        take the row-by-row path. Each dict holds `write`'s arguments; returns the count."""
        prepared: dict[tuple[str, str, str, str], dict[str, Any]] = {}
        for row in rows:
            key = (
                str(row["account"]),
                str(row["inst_id"]),
                str(row.get("pos_side") or "net"),
                str(row.get("mgn_mode") or "cross"),
            )
            prepared[key] = {
                "account": key[0],
                "inst_id": key[1],
                "pos_side": key[2],
                "mgn_mode": key[3],
                "version": 1,
                **_row_values(
                    row["pos"],
                    row.get("avg_px"),
                    row.get("lever"),
                    row.get("pos_id"),
                    row.get("c_time"),
                    row.get("at_ms"),
                    str(row.get("by") or "bot"),
                ),
            }
        existing = {
            (r["account"], r["inst_id"], r["pos_side"], r["mgn_mode"])
            for account in {k[0] for k in prepared}
            for r in self.rows(account)
        }
        fresh = [values for key, values in prepared.items() if key not in existing]
        t = S.positions.c
        inserted: set[tuple[str, str, str, str]] = set()
        if fresh:
            statement = (
                self._insert(S.positions)
                .on_conflict_do_nothing()
                .returning(t.account, t.inst_id, t.pos_side, t.mgn_mode)
            )
            with self._tx("insert positions") as connection:
                for found in connection.execute(statement, fresh):
                    inserted.add((found[0], found[1], found[2], found[3]))
        for key, values in prepared.items():
            if key in inserted:
                continue
            self.write(
                key[0],
                key[1],
                pos_side=key[2],
                mgn_mode=key[3],
                pos=values["pos"],
                avg_px=values["avg_px"],
                lever=values["lever"],
                pos_id=values["pos_id"],
                c_time=values["c_time"],
                at_ms=values["updated_at_ms"],
                by=values["updated_by"],
            )
        return len(prepared)

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

    def _insert_row(self, key: tuple[str, str, str, str], values: dict[str, Any]) -> bool:
        account, inst_id, pos_side, mgn_mode = key
        # RETURNING tells whether the row was inserted on every driver (psycopg reports
        # rowcount -1 for INSERT ... ON CONFLICT).
        statement = (
            self._insert(S.positions)
            .values(
                account=account,
                inst_id=inst_id,
                pos_side=pos_side,
                mgn_mode=mgn_mode,
                version=1,
                **values,
            )
            .on_conflict_do_nothing()
            .returning(S.positions.c.version)
        )
        with self._tx("insert position") as connection:
            return connection.execute(statement).first() is not None

    def _cas_update(
        self, key: tuple[str, str, str, str], expected: int, values: dict[str, Any]
    ) -> bool:
        account, inst_id, pos_side, mgn_mode = key
        t = S.positions.c
        statement = (
            update(S.positions)
            .where(
                and_(
                    t.account == account,
                    t.inst_id == inst_id,
                    t.pos_side == pos_side,
                    t.mgn_mode == mgn_mode,
                    t.version == expected,
                )
            )
            .values(version=t.version + 1, **values)
        )
        with self._tx("update position") as connection:
            return bool(connection.execute(statement).rowcount == 1)

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
        inst_id, pos_side, mgn_mode = key
        values = _row_values(pos, avg_px, lever, pos_id, c_time, at_ms, by)
        full_key = (account, inst_id, pos_side, mgn_mode)
        if expected_version is None:
            return self._insert_row(full_key, values)
        return self._cas_update(full_key, expected_version, values)

    # -- reading -------------------------------------------------------------------------------

    def row(self, account: str, key: Key) -> dict[str, Any] | None:
        inst_id, pos_side, mgn_mode = key
        t = S.positions.c
        with self._tx("read position") as connection:
            found = (
                connection.execute(
                    select(S.positions).where(
                        and_(
                            t.account == account,
                            t.inst_id == inst_id,
                            t.pos_side == pos_side,
                            t.mgn_mode == mgn_mode,
                        )
                    )
                )
                .mappings()
                .first()
            )
        return dict(found) if found else None

    def rows(self, account: str | None = None) -> list[dict[str, Any]]:
        statement = select(S.positions).order_by(
            S.positions.c.account,
            S.positions.c.inst_id,
            S.positions.c.pos_side,
            S.positions.c.mgn_mode,
        )
        if account is not None:
            statement = statement.where(S.positions.c.account == account)
        with self._tx("read positions") as connection:
            return [dict(r) for r in connection.execute(statement).mappings()]

    def positions(self, account: str) -> pd.DataFrame:
        """The account's rows in the drift engine's registry shape (REGISTRY_COLUMNS)."""
        rows = self.rows(account)
        frame = pd.DataFrame(
            {
                "instId": pd.Series([r["inst_id"] for r in rows], dtype="str"),
                "posSide": pd.Series([r["pos_side"] for r in rows], dtype="str"),
                "mgnMode": pd.Series([r["mgn_mode"] for r in rows], dtype="str"),
                "pos": pd.to_numeric(pd.Series([r["pos"] for r in rows], dtype="object")),
                "avgPx": pd.to_numeric(pd.Series([r["avg_px"] for r in rows], dtype="object")),
                "lever": pd.to_numeric(pd.Series([r["lever"] for r in rows], dtype="object")),
                "version": pd.Series([r["version"] for r in rows], dtype="int64"),
                "updated_at_ms": pd.Series([r["updated_at_ms"] for r in rows], dtype="int64"),
                "posId": pd.Series([r["pos_id"] for r in rows], dtype="str"),
                "cTime": pd.Series([r["c_time"] for r in rows], dtype="Int64"),
            }
        )
        for column in ("pos", "avgPx", "lever"):
            frame[column] = frame[column].astype("float64")
        return frame[REGISTRY_COLUMNS]

    # -- drift events ---------------------------------------------------------------------------

    def append_events(
        self, events: Iterable[DriftEvent], *, run_id: str | None = None
    ) -> list[DriftEvent]:
        """Store events once each; returns those that were new."""
        fresh: list[DriftEvent] = []
        recorded = now_ms()
        with self._tx("append drift events") as connection:
            for drift in events:
                statement = (
                    self._insert(S.drift_events)
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

    def events(self, account: str | None = None) -> list[dict[str, Any]]:
        statement = select(S.drift_events).order_by(S.drift_events.c.at_ms, S.drift_events.c.id)
        if account is not None:
            statement = statement.where(S.drift_events.c.account == account)
        with self._tx("read drift events") as connection:
            rows = [dict(r) for r in connection.execute(statement).mappings()]
        for row in rows:
            row["evidence"] = json.loads(row["evidence"])
        return rows

    # -- the engine's memory -------------------------------------------------------------------

    def load_memory(self, account: str) -> tuple[EngineMemory, int]:
        with self._tx("read engine state") as connection:
            found = (
                connection.execute(
                    select(S.engine_state).where(S.engine_state.c.account == account)
                )
                .mappings()
                .first()
            )
        if found is None:
            return EngineMemory(), 0
        return EngineMemory.from_json(json.loads(found["state"])), int(found["version"])

    def save_memory(self, account: str, memory: EngineMemory, expected_version: int) -> bool:
        """Compare-and-set the engine's memory; False when another run saved first."""
        state = json.dumps(memory.to_json(), sort_keys=True)
        if expected_version == 0:
            statement = (
                self._insert(S.engine_state)
                .values(account=account, state=state, version=1, updated_at_ms=now_ms())
                .on_conflict_do_nothing()
                .returning(S.engine_state.c.version)
            )
            with self._tx("save engine state") as connection:
                return connection.execute(statement).first() is not None
        t = S.engine_state.c
        statement = (
            update(S.engine_state)
            .where(and_(t.account == account, t.version == expected_version))
            .values(state=state, version=t.version + 1, updated_at_ms=now_ms())
        )
        with self._tx("save engine state") as connection:
            return bool(connection.execute(statement).rowcount == 1)

    # -- instruments, leverage changes, runs ----------------------------------------------------

    def record_instruments(
        self, environment: str, instruments: pd.DataFrame, at_ms: int | None = None
    ) -> int:
        """Store specs that changed since the last fetch; returns how many rows were added."""
        fields = {
            "ct_type": "ctType",
            "ct_val": "ctVal",
            "ct_mult": "ctMult",
            "lot_sz": "lotSz",
            "min_sz": "minSz",
            "tick_sz": "tickSz",
            "max_lever": "maxLever",
            "state": "state",
        }
        latest: dict[str, dict[str, Any]] = {}
        t = S.instrument_specs.c
        with self._tx("read instrument specs") as connection:
            for row in connection.execute(
                select(S.instrument_specs)
                .where(t.environment == environment)
                .order_by(t.fetched_at_ms, t.id)
            ).mappings():
                latest[row["inst_id"]] = dict(row)
        stamp = at_ms if at_ms is not None else now_ms()
        added: list[dict[str, Any]] = []
        for record in instruments.to_dict("records"):
            values = {
                column: (
                    None
                    if pd.isna(record.get(name))
                    else (
                        str(record[name])
                        if column in ("ct_type", "state")
                        else _decimal_text(record[name], name)
                    )
                )
                for column, name in fields.items()
            }
            previous = latest.get(str(record["instId"]))
            if previous is None or any(previous[c] != v for c, v in values.items()):
                added.append(
                    {
                        "environment": environment,
                        "inst_id": str(record["instId"]),
                        "fetched_at_ms": stamp,
                        **values,
                    }
                )
        if added:
            with self._tx("record instrument specs") as connection:
                connection.execute(insert(S.instrument_specs), added)
        return len(added)

    def instrument_history(self, environment: str, inst_id: str) -> list[dict[str, Any]]:
        t = S.instrument_specs.c
        with self._tx("read instrument history") as connection:
            return [
                dict(r)
                for r in connection.execute(
                    select(S.instrument_specs)
                    .where(and_(t.environment == environment, t.inst_id == inst_id))
                    .order_by(t.fetched_at_ms, t.id)
                ).mappings()
            ]

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
        with self._tx("record leverage change") as connection:
            connection.execute(
                insert(S.leverage_changes).values(
                    account=account,
                    inst_id=inst_id,
                    mgn_mode=mgn_mode,
                    pos_side=pos_side,
                    from_lever=from_lever,
                    to_lever=to_lever,
                    outcome=outcome,
                    code=code,
                    reason=reason,
                    at_ms=at_ms if at_ms is not None else now_ms(),
                    run_id=run_id,
                )
            )

    def leverage_changes(self, account: str | None = None) -> list[dict[str, Any]]:
        statement = select(S.leverage_changes).order_by(S.leverage_changes.c.id)
        if account is not None:
            statement = statement.where(S.leverage_changes.c.account == account)
        with self._tx("read leverage changes") as connection:
            return [dict(r) for r in connection.execute(statement).mappings()]

    def start_run(self, run_id: str, account: str, flow: str) -> None:
        statement = (
            self._insert(S.runs)
            .values(id=run_id, account=account, flow=flow, started_at_ms=now_ms(), status="running")
            .on_conflict_do_nothing()
        )  # a retried run keeps its first start
        with self._tx("record run start") as connection:
            connection.execute(statement)

    def finish_run(self, run_id: str, status: str, summary: dict[str, Any]) -> None:
        with self._tx("record run end") as connection:
            connection.execute(
                update(S.runs)
                .where(S.runs.c.id == run_id)
                .values(
                    finished_at_ms=now_ms(),
                    status=status,
                    summary=json.dumps(summary, sort_keys=True, default=str),
                )
            )

    def runs(self, account: str | None = None) -> list[dict[str, Any]]:
        statement = select(S.runs).order_by(S.runs.c.started_at_ms)
        if account is not None:
            statement = statement.where(S.runs.c.account == account)
        with self._tx("read runs") as connection:
            return [dict(r) for r in connection.execute(statement).mappings()]


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers and one writer work at once; the busy timeout makes concurrent
    # writers wait instead of failing with "database is locked".
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()
