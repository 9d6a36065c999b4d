"""extraction_results.skipped_files: the files of a combined task left out of its result
because they could not be read, each with the reason

Revision ID: 0010_skipped_files
Revises: 0009_review_items
Create Date: 2026-11-30 05:00:00

Additive: a nullable column, NULL (every file read) for the results already stored.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_skipped_files"
down_revision = "0009_review_items"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("extraction_results") as batch:
        batch.add_column(sa.Column("skipped_files", sa.JSON(none_as_null=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("extraction_results") as batch:
        batch.drop_column("skipped_files")
