"""review_items: a row per value not reviewed yet, so the review queue pages in SQL

Revision ID: 0009_review_items
Revises: 0008_outbox_owner
Create Date: 2026-11-29 17:50:00

Additive. Backfills the rows of existing results from their stored assessments (the
`needs_review` flag settled at the platform's threshold is kept as `flagged`), in batches.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0009_review_items"
down_revision = "0008_outbox_owner"
branch_labels = None
depends_on = None

# services/jobs/domain/results/review.py at this revision: a migration does not import live code.
_WEIGHTS = {"currency": 2.0, "number": 1.5, "date_dmy": 1.5, "date_mdy": 1.5, "date_ymd": 1.5}
_BATCH = 1000

_results = sa.table(
    "extraction_results",
    sa.column("id", sa.String),
    sa.column("job_id", sa.String),
    sa.column("position", sa.Integer),
    sa.column("values", sa.JSON),
    sa.column("assessments", sa.JSON),
)
_jobs = sa.table("extraction_jobs", sa.column("id", sa.String), sa.column("user_id", sa.String))
_fields = sa.table(
    "job_fields",
    sa.column("job_id", sa.String),
    sa.column("name", sa.String),
    sa.column("data_type_id", sa.String),
)
_items = sa.table(
    "review_items",
    sa.column("result_id", sa.String),
    sa.column("field", sa.String),
    sa.column("job_id", sa.String),
    sa.column("user_id", sa.String),
    sa.column("position", sa.Integer),
    sa.column("data_type", sa.String),
    sa.column("confidence", sa.Float),
    sa.column("unverified", sa.Boolean),
    sa.column("flagged", sa.Boolean),
    sa.column("rank", sa.Integer),
)


def upgrade() -> None:
    op.create_table(
        "review_items",
        sa.Column("result_id", sa.String(length=32), nullable=False),
        sa.Column("field", sa.String(length=100), nullable=False),
        sa.Column("job_id", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("data_type", sa.String(length=32), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("unverified", sa.Boolean(), nullable=False),
        sa.Column("flagged", sa.Boolean(), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["job_id"], ["extraction_jobs.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["result_id"], ["extraction_results.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("result_id", "field"),
    )
    op.create_index(
        "ix_review_items_job",
        "review_items",
        ["job_id", "flagged", "rank", "position", "field"],
        unique=False,
    )
    op.create_index(
        "ix_review_items_user",
        "review_items",
        ["user_id", "flagged", "rank", "job_id", "position", "field"],
        unique=False,
    )
    _backfill(op.get_bind())


def _backfill(bind: Any) -> None:
    owners: dict[str, str] = dict(bind.execute(sa.select(_jobs.c.id, _jobs.c.user_id)).all())
    types: dict[str, dict[str, str]] = {}
    for job_id, name, data_type in bind.execute(
        sa.select(_fields.c.job_id, _fields.c.name, _fields.c.data_type_id)
    ):
        types.setdefault(job_id, {})[name] = data_type
    after = ""
    while True:
        batch = bind.execute(
            sa.select(
                _results.c.id,
                _results.c.job_id,
                _results.c.position,
                _results.c["values"],
                _results.c.assessments,
            )
            .where(_results.c.id > after)
            .order_by(_results.c.id)
            .limit(_BATCH)
        ).all()
        if not batch:
            return
        after = batch[-1].id
        rows = []
        for result in batch:
            values = result[3] or {}
            for field, assessment in (result.assessments or {}).items():
                if assessment.get("reviewed"):
                    continue
                data_type = types.get(result.job_id, {}).get(field, "text")
                confidence = float(assessment.get("confidence", 0.0))
                unverified = values.get(field) is not None and not assessment.get("verified")
                risk = max(1.0 - confidence, 0.5 if unverified else 0.0)
                impact = round(_WEIGHTS.get(data_type, 1.0) * risk, 4)
                rows.append(
                    {
                        "result_id": result.id,
                        "field": field,
                        "job_id": result.job_id,
                        "user_id": owners[result.job_id],
                        "position": result.position,
                        "data_type": data_type,
                        "confidence": confidence,
                        "unverified": unverified,
                        "flagged": bool(assessment.get("needs_review", False)),
                        "rank": -round(impact * 10_000),
                    }
                )
        if rows:
            bind.execute(sa.insert(_items), rows)


def downgrade() -> None:
    op.drop_index("ix_review_items_user", table_name="review_items")
    op.drop_index("ix_review_items_job", table_name="review_items")
    op.drop_table("review_items")
