"""Statuses of jobs, files and tasks, the one transition table, and the one status writer.

Values are the proto enum names, which is what the database stores. Every status change
goes through `move()`: it checks the table (an illegal change raises FailedPrecondition,
gRPC FAILED_PRECONDITION, never a silent write), writes the status, stamps the row's
times and records the job event. Nothing else assigns `.status`.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bytereview.core.errors import FailedPrecondition
from services.jobs.domain import names
from services.jobs.domain.events import record_event
from services.jobs.store import models


class JobStatus(StrEnum):
    PENDING_UPLOAD = "PENDING_UPLOAD"
    ANALYZING = "ANALYZING"
    READY = "READY"
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    PAUSED = "PAUSED"
    COMPLETED = "COMPLETED"
    PARTIALLY_COMPLETED = "PARTIALLY_COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


class FileStatus(StrEnum):
    PENDING_UPLOAD = "PENDING_UPLOAD"
    UPLOADED = "UPLOADED"
    ANALYZING = "ANALYZING"
    READY = "READY"
    UNPACKED = "UNPACKED"
    UNSUPPORTED = "UNSUPPORTED"
    FAILED = "FAILED"


class TaskStatus(StrEnum):
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


class SettleDue(StrEnum):
    """Work `tasks.settling.TaskSettler` owes a job (`extraction_jobs.settle_due`)."""

    NOTHING = ""
    CANCEL = "cancel"  # open tasks of a cancelled job, to cancel
    RETRY = "retry"  # failed tasks, to queue again (RetryFailedTasks)


class TaskMode(StrEnum):
    UNSPECIFIED = "TASK_MODE_UNSPECIFIED"
    INDIVIDUAL = "TASK_MODE_INDIVIDUAL"
    COMBINED = "TASK_MODE_COMBINED"


J, F, T = JobStatus, FileStatus, TaskStatus

JOB_FINISHED = frozenset({J.COMPLETED, J.PARTIALLY_COMPLETED, J.FAILED})
JOB_FINAL = JOB_FINISHED | {J.CANCELLED}
# A job still gathering its files: analysis not done.
JOB_ANALYSING = frozenset({J.PENDING_UPLOAD, J.ANALYZING})
# Configuration may change until the job starts.
JOB_CONFIGURABLE = frozenset({J.PENDING_UPLOAD, J.ANALYZING, J.READY})

JOB_TRANSITIONS: Mapping[str, frozenset[str]] = {
    J.PENDING_UPLOAD: frozenset({J.ANALYZING, J.CANCELLED}),
    J.ANALYZING: frozenset({J.READY, J.FAILED, J.CANCELLED}),
    J.READY: frozenset({J.QUEUED, J.CANCELLED}),
    J.QUEUED: frozenset({J.RUNNING, J.PAUSED, J.CANCELLED, *JOB_FINISHED}),
    J.RUNNING: frozenset({J.PAUSED, J.CANCELLED, *JOB_FINISHED}),
    J.PAUSED: frozenset({J.QUEUED, J.RUNNING, J.CANCELLED}),
    # Retrying failed tasks, or re-running chosen ones, re-opens a finished job.
    J.COMPLETED: frozenset({J.QUEUED}),
    J.PARTIALLY_COMPLETED: frozenset({J.QUEUED}),
    J.FAILED: frozenset({J.QUEUED}),
    J.CANCELLED: frozenset(),
}

FILE_SETTLED = frozenset({F.READY, F.UNPACKED, F.UNSUPPORTED, F.FAILED})
# Files still waiting for analysis.
FILE_WAITING = frozenset({F.PENDING_UPLOAD, F.UPLOADED, F.ANALYZING})
FILE_TRANSITIONS: Mapping[str, frozenset[str]] = {
    F.PENDING_UPLOAD: frozenset({F.UPLOADED, F.FAILED}),
    F.UPLOADED: frozenset({F.ANALYZING, *FILE_SETTLED}),
    F.ANALYZING: FILE_SETTLED,
    F.READY: frozenset(),
    F.UNPACKED: frozenset(),
    F.UNSUPPORTED: frozenset(),
    F.FAILED: frozenset(),
}

TASK_SETTLED = frozenset({T.SUCCEEDED, T.FAILED, T.CANCELLED})
TASK_OPEN = frozenset({T.QUEUED, T.RUNNING})
TASK_TRANSITIONS: Mapping[str, frozenset[str]] = {
    T.QUEUED: frozenset({T.RUNNING, T.FAILED, T.CANCELLED}),
    # Back to QUEUED after a retryable failure.
    T.RUNNING: frozenset({T.QUEUED, T.SUCCEEDED, T.FAILED, T.CANCELLED}),
    # A re-run extracts a succeeded task again: its result gains a version.
    T.SUCCEEDED: frozenset({T.QUEUED}),
    T.FAILED: frozenset({T.QUEUED}),
    T.CANCELLED: frozenset(),
}

TABLES: Mapping[str, Mapping[str, frozenset[str]]] = {
    "job": JOB_TRANSITIONS,
    "file": FILE_TRANSITIONS,
    "task": TASK_TRANSITIONS,
}

_WHY: Mapping[tuple[str, str], str] = {
    ("job", J.COMPLETED): "the job has completed",
    ("job", J.CANCELLED): "the job was cancelled",
}


def can_transition(kind: str, current: str, target: str) -> bool:
    return target in TABLES[kind].get(current, frozenset())


def check_transition(kind: str, current: str, target: str, *, action: str = "") -> None:
    """Raise FailedPrecondition unless `current -> target` is in the table for `kind`."""
    if not can_transition(kind, current, target):
        what = action or f"move to {target}"
        why = _WHY.get((kind, current), f"the {kind} is {current}")
        raise FailedPrecondition(f"cannot {what}: {why}")


Row = models.Job | models.SourceFile | models.Task


def move(
    session: AsyncSession,
    job: models.Job,
    target: JobStatus | FileStatus | TaskStatus,
    *,
    actor: str,
    row: models.SourceFile | models.Task | None = None,
    action: str = "",
    message: str = "",
    record: bool = True,
) -> None:
    """Move `row` (the job itself when None) to `target`: check, write, stamp, record.

    The caller holds the job row (locked on PostgreSQL): the event takes the job's next
    sequence number. `record=False` skips the event for bookkeeping moves that never had
    one (an upload confirmed, a failed task queued again).
    """
    subject: Row = job if row is None else row
    kind, name = _kind_and_name(subject)
    previous = subject.status
    check_transition(kind, previous, target, action=action)
    subject.status = target
    now = models.utcnow()
    if isinstance(subject, models.Job):
        # Finished when final; a retried job runs again, so it is no longer finished.
        subject.finished_at = now if target in JOB_FINAL else None
    elif isinstance(subject, models.Task):
        if target == T.RUNNING:
            subject.started_at = now
        elif target in TASK_SETTLED:
            subject.finished_at = now
    else:
        subject.updated_at = now
    if record:
        record_event(
            session,
            job,
            kind=f"{kind}.status",
            actor=actor,
            subject=name,
            from_status=previous,
            to_status=target,
            message=message,
        )


async def cancel_open_tasks(session: AsyncSession, job_id: str, *, limit: int) -> int:
    """Up to `limit` queued or running tasks of a cancelled job -> CANCELLED, in one
    statement; returns how many (no events: the job's own CANCELLED event stands for them).

    `tasks.settling` calls it batch after batch until none is left (see there)."""
    for status in TASK_OPEN:
        check_transition("task", status, T.CANCELLED)
    t = models.Task
    batch = (
        select(t.id)
        .where(t.job_id == job_id, t.status.in_(sorted(TASK_OPEN)))
        # No ORDER BY: the (job_id, status) index yields open tasks at once. By position,
        # each batch scanned past every task cancelled before it (42 s for 70,000).
        .limit(limit)
        # PostgreSQL: rows another replica's batch holds are skipped, not waited for (two
        # batches locking rows in different orders could deadlock); SQLite ignores it.
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    result = await session.execute(
        update(t)
        # The status again: on PostgreSQL a row settled meanwhile (by another replica's
        # batch) is re-checked after its lock is released and left alone.
        .where(t.id.in_(batch), t.status.in_(sorted(TASK_OPEN)))
        .values(status=T.CANCELLED, finished_at=models.utcnow())
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def requeue_failed_tasks(
    session: AsyncSession, job_id: str, *, limit: int
) -> list[tuple[str, int]]:
    """Up to `limit` failed tasks of the job -> QUEUED with fresh attempts and a new
    generation (their next message id), in one statement; returns each one's (id,
    generation). No events: the job's QUEUED event ("retry failed tasks") stands for them.

    The caller holds the job's row lock and queues their messages in the same transaction;
    `tasks.settling` calls it batch after batch while the job's `settle_due` is "retry"."""
    check_transition("task", T.FAILED, T.QUEUED)
    t = models.Task
    # No ORDER BY: the (job_id, status) index yields failed tasks at once (as cancelling).
    batch = select(t.id).where(t.job_id == job_id, t.status == T.FAILED).limit(limit)
    result = await session.execute(
        update(t)
        .where(t.id.in_(batch.scalar_subquery()))
        .values(status=T.QUEUED, attempts=0, generation=t.generation + 1)
        .returning(t.id, t.generation)
        .execution_options(synchronize_session=False)
    )
    return [(task_id, generation) for task_id, generation in result.all()]


def _kind_and_name(row: Row) -> tuple[str, str]:
    if isinstance(row, models.Job):
        return "job", names.job_name(row.id)
    if isinstance(row, models.SourceFile):
        return "file", names.file_name(row.job_id, row.id)
    return "task", names.task_name(row.job_id, row.id)
