"""The registry's database: connections, transactions, migrations, its clock, its errors.

SQLite file by default, PostgreSQL by URL (`postgresql+psycopg://...`). Every foreign error
(SQLAlchemy, the driver) becomes a `RegistryError` naming the operation and the database.

Write transactions on SQLite begin IMMEDIATE: the writer holds the database's write lock from
its first read, so a cycle's read-decide-write cannot interleave with another writer (the
bot's writes wait on the busy timeout instead). PostgreSQL serializes one account's cycles
with a row lock on its engine state and relies on compare-and-set for the bot's rows.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from posguard.errors import ConfigError, RegistryError

_migrated: set[str] = set()
_migrate_lock = threading.Lock()
Clock = Callable[[], int]


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


class Database:
    """One registry database. Cheap to keep open; thread-safe (SQLAlchemy pools)."""

    def __init__(self, url: str, *, clock: Clock | None = None) -> None:
        try:
            parsed = make_url(url)
        except ArgumentError as exc:
            raise ConfigError(f"registry URL {url!r} is not a database URL: {exc}") from None
        self.url = url
        self.safe_url = parsed.render_as_string(hide_password=True)
        self.dialect = parsed.get_backend_name()
        # Replays and the soak run on a simulated clock; the registry's times follow it.
        self.clock = clock
        options: dict[str, Any] = {"future": True, "pool_pre_ping": True}
        if self.dialect == "sqlite":
            database = parsed.database or ""
            if database and database != ":memory:":
                Path(database).parent.mkdir(parents=True, exist_ok=True)
            options["connect_args"] = {"timeout": 30}
        self.engine: Engine = create_engine(url, **options)
        if self.dialect == "sqlite":
            event.listen(self.engine, "connect", _sqlite_connect)
            event.listen(self.engine, "begin", _sqlite_begin)

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _translated(self, operation: str) -> Iterator[None]:
        try:
            yield
        except SQLAlchemyError as exc:
            raise RegistryError(
                f"registry {self.safe_url}: {operation} failed ({type(exc).__name__}: "
                f"{str(exc).splitlines()[0][:200]}); check that the database is reachable "
                f"and migrated"
            ) from exc

    @contextmanager
    def write(self, operation: str) -> Iterator[Connection]:
        """A transaction that writes: all of it commits, or none of it."""
        with self._translated(operation), self.engine.connect() as connection:
            connection = connection.execution_options(posguard_immediate=True)
            with connection.begin():
                yield connection

    @contextmanager
    def read(self, operation: str) -> Iterator[Connection]:
        with self._translated(operation), self.engine.begin() as connection:
            yield connection

    def insert(self, table: sa.Table) -> Any:
        return pg_insert(table) if self.dialect == "postgresql" else sqlite_insert(table)

    def now_ms(self, connection: Connection | None = None) -> int:
        """The registry's clock: the one every write's `recorded_at_ms` is stamped with.

        PostgreSQL's server clock (shared by every writer on every host); SQLite's writers
        share this host's clock."""
        if self.clock is not None:
            return self.clock()
        if self.dialect != "postgresql":
            return now_ms()
        statement = sa.select(_pg_clock_ms())
        if connection is not None:
            return int(connection.execute(statement).scalar_one())
        with self.read("read the database clock") as opened:
            return int(opened.execute(statement).scalar_one())

    def recorded_at(self) -> Any:
        """The value for a row's `recorded_at_ms`: evaluated by the database where it can."""
        if self.clock is None and self.dialect == "postgresql":
            return _pg_clock_ms()
        return self.now_ms()

    def migrate(self) -> None:
        """Bring the schema to the newest revision (Alembic), once per process and URL."""
        with _migrate_lock:
            if self.url in _migrated:
                return
            config = Config()
            location = resources.files("posguard.registry").joinpath("migrations")
            config.set_main_option("script_location", str(location))
            with self.write("schema migration") as connection:
                config.attributes["connection"] = connection
                command.upgrade(config, "head")
            _migrated.add(self.url)


def _pg_clock_ms() -> Any:
    # clock_timestamp(), not now(): now() is the transaction's start.
    return sa.cast(sa.func.extract("epoch", sa.func.clock_timestamp()) * 1000, sa.BigInteger)


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # posguard issues BEGIN itself (see _sqlite_begin); WAL lets readers and one writer work
    # at once; the busy timeout makes concurrent writers wait instead of failing.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    # In WAL mode NORMAL syncs at checkpoints, not at every commit: a killed process loses
    # nothing it committed and the file never corrupts; only a power cut may drop the last
    # commits, which the next cycle decides again.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _sqlite_begin(connection: Connection) -> None:
    immediate = connection.get_execution_options().get("posguard_immediate", False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
