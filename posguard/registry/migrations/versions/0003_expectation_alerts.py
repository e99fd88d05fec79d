"""What each account's last validation alerted on, in its own table.

Before, a cycle found it by reading every run summary of the account (a cycle's cost grew with
the account's age). Accounts start with nothing remembered: a standing failure alerts once more
after the upgrade.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "expectation_alerts",
        sa.Column("account", sa.String(128), primary_key=True),
        sa.Column("failing", sa.Text, nullable=False),
        sa.Column("updated_at_ms", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("expectation_alerts")
