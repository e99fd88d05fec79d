"""The registry's tables (SQLAlchemy Core). Decimals are stored as text: exact, portable."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

# The bot's believed positions: one row per key; pos "0" means closed. `version` is the
# compare-and-set token: every write increments it. `updated_at_ms` is the writer's own time;
# `recorded_at_ms` the registry's clock when the write landed (what the race guard uses).
positions = Table(
    "positions",
    metadata,
    Column("account", String(128), primary_key=True),
    Column("inst_id", String(64), primary_key=True),
    Column("pos_side", String(8), primary_key=True),
    Column("mgn_mode", String(16), primary_key=True),
    Column("pos", String(64), nullable=False),
    Column("avg_px", String(64)),
    Column("lever", String(32)),
    Column("pos_id", String(64)),
    Column("c_time", BigInteger),
    Column("version", Integer, nullable=False),
    Column("updated_at_ms", BigInteger, nullable=False),
    Column("updated_by", String(32), nullable=False),
    Column("recorded_at_ms", BigInteger),
)

# Append-only: a deterministic id makes every event land once.
drift_events = Table(
    "drift_events",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("account", String(128), nullable=False),
    Column("inst_id", String(64), nullable=False),
    Column("pos_side", String(8), nullable=False),
    Column("mgn_mode", String(16), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("cause", String(32), nullable=False),
    Column("at_ms", BigInteger, nullable=False),
    Column("evidence", Text, nullable=False),
    Column("run_id", String(64)),
    Column("recorded_at_ms", BigInteger, nullable=False),
    Index("ix_drift_events_account_at", "account", "at_ms"),
)

# Instrument specs as fetched; a row is added only when a spec changed.
instrument_specs = Table(
    "instrument_specs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("environment", String(128), nullable=False),
    Column("inst_id", String(64), nullable=False),
    Column("fetched_at_ms", BigInteger, nullable=False),
    Column("ct_type", String(16)),
    Column("ct_val", String(64)),
    Column("ct_mult", String(64)),
    Column("lot_sz", String(64)),
    Column("min_sz", String(64)),
    Column("tick_sz", String(64)),
    Column("max_lever", String(32)),
    Column("state", String(16)),
    Index("ix_instrument_specs_env_inst", "environment", "inst_id", "fetched_at_ms"),
)

leverage_changes = Table(
    "leverage_changes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("account", String(128), nullable=False),
    Column("inst_id", String(64), nullable=False),
    Column("mgn_mode", String(16), nullable=False),
    Column("pos_side", String(8), nullable=False),
    Column("from_lever", String(32)),
    Column("to_lever", String(32)),
    Column("outcome", String(16), nullable=False),  # applied | refused | failed | unchanged
    Column("code", String(16)),
    Column("reason", Text),
    Column("at_ms", BigInteger, nullable=False),
    Column("run_id", String(64)),
)

runs = Table(
    "runs",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("account", String(128), nullable=False),
    Column("flow", String(64), nullable=False),
    Column("started_at_ms", BigInteger, nullable=False),
    Column("finished_at_ms", BigInteger),
    Column("status", String(16), nullable=False),
    Column("summary", Text),
)

# The drift engine's memory between cycles (pending discrepancies, last snapshot time).
engine_state = Table(
    "engine_state",
    metadata,
    Column("account", String(128), primary_key=True),
    Column("state", Text, nullable=False),
    Column("version", Integer, nullable=False),
    Column("updated_at_ms", BigInteger, nullable=False),
)

# What each account's last validation alerted on, so a standing failure alerts once. One row
# per account: a cycle reads it in constant time, however long the account has run.
expectation_alerts = Table(
    "expectation_alerts",
    metadata,
    Column("account", String(128), primary_key=True),
    Column("failing", Text, nullable=False),  # JSON list of [expectation, instId, posSide, mgnMode]
    Column("updated_at_ms", BigInteger, nullable=False),
)

# When a round's periodic job last ran for a key (an account's leverage plan, an environment's
# instruments check). In the registry, not in a worker's memory: every worker and host of a
# team shares it, so a job runs once per period however many processes run rounds.
schedule_marks = Table(
    "schedule_marks",
    metadata,
    Column("job", String(32), primary_key=True),
    Column("key", String(128), primary_key=True),
    Column("done_at_ms", BigInteger, nullable=False),
)
