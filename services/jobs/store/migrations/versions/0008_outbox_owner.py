"""outbox lanes: a partial index on unsent rows by subject, for the fair relay

Revision ID: 0008_outbox_owner
Revises: 0007_retry_marker
Create Date: 2026-11-29 17:30:00

The relay shares each batch out between subjects (an extract task's subject names its
tenant); it finds the subjects with unsent rows by seeking through this index. Additive.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_outbox_owner"
down_revision = "0007_retry_marker"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_outbox_lanes",
        "outbox",
        ["subject", "created_at", "id"],
        unique=False,
        postgresql_where=sa.text("sent_at IS NULL"),
        sqlite_where=sa.text("sent_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_outbox_lanes", table_name="outbox")
