"""extraction_tasks.failure: the class of a task's last failure ("PERMANENT", "EXHAUSTED"),
so a user can tell a task that will fail again from one a retry may fix

Revision ID: 0011_task_failure
Revises: 0010_skipped_files
Create Date: 2026-12-01 09:45:00

Additive: "" (unknown) for the tasks already stored; the class was only in the task's event.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_task_failure"
down_revision = "0010_skipped_files"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("extraction_tasks") as batch:
        batch.add_column(
            sa.Column("failure", sa.String(length=16), server_default="", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("extraction_tasks") as batch:
        batch.drop_column("failure")
