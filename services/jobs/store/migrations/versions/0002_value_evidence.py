"""evidence, confidence and review state per value

Revision ID: 0002_value_evidence
Revises: 0006_keyset_indexes
Create Date: 2026-11-29 14:10:00

Additive: existing results get no assessments (nothing to review) and zero counts.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_value_evidence"
down_revision = "0006_keyset_indexes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("extraction_results") as batch:
        batch.add_column(sa.Column("assessments", sa.JSON(), server_default="{}", nullable=False))
        batch.add_column(
            sa.Column("review_count", sa.Integer(), server_default="0", nullable=False)
        )
    with op.batch_alter_table("extraction_jobs") as batch:
        batch.add_column(
            sa.Column("values_needing_review", sa.Integer(), server_default="0", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("extraction_jobs") as batch:
        batch.drop_column("values_needing_review")
    with op.batch_alter_table("extraction_results") as batch:
        batch.drop_column("review_count")
        batch.drop_column("assessments")
