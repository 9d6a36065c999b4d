"""result versions, template versions, golden documents (#16)

Additive: new tables and columns with defaults. Existing data gets its first versions: each
result's current values become version 1 (IMPORTED; what the extractor said before any
correction was not kept), each template's current fields its version 1.

Revision ID: 0003_versions
Revises: 0001
Create Date: 2026-11-29 14:00:00
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from alembic import op

revision = "0003_versions"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("templates") as batch:
        batch.add_column(sa.Column("version", sa.Integer(), server_default="1", nullable=False))
    with op.batch_alter_table("extraction_jobs") as batch:
        batch.add_column(sa.Column("template_version", sa.Integer(), nullable=True))
        batch.add_column(
            sa.Column("purpose", sa.String(length=16), server_default="", nullable=False)
        )
    with op.batch_alter_table("extraction_tasks") as batch:
        batch.add_column(sa.Column("rerun_fields", sa.JSON(), nullable=True))
    with op.batch_alter_table("extraction_results") as batch:
        batch.add_column(sa.Column("version", sa.Integer(), server_default="1", nullable=False))
        batch.add_column(
            sa.Column("corrected_fields", sa.JSON(), server_default="[]", nullable=False)
        )
    result_versions = op.create_table(
        "result_versions",
        sa.Column("result_id", sa.String(length=32), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("values", sa.JSON(), nullable=False),
        sa.Column("changes", sa.JSON(), nullable=False),
        sa.Column("actor", sa.String(length=512), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("restored_version", sa.Integer(), nullable=False),
        sa.Column("corrected", sa.JSON(), nullable=False),
        sa.Column("template_id", sa.String(length=32), nullable=True),
        sa.Column("template_version", sa.Integer(), nullable=True),
        sa.Column("input_key", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["result_id"],
            ["extraction_results.id"],
            name=op.f("fk_result_versions_result_id_extraction_results"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("result_id", "version", name=op.f("pk_result_versions")),
    )
    template_versions = op.create_table(
        "template_versions",
        sa.Column("template_id", sa.String(length=32), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("score_state", sa.String(length=16), nullable=False),
        sa.Column("score_job_id", sa.String(length=32), nullable=True),
        sa.Column("score_expected", sa.JSON(), nullable=False),
        sa.Column("score_accuracy", sa.Float(), nullable=True),
        sa.Column("score_fields", sa.JSON(), nullable=False),
        sa.Column("score_compared", sa.Integer(), nullable=False),
        sa.Column("score_correct", sa.Integer(), nullable=False),
        sa.Column("score_error", sa.Text(), nullable=False),
        sa.Column("score_started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("score_finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["score_job_id"],
            ["extraction_jobs.id"],
            name=op.f("fk_template_versions_score_job_id_extraction_jobs"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["template_id"],
            ["templates.id"],
            name=op.f("fk_template_versions_template_id_templates"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("template_id", "version", name=op.f("pk_template_versions")),
    )
    op.create_table(
        "golden_documents",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("template_id", sa.String(length=32), nullable=False),
        sa.Column("result_id", sa.String(length=32), nullable=False),
        sa.Column("job_id", sa.String(length=32), nullable=False),
        sa.Column("values", sa.JSON(), nullable=False),
        sa.Column("actor", sa.String(length=512), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["result_id"],
            ["extraction_results.id"],
            name=op.f("fk_golden_documents_result_id_extraction_results"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["template_id"],
            ["templates.id"],
            name=op.f("fk_golden_documents_template_id_templates"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_golden_documents")),
        sa.UniqueConstraint("template_id", "result_id", name="uq_golden_documents_result"),
    )
    op.create_index(
        op.f("ix_golden_documents_result_id"), "golden_documents", ["result_id"], unique=False
    )
    op.create_index(
        op.f("ix_golden_documents_template_id"), "golden_documents", ["template_id"], unique=False
    )
    _first_versions(result_versions, template_versions)


def _first_versions(result_versions: sa.Table, template_versions: sa.Table) -> None:
    """Version 1 of every existing result and template, from what they hold now."""
    bind = op.get_bind()
    now = dt.datetime.now(dt.UTC)
    results = sa.table(
        "extraction_results", sa.column("id", sa.String), sa.column("values", sa.JSON)
    )
    rows = [
        {
            "result_id": rid,
            "version": 1,
            "kind": "IMPORTED",
            "values": values or {},
            "changes": [],
            "actor": "system",
            "reason": "values held when version history began",
            "restored_version": 0,
            "corrected": [],
            "input_key": "",
            "created_at": now,
        }
        for rid, values in bind.execute(sa.select(results.c.id, results.c["values"]))
    ]
    if rows:
        op.bulk_insert(result_versions, rows)
    fields = sa.table(
        "template_fields",
        sa.column("template_id", sa.String),
        sa.column("position", sa.Integer),
        sa.column("name", sa.String),
        sa.column("data_type_id", sa.String),
        sa.column("instruction", sa.Text),
    )
    templates = sa.table("templates", sa.column("id", sa.String))
    by_template: dict[str, list[dict[str, str]]] = {
        tid: [] for (tid,) in bind.execute(sa.select(templates.c.id))
    }
    for tid, name, data_type, instruction in bind.execute(
        sa.select(
            fields.c.template_id, fields.c.name, fields.c.data_type_id, fields.c.instruction
        ).order_by(fields.c.template_id, fields.c.position)
    ):
        by_template[tid].append(
            {"name": name, "data_type": data_type, "instruction": instruction or ""}
        )
    if by_template:
        op.bulk_insert(
            template_versions,
            [
                {
                    "template_id": tid,
                    "version": 1,
                    "fields": specs,
                    "created_at": now,
                    "score_state": "",
                    "score_expected": [],
                    "score_fields": {},
                    "score_compared": 0,
                    "score_correct": 0,
                    "score_error": "",
                }
                for tid, specs in by_template.items()
            ],
        )


def downgrade() -> None:
    op.drop_index(op.f("ix_golden_documents_template_id"), table_name="golden_documents")
    op.drop_index(op.f("ix_golden_documents_result_id"), table_name="golden_documents")
    op.drop_table("golden_documents")
    op.drop_table("template_versions")
    op.drop_table("result_versions")
    with op.batch_alter_table("extraction_results") as batch:
        batch.drop_column("corrected_fields")
        batch.drop_column("version")
    with op.batch_alter_table("extraction_tasks") as batch:
        batch.drop_column("rerun_fields")
    with op.batch_alter_table("extraction_jobs") as batch:
        batch.drop_column("purpose")
        batch.drop_column("template_version")
    with op.batch_alter_table("templates") as batch:
        batch.drop_column("version")
