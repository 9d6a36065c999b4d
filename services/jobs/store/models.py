"""The jobs service's schema (SQLAlchemy 2). Identical on PostgreSQL and SQLite.

Statuses are stored as the proto enum value names, so the database reads like the API.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# The partial index's condition: only jobs the settler has work for are indexed.
SETTLE_DUE_SET = "settle_due <> ''"


def new_id() -> str:
    return uuid.uuid4().hex


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def as_utc(value: dt.datetime) -> dt.datetime:
    """A stored time as an aware UTC datetime: SQLite hands back naive ones (always UTC)."""
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


class Base(DeclarativeBase):
    # Named constraints so Alembic migrations are stable on both databases.
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(column_0_label)s",
            "uq": "uq_%(table_name)s_%(column_0_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )
    type_annotation_map = {dt.datetime: DateTime(timezone=True), dict[str, Any]: JSON}


class User(Base):
    __tablename__ = "users"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    # Stable identity from the credential: `issuer|sub` for JWTs, `dev` in dev mode.
    subject: Mapped[str] = mapped_column(String(512), unique=True)
    email: Mapped[str] = mapped_column(String(320), default="")
    display_name: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ApiKey(Base):
    __tablename__ = "api_keys"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[dt.datetime | None] = mapped_column(default=None)


class DataType(Base):
    __tablename__ = "data_types"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    display_name: Mapped[str] = mapped_column(String(100))
    json_type: Mapped[str] = mapped_column(String(16))
    format: Mapped[str] = mapped_column(String(64), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    position: Mapped[int] = mapped_column(Integer, default=0)


class SystemPrompt(Base):
    __tablename__ = "system_prompts"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    version: Mapped[int] = mapped_column(Integer, unique=True)
    text: Mapped[str] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Template(Base):
    __tablename__ = "templates"
    __table_args__ = (UniqueConstraint("user_id", "display_name", name="uq_templates_user_name"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    display_name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    fields: Mapped[list[TemplateField]] = relationship(
        order_by="TemplateField.position", cascade="all, delete-orphan", lazy="selectin"
    )
    # The latest version number (template_versions); saving new fields adds one.
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")


class TemplateField(Base):
    __tablename__ = "template_fields"
    __table_args__ = (UniqueConstraint("template_id", "name", name="uq_template_fields_name"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    template_id: Mapped[str] = mapped_column(ForeignKey("templates.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(100))
    data_type_id: Mapped[str] = mapped_column(ForeignKey("data_types.id"))
    instruction: Mapped[str] = mapped_column(Text, default="")


class Job(Base):
    __tablename__ = "extraction_jobs"
    __table_args__ = (
        UniqueConstraint("user_id", "create_request_id", name="uq_jobs_user_request"),
        # Keyset orders (newest first, ties by id): a tenant's jobs, and every job (admin).
        Index("ix_jobs_user_created_id", "user_id", "created_at", "id"),
        Index("ix_jobs_created_id", "created_at", "id"),
        Index("ix_jobs_status_updated", "status", "updated_at"),
        # The few jobs TaskSettler has work for, however many finished jobs are kept (0007).
        Index(
            "ix_jobs_settle_due",
            "settle_due",
            postgresql_where=text(SETTLE_DUE_SET),
            sqlite_where=text(SETTLE_DUE_SET),
        ),
    )
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    display_name: Mapped[str] = mapped_column(String(200), default="")
    status: Mapped[str] = mapped_column(String(32))
    template_id: Mapped[str | None] = mapped_column(
        ForeignKey("templates.id", ondelete="SET NULL"), default=None
    )
    persist_data: Mapped[bool] = mapped_column(Boolean, default=True)
    task_mode: Mapped[str] = mapped_column(String(32), default="TASK_MODE_INDIVIDUAL")
    # Fields as configured before start; job_fields holds the frozen snapshot after.
    configured_fields: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    create_request_id: Mapped[str | None] = mapped_column(String(100), default=None)
    start_request_id: Mapped[str | None] = mapped_column(String(100), default=None)
    event_sequence: Mapped[int] = mapped_column(BigInteger, default=0)
    files_total: Mapped[int] = mapped_column(Integer, default=0)
    files_ready: Mapped[int] = mapped_column(Integer, default=0)
    files_failed: Mapped[int] = mapped_column(Integer, default=0)
    tasks_total: Mapped[int] = mapped_column(Integer, default=0)
    # Tasks built so far; StartJob builds the first batch, TaskBuilder the rest.
    tasks_built: Mapped[int] = mapped_column(Integer, default=0)
    tasks_succeeded: Mapped[int] = mapped_column(Integer, default=0)
    tasks_failed: Mapped[int] = mapped_column(Integer, default=0)
    # Sum of the results' review_count (0002).
    values_needing_review: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    started_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    finished_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    # Per-folder task modes, `[{"folder": ..., "task_mode": ...}]` (domain.plan).
    folder_rules: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    # The chosen system prompt; None means the active one, recorded at start.
    system_prompt_id: Mapped[str | None] = mapped_column(String(32), default=None)
    # The template version the fields came from (with template_id), if any.
    template_version: Mapped[int | None] = mapped_column(Integer, default=None)
    # "" for a user's job; "score" for a template version's scoring run (not listed).
    purpose: Mapped[str] = mapped_column(String(16), default="", server_default="")
    # Work TaskSettler still owes the job, durable across restarts (tasks.settling, 0007):
    # "cancel" (open tasks to cancel), "retry" (failed tasks to queue again) or "".
    settle_due: Mapped[str] = mapped_column(String(16), default="", server_default="")


class SourceFile(Base):
    __tablename__ = "source_files"
    __table_args__ = (
        # An archive entry is registered once, however often the archive is redelivered.
        UniqueConstraint("parent_id", "archive_index", name="uq_source_files_entry"),
        Index("ix_source_files_job_path_id", "job_id", "original_path", "id"),
        # "Does any file of the job still wait?" after every analysis report, and progress.
        Index("ix_source_files_job_status", "job_id", "status"),
    )
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    job_id: Mapped[str] = mapped_column(ForeignKey("extraction_jobs.id", ondelete="CASCADE"))
    parent_id: Mapped[str | None] = mapped_column(
        ForeignKey("source_files.id", ondelete="CASCADE"), default=None
    )
    archive_index: Mapped[int | None] = mapped_column(Integer, default=None)
    depth: Mapped[int] = mapped_column(Integer, default=0)
    original_path: Mapped[str] = mapped_column(String(2048))
    folder: Mapped[str] = mapped_column(String(2048), default="")
    storage_key: Mapped[str] = mapped_column(String(1024))
    declared_size: Mapped[int] = mapped_column(BigInteger, default=0)
    declared_type: Mapped[str] = mapped_column(String(200), default="")
    media_type: Mapped[str] = mapped_column(String(200), default="")
    size_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    sha256: Mapped[str] = mapped_column(String(64), default="")
    page_count: Mapped[int] = mapped_column(Integer, default=0)
    width: Mapped[int] = mapped_column(Integer, default=0)
    height: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(32))
    error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class JobField(Base):
    __tablename__ = "job_fields"
    __table_args__ = (UniqueConstraint("job_id", "name", name="uq_job_fields_name"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    job_id: Mapped[str] = mapped_column(ForeignKey("extraction_jobs.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(100))
    data_type_id: Mapped[str] = mapped_column(ForeignKey("data_types.id"))
    instruction: Mapped[str] = mapped_column(Text, default="")


class Task(Base):
    __tablename__ = "extraction_tasks"
    __table_args__ = (
        Index("ix_tasks_job_status", "job_id", "status"),
        Index("ix_tasks_job_position_id", "job_id", "position", "id"),
    )
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    job_id: Mapped[str] = mapped_column(ForeignKey("extraction_jobs.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    mode: Mapped[str] = mapped_column(String(32))
    folder: Mapped[str] = mapped_column(String(2048), default="")
    status: Mapped[str] = mapped_column(String(32))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # Bumped each time the task is (re)queued; part of the outbox message id.
    generation: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str] = mapped_column(Text, default="")
    # The class of the task's last failure ("PERMANENT", "EXHAUSTED"; "" before any or
    # before migration 0011): whether a retry may help. Meaningful while it is FAILED.
    failure: Mapped[str] = mapped_column(String(16), default="", server_default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    started_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    finished_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    # A re-run limited to some fields takes only these from the new extraction (None: all).
    rerun_fields: Mapped[list[str] | None] = mapped_column(JSON, default=None)


class TaskFile(Base):
    __tablename__ = "task_files"
    task_id: Mapped[str] = mapped_column(
        ForeignKey("extraction_tasks.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    file_id: Mapped[str] = mapped_column(ForeignKey("source_files.id", ondelete="CASCADE"))


class Result(Base):
    __tablename__ = "extraction_results"
    __table_args__ = (Index("ix_results_job_position_id", "job_id", "position", "id"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    job_id: Mapped[str] = mapped_column(ForeignKey("extraction_jobs.id", ondelete="CASCADE"))
    # One result per task: a redelivered task cannot add a second.
    task_id: Mapped[str] = mapped_column(
        ForeignKey("extraction_tasks.id", ondelete="CASCADE"), unique=True
    )
    position: Mapped[int] = mapped_column(Integer)
    values: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    value_sources: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    edited: Mapped[bool] = mapped_column(Boolean, default=False)
    input_tokens: Mapped[int] = mapped_column(Integer, default=0)
    output_tokens: Mapped[int] = mapped_column(Integer, default=0)
    extractor: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # The current version (result_versions); 1 is the extractor's first answer.
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    # Fields whose current value a person set rather than the latest extraction.
    corrected_fields: Mapped[list[str]] = mapped_column(JSON, default=list, server_default="[]")
    # Field name -> {evidence, confidence, verified, reviewed, needs_review} (0002).
    assessments: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, server_default="{}")
    # How many values need review, kept with the row so the queue reads only these (0002).
    review_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Combined mode: [{file, path, reason}] of the task's files that could not be read and
    # were left out of the extraction; NULL when every file was read (0010), so an export
    # asks "any?" with an IS NOT NULL.
    skipped_files: Mapped[list[dict[str, str]] | None] = mapped_column(
        JSON(none_as_null=True), default=None, nullable=True
    )


class ReviewItem(Base):
    """A value nobody reviewed yet, with what the review queue filters and orders by (0009).

    One row per assessed value until a person accepts or corrects it (then it is deleted);
    the queue is a keyset query on the indexes, never the results read and sorted. `rank`
    is minus the impact in 1/10,000ths, so ascending order is most consequential first.
    """

    __tablename__ = "review_items"
    __table_args__ = (
        Index("ix_review_items_job", "job_id", "flagged", "rank", "position", "field"),
        Index("ix_review_items_user", "user_id", "flagged", "rank", "job_id", "position", "field"),
    )
    result_id: Mapped[str] = mapped_column(
        ForeignKey("extraction_results.id", ondelete="CASCADE"), primary_key=True
    )
    field: Mapped[str] = mapped_column(String(100), primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("extraction_jobs.id", ondelete="CASCADE"))
    user_id: Mapped[str] = mapped_column(String(32))
    position: Mapped[int] = mapped_column(Integer)
    data_type: Mapped[str] = mapped_column(String(32))
    confidence: Mapped[float] = mapped_column(Float)
    # Not empty and its evidence not verified.
    unverified: Mapped[bool] = mapped_column(Boolean)
    # Needs review at the platform's threshold (the assessment's needs_review).
    flagged: Mapped[bool] = mapped_column(Boolean)
    rank: Mapped[int] = mapped_column(Integer)


class JobEvent(Base):
    __tablename__ = "job_events"
    __table_args__ = (
        UniqueConstraint("job_id", "sequence", name="uq_job_events_sequence"),
        Index("ix_job_events_job_sequence_id", "job_id", "sequence", "id"),
    )
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("extraction_jobs.id", ondelete="CASCADE"))
    sequence: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(64))
    actor: Mapped[str] = mapped_column(String(512))
    subject: Mapped[str] = mapped_column(String(200))
    from_status: Mapped[str] = mapped_column(String(32), default="")
    to_status: Mapped[str] = mapped_column(String(32), default="")
    message: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class OutboxMessage(Base):
    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_unsent", "sent_at", "created_at"),
        # The relay's lanes (0008): unsent rows by subject, oldest first. Partial, so sent
        # rows kept for a day cost it nothing.
        Index(
            "ix_outbox_lanes",
            "subject",
            "created_at",
            "id",
            postgresql_where=text("sent_at IS NULL"),
            sqlite_where=text("sent_at IS NULL"),
        ),
    )
    # Also the Nats-Msg-Id, so JetStream drops a message the relay publishes twice.
    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    subject: Mapped[str] = mapped_column(String(200))
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    attempts: Mapped[int] = mapped_column(Integer, default=0)


class ResultVersion(Base):
    """One version of a result's values; rows are only ever added."""

    __tablename__ = "result_versions"
    result_id: Mapped[str] = mapped_column(
        ForeignKey("extraction_results.id", ondelete="CASCADE"), primary_key=True
    )
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    # EXTRACTED, CORRECTED, REVERTED, RERUN, IMPORTED (the proto's ResultVersion.Kind names).
    kind: Mapped[str] = mapped_column(String(16))
    values: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # [{"field", "old", "new"}] against the previous version.
    changes: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    actor: Mapped[str] = mapped_column(String(512))
    reason: Mapped[str] = mapped_column(Text, default="")
    restored_version: Mapped[int] = mapped_column(Integer, default=0)
    # The fields a person had set, as of this version (a revert restores it too).
    corrected: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Extractions: the template version used (no foreign key: templates may be deleted).
    template_id: Mapped[str | None] = mapped_column(String(32), default=None)
    template_version: Mapped[int | None] = mapped_column(Integer, default=None)
    # Extractions: digest of the files' bytes and the fields, the re-run idempotency key.
    input_key: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class TemplateVersion(Base):
    """A saved set of a template's fields, with its latest golden-set score."""

    __tablename__ = "template_versions"
    template_id: Mapped[str] = mapped_column(
        ForeignKey("templates.id", ondelete="CASCADE"), primary_key=True
    )
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    fields: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # "" never scored, RUNNING, SUCCEEDED, FAILED (TemplateScore.State names).
    score_state: Mapped[str] = mapped_column(String(16), default="")
    score_job_id: Mapped[str | None] = mapped_column(
        ForeignKey("extraction_jobs.id", ondelete="SET NULL"), default=None
    )
    # The expected values, by task position of the scoring run: snapshot at its start.
    score_expected: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    score_accuracy: Mapped[float | None] = mapped_column(Float, default=None)
    # {field: [compared, correct]}
    score_fields: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    score_compared: Mapped[int] = mapped_column(Integer, default=0)
    score_correct: Mapped[int] = mapped_column(Integer, default=0)
    score_error: Mapped[str] = mapped_column(Text, default="")
    score_started_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    score_finished_at: Mapped[dt.datetime | None] = mapped_column(default=None)


class GoldenDocument(Base):
    """A checked result kept as its template's expected answer for the result's files."""

    __tablename__ = "golden_documents"
    __table_args__ = (
        UniqueConstraint("template_id", "result_id", name="uq_golden_documents_result"),
    )
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    template_id: Mapped[str] = mapped_column(
        ForeignKey("templates.id", ondelete="CASCADE"), index=True
    )
    result_id: Mapped[str] = mapped_column(
        ForeignKey("extraction_results.id", ondelete="CASCADE"), index=True
    )
    job_id: Mapped[str] = mapped_column(String(32))
    values: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    actor: Mapped[str] = mapped_column(String(512))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
