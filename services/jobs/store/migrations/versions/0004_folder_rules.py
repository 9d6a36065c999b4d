"""per-folder task rules and the chosen system prompt of a job

Revision ID: 0004_folder_rules
Revises: 0001
Create Date: 2026-11-29 14:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_folder_rules"
down_revision = "0003_versions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Additive: existing jobs get no rules and the active prompt, as they had before.
    with op.batch_alter_table("extraction_jobs") as batch:
        batch.add_column(
            sa.Column("folder_rules", sa.JSON(), nullable=False, server_default=sa.text("'[]'"))
        )
        batch.add_column(sa.Column("system_prompt_id", sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("extraction_jobs") as batch:
        batch.drop_column("system_prompt_id")
        batch.drop_column("folder_rules")
