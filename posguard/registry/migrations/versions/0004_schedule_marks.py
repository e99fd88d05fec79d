"""When a round's periodic jobs last ran, shared by every worker (`schedule_marks`).

Before, each worker process remembered it: with several workers a round planned an
account's leverage whenever it landed on a worker that had not planned it lately, up to once
per worker per period. Registries start with no marks: each job is due once after the upgrade.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "schedule_marks",
        sa.Column("job", sa.String(32), primary_key=True),
        sa.Column("key", sa.String(128), primary_key=True),
        sa.Column("done_at_ms", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("schedule_marks")
