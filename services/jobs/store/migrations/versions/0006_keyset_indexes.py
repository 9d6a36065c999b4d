"""keyset indexes: one index per List order, ending in the id the page tokens carry;
and extraction_jobs.tasks_built, for tasks built in batches after StartJob

Revision ID: 0006_keyset_indexes
Revises: 0004_folder_rules
Create Date: 2026-11-29 14:30:00 (chained after main's 0004 when main was merged in)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_keyset_indexes"
down_revision = "0004_folder_rules"
branch_labels = None
depends_on = None

# (table, new index, its columns, the index it replaces: a prefix of it, or None)
_INDEXES = [
    (
        "extraction_jobs",
        "ix_jobs_user_created_id",
        ["user_id", "created_at", "id"],
        "ix_jobs_user_created",
    ),
    ("extraction_jobs", "ix_jobs_created_id", ["created_at", "id"], None),
    (
        "source_files",
        "ix_source_files_job_path_id",
        ["job_id", "original_path", "id"],
        "ix_source_files_job_path",
    ),
    ("source_files", "ix_source_files_job_status", ["job_id", "status"], None),
    ("extraction_tasks", "ix_tasks_job_position_id", ["job_id", "position", "id"], None),
    (
        "extraction_results",
        "ix_results_job_position_id",
        ["job_id", "position", "id"],
        "ix_results_job_position",
    ),
    ("job_events", "ix_job_events_job_sequence_id", ["job_id", "sequence", "id"], None),
]


def upgrade() -> None:
    # Tasks are built in batches after StartJob (services/jobs/domain/tasks/building.py);
    # every job started before this revision has all of its tasks.
    with op.batch_alter_table("extraction_jobs", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("tasks_built", sa.Integer(), nullable=False, server_default="0")
        )
    op.execute("UPDATE extraction_jobs SET tasks_built = tasks_total")
    for table, name, columns, replaced in _INDEXES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.create_index(name, columns, unique=False)
            if replaced:
                batch_op.drop_index(replaced)


def downgrade() -> None:
    for table, name, columns, replaced in reversed(_INDEXES):
        with op.batch_alter_table(table, schema=None) as batch_op:
            if replaced:
                batch_op.create_index(replaced, columns[:-1], unique=False)
            batch_op.drop_index(name)
    with op.batch_alter_table("extraction_jobs", schema=None) as batch_op:
        batch_op.drop_column("tasks_built")
