"""extraction_jobs.settle_due: the work TaskSettler owes a job ("cancel", "retry" or ""),
with a partial index holding only the jobs that have some

Revision ID: 0007_retry_marker
Revises: 0002_value_evidence
Create Date: 2026-11-29 17:30:00

Additive. A job cancelled before this revision whose open tasks are not all cancelled yet
is marked "cancel", so the settler finishes it as before; a retry before this revision
re-opened every failed task in one statement, so none is left half done.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_retry_marker"
down_revision = "0002_value_evidence"
branch_labels = None
depends_on = None

_SET = "settle_due <> ''"


def upgrade() -> None:
    with op.batch_alter_table("extraction_jobs") as batch:
        batch.add_column(
            sa.Column("settle_due", sa.String(length=16), server_default="", nullable=False)
        )
    op.create_index(
        "ix_jobs_settle_due",
        "extraction_jobs",
        ["settle_due"],
        unique=False,
        postgresql_where=sa.text(_SET),
        sqlite_where=sa.text(_SET),
    )
    op.execute(
        "UPDATE extraction_jobs SET settle_due = 'cancel' WHERE status = 'CANCELLED' AND EXISTS"
        " (SELECT 1 FROM extraction_tasks t WHERE t.job_id = extraction_jobs.id"
        " AND t.status IN ('QUEUED', 'RUNNING'))"
    )


def downgrade() -> None:
    op.drop_index("ix_jobs_settle_due", table_name="extraction_jobs")
    with op.batch_alter_table("extraction_jobs") as batch:
        batch.drop_column("settle_due")
