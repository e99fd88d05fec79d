"""The registry's first schema.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "positions",
        sa.Column("account", sa.String(128), primary_key=True),
        sa.Column("inst_id", sa.String(64), primary_key=True),
        sa.Column("pos_side", sa.String(8), primary_key=True),
        sa.Column("mgn_mode", sa.String(16), primary_key=True),
        sa.Column("pos", sa.String(64), nullable=False),
        sa.Column("avg_px", sa.String(64)),
        sa.Column("lever", sa.String(32)),
        sa.Column("pos_id", sa.String(64)),
        sa.Column("c_time", sa.BigInteger),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("updated_at_ms", sa.BigInteger, nullable=False),
        sa.Column("updated_by", sa.String(32), nullable=False),
    )
    op.create_table(
        "drift_events",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("account", sa.String(128), nullable=False),
        sa.Column("inst_id", sa.String(64), nullable=False),
        sa.Column("pos_side", sa.String(8), nullable=False),
        sa.Column("mgn_mode", sa.String(16), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("cause", sa.String(32), nullable=False),
        sa.Column("at_ms", sa.BigInteger, nullable=False),
        sa.Column("evidence", sa.Text, nullable=False),
        sa.Column("run_id", sa.String(64)),
        sa.Column("recorded_at_ms", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_drift_events_account_at", "drift_events", ["account", "at_ms"])
    op.create_table(
        "instrument_specs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("environment", sa.String(128), nullable=False),
        sa.Column("inst_id", sa.String(64), nullable=False),
        sa.Column("fetched_at_ms", sa.BigInteger, nullable=False),
        sa.Column("ct_type", sa.String(16)),
        sa.Column("ct_val", sa.String(64)),
        sa.Column("ct_mult", sa.String(64)),
        sa.Column("lot_sz", sa.String(64)),
        sa.Column("min_sz", sa.String(64)),
        sa.Column("tick_sz", sa.String(64)),
        sa.Column("max_lever", sa.String(32)),
        sa.Column("state", sa.String(16)),
    )
    op.create_index(
        "ix_instrument_specs_env_inst",
        "instrument_specs",
        ["environment", "inst_id", "fetched_at_ms"],
    )
    op.create_table(
        "leverage_changes",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("account", sa.String(128), nullable=False),
        sa.Column("inst_id", sa.String(64), nullable=False),
        sa.Column("mgn_mode", sa.String(16), nullable=False),
        sa.Column("pos_side", sa.String(8), nullable=False),
        sa.Column("from_lever", sa.String(32)),
        sa.Column("to_lever", sa.String(32)),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("code", sa.String(16)),
        sa.Column("reason", sa.Text),
        sa.Column("at_ms", sa.BigInteger, nullable=False),
        sa.Column("run_id", sa.String(64)),
    )
    op.create_table(
        "runs",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("account", sa.String(128), nullable=False),
        sa.Column("flow", sa.String(64), nullable=False),
        sa.Column("started_at_ms", sa.BigInteger, nullable=False),
        sa.Column("finished_at_ms", sa.BigInteger),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("summary", sa.Text),
    )
    op.create_table(
        "engine_state",
        sa.Column("account", sa.String(128), primary_key=True),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("updated_at_ms", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    for table in (
        "engine_state",
        "runs",
        "leverage_changes",
        "instrument_specs",
        "drift_events",
        "positions",
    ):
        op.drop_table(table)
