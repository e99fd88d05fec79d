"""Positions record when the registry received each write, on its own clock.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("positions") as batch:
        batch.add_column(sa.Column("recorded_at_ms", sa.BigInteger, nullable=True))
    # Rows written before this revision: the writer's own time is all there is.
    op.execute("UPDATE positions SET recorded_at_ms = updated_at_ms")


def downgrade() -> None:
    with op.batch_alter_table("positions") as batch:
        batch.drop_column("recorded_at_ms")
