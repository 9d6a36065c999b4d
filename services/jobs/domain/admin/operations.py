"""The operator's view across tenants: every job, any job's tasks, the dead letters (with
retry and discard) and the work queues. Only AdminService calls this, after api.caller has
checked the admin role; nothing here is scoped to an owner.

Every change is a job event whose actor is the admin (`users/{id}`), and status changes
go through `status.move` like everyone else's.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from nats.js import JetStreamContext
from sqlalchemy import DateTime, Integer, String, func, literal, literal_column, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from bytereview.core.errors import FailedPrecondition, InvalidArgument, NotFound
from bytereview.core.limits import MAX_ERROR, check_length
from bytereview.core.streams import QueueSpec
from services.jobs.domain import names
from services.jobs.domain.context import JobsContext, job_not_found, locked_job
from services.jobs.domain.events import record_event
from services.jobs.domain.pages.keyset import Keyset, page_of, read_page, read_rows
from services.jobs.domain.queries import JobWithFields, codec_of, jobs_page
from services.jobs.domain.status import FileStatus, JobStatus, TaskStatus, move
from services.jobs.domain.work import queue_task
from services.jobs.messaging import DEAD_LETTER_PREFIX, QueueStat, WorkerLoads, queue_stat

__all__ = ["DISCARDED_MARK", "Admin", "DeadLetter", "QueueSource", "QueueStat"]
from services.jobs.store import models

_EPOCH = literal(dt.datetime(1970, 1, 1, tzinfo=dt.UTC), DateTime(timezone=True))
# Jobs older than a century do not exist; the bound keeps the cut-off a valid datetime.
MAX_AGE_SECONDS = 100 * 366 * 24 * 3600

log = logging.getLogger(__name__)

# A discarded dead letter keeps its error behind this mark, so it leaves the list (which
# matches DEAD_LETTER_PREFIX) and its owner still reads why it failed.
DISCARDED_MARK = "discarded by an administrator: "
MAX_REASON = 500


@dataclass(frozen=True, slots=True)
class DeadLetter:
    kind: str  # "task" or "file"
    job_id: str
    item_id: str
    owner_id: str
    job_status: str
    error: str
    attempts: int
    path: str
    failed_at: dt.datetime | None

    @property
    def name(self) -> str:
        if self.kind == "task":
            return names.task_name(self.job_id, self.item_id)
        return names.file_name(self.job_id, self.item_id)


@dataclass(frozen=True, slots=True)
class QueueSource:
    """Where queue statistics come from: JetStream, the pools' queues, the heartbeats."""

    js: JetStreamContext
    pools: Sequence[tuple[str, QueueSpec]]
    loads: WorkerLoads


class Admin:
    def __init__(self, ctx: JobsContext, queues: QueueSource) -> None:
        self._ctx = ctx
        self._queues = queues

    # -- reads ---------------------------------------------------------------------------

    async def list_jobs(
        self,
        *,
        statuses: Sequence[str],
        min_age_seconds: int,
        owner_id: str,
        page_size: int,
        page_token: str,
    ) -> tuple[list[JobWithFields], str, int]:
        if not 0 <= min_age_seconds <= MAX_AGE_SECONDS:
            # Past ~100 years the cut-off would fall before year 1 (OverflowError, a 500).
            raise InvalidArgument(
                f"min_age_seconds must be between 0 and {MAX_AGE_SECONDS}, got {min_age_seconds}"
            )
        size = names.page_size(page_size)
        wanted = sorted(set(statuses))
        scope = f"admin-jobs:{','.join(wanted)}:{min_age_seconds}:{owner_id}"
        where: list[ColumnElement[bool]] = []
        if wanted:
            where.append(models.Job.status.in_(wanted))
        if min_age_seconds:
            cutoff = models.utcnow() - dt.timedelta(seconds=min_age_seconds)
            where.append(models.Job.created_at <= cutoff)
        if owner_id:
            where.append(models.Job.user_id == owner_id)
        codec = codec_of(self._ctx)
        return await self._ctx.read(
            lambda session: jobs_page(
                session, where, codec=codec, scope=scope, page_token=page_token, size=size
            )
        )

    async def list_tasks(
        self, job_id: str, *, statuses: Sequence[str], page_size: int, page_token: str
    ) -> tuple[list[models.Task], dict[str, list[str]], str]:
        """A page of any job's tasks in order, and each task's files in order."""
        size = names.page_size(page_size)
        wanted = sorted(set(statuses))
        scope = f"admin-tasks:{job_id}:{','.join(wanted)}"
        codec = codec_of(self._ctx)
        order = Keyset((models.Task.position, models.Task.id))
        key = codec.decode(page_token, scope)
        async with self._ctx.reading() as session:
            if await session.get(models.Job, job_id) is None:
                raise job_not_found(job_id)
            query = select(models.Task).where(models.Task.job_id == job_id, *order.after(key))
            if wanted:
                query = query.where(models.Task.status.in_(wanted))
            tasks = await read_page(session, query.order_by(*order.order_by()).limit(size + 1))
            files: dict[str, list[str]] = {}
            page, token = page_of(
                tasks, size, codec=codec, scope=scope, key_of=lambda t: (t.position, t.id)
            )
            if page:
                rows = await session.execute(
                    select(models.TaskFile.task_id, models.TaskFile.file_id)
                    .where(models.TaskFile.task_id.in_([t.id for t in page]))
                    .order_by(models.TaskFile.task_id, models.TaskFile.position)
                )
                for task_id, file_id in rows:
                    files.setdefault(task_id, []).append(file_id)
        return page, files, token

    async def dead_letters(
        self, *, page_size: int, page_token: str
    ) -> tuple[list[DeadLetter], str]:
        """Tasks and files failed by the dead-letter monitor and not discarded, newest first."""
        size = names.page_size(page_size)
        scope = "admin-dead-letters"
        codec = codec_of(self._ctx)
        key = codec.decode(page_token, scope)
        pattern = DEAD_LETTER_PREFIX + "%"
        task, file, job = models.Task, models.SourceFile, models.Job
        tasks = (
            select(
                literal_column("'task'", String).label("kind"),
                task.job_id,
                task.id.label("item_id"),
                job.user_id,
                job.status.label("job_status"),
                task.last_error.label("error"),
                task.attempts,
                literal_column("''", String).label("path"),
                task.finished_at.label("failed_at"),
            )
            .join(job, job.id == task.job_id)
            .where(task.status == TaskStatus.FAILED, task.last_error.like(pattern))
        )
        files = (
            select(
                literal_column("'file'", String),
                file.job_id,
                file.id,
                job.user_id,
                job.status,
                file.error,
                literal_column("0", Integer),
                file.original_path,
                file.updated_at,
            )
            .join(job, job.id == file.job_id)
            .where(file.status == FileStatus.FAILED, file.error.like(pattern))
        )
        both = union_all(tasks, files).subquery()
        # Newest first, ties by id; a task failed without a finish time sorts as oldest.
        failed_at = func.coalesce(both.c.failed_at, _EPOCH)
        order = Keyset((failed_at, both.c.item_id), descending=True)
        async with self._ctx.reading() as session:
            rows = await read_rows(
                session,
                select(both, failed_at.label("sort_time"))
                .where(*order.after(key))
                .order_by(*order.order_by())
                .limit(size + 1),
            )
        rows, token = page_of(
            rows, size, codec=codec, scope=scope, key_of=lambda r: (r.sort_time, r.item_id)
        )
        found = [
            DeadLetter(
                kind=str(r.kind),
                job_id=r.job_id,
                item_id=r.item_id,
                owner_id=r.user_id,
                job_status=r.job_status,
                error=r.error,
                attempts=int(r.attempts or 0),
                path=r.path or "",
                failed_at=r.failed_at,
            )
            for r in rows
        ]
        return found, token

    async def queue_stats(self) -> list[QueueStat]:
        return [
            await queue_stat(self._queues.js, pool, spec, self._queues.loads)
            for pool, spec in self._queues.pools
        ]

    # -- changes -------------------------------------------------------------------------

    async def retry_task(self, *, actor: str, job_id: str, task_id: str, reason: str) -> DeadLetter:
        """A dead-lettered task queued again with fresh attempts; a finished job re-opens."""
        check_length(reason, MAX_REASON, field="reason")

        async def work(session: AsyncSession) -> DeadLetter:
            job, task = await _dead_task(session, job_id, task_id)
            if job.status == JobStatus.CANCELLED:
                raise FailedPrecondition("cannot retry the dead letter: its job was cancelled")
            why = _with_reason("an administrator retried the dead letter", reason)
            move(session, job, TaskStatus.QUEUED, row=task, actor=actor, message=why)
            task.generation += 1  # a new message id: JetStream must not drop it as a repeat
            task.attempts = 0
            job.tasks_failed = max(0, job.tasks_failed - 1)
            if job.status in (JobStatus.FAILED, JobStatus.PARTIALLY_COMPLETED):
                move(session, job, JobStatus.QUEUED, actor=actor, action="retry a dead letter")
            if job.status != JobStatus.PAUSED:
                # A paused job's queued tasks get their messages when it resumes.
                queue_task(session, task, job.user_id)
            return _task_letter(job, task)

        letter = await self._ctx.run_transaction(work)
        log.info("%s retried dead letter %s", actor, letter.name)
        return letter

    async def discard(
        self, *, actor: str, kind: str, job_id: str, item_id: str, reason: str
    ) -> DeadLetter:
        """Mark a dead letter as dealt with: it stays FAILED and leaves the list."""
        check_length(reason, MAX_REASON, field="reason")

        async def work(session: AsyncSession) -> DeadLetter:
            if kind == "task":
                job, task = await _dead_task(session, job_id, item_id)
                task.last_error = (DISCARDED_MARK + task.last_error)[:MAX_ERROR]
                letter = _task_letter(job, task)
            else:
                job, file = await _dead_file(session, job_id, item_id)
                file.error = (DISCARDED_MARK + file.error)[:MAX_ERROR]
                file.updated_at = models.utcnow()
                letter = _file_letter(job, file)
            record_event(
                session,
                job,
                kind=f"{kind}.dead_letter_discarded",
                actor=actor,
                subject=letter.name,
                message=_with_reason("an administrator discarded the dead letter", reason),
            )
            return letter

        letter = await self._ctx.run_transaction(work)
        log.info("%s discarded dead letter %s", actor, letter.name)
        return letter


def _with_reason(what: str, reason: str) -> str:
    return f"{what}: {reason.strip()}" if reason.strip() else what


async def _dead_task(
    session: AsyncSession, job_id: str, task_id: str
) -> tuple[models.Job, models.Task]:
    job = await locked_job(session, job_id)
    task = await session.get(models.Task, task_id)
    if job is None or task is None or task.job_id != job_id:
        raise NotFound(f"task {names.task_name(job_id, task_id)} not found")
    if task.status != TaskStatus.FAILED or not task.last_error.startswith(DEAD_LETTER_PREFIX):
        raise FailedPrecondition(
            f"task {names.task_name(job_id, task_id)} is not a dead letter (it is {task.status})"
        )
    return job, task


async def _dead_file(
    session: AsyncSession, job_id: str, file_id: str
) -> tuple[models.Job, models.SourceFile]:
    job = await locked_job(session, job_id)
    file = await session.get(models.SourceFile, file_id)
    if job is None or file is None or file.job_id != job_id:
        raise NotFound(f"file {names.file_name(job_id, file_id)} not found")
    if file.status != FileStatus.FAILED or not file.error.startswith(DEAD_LETTER_PREFIX):
        raise FailedPrecondition(
            f"file {names.file_name(job_id, file_id)} is not a dead letter (it is {file.status})"
        )
    return job, file


def _task_letter(job: models.Job, task: models.Task) -> DeadLetter:
    return DeadLetter(
        kind="task",
        job_id=job.id,
        item_id=task.id,
        owner_id=job.user_id,
        job_status=job.status,
        error=task.last_error,
        attempts=task.attempts,
        path="",
        failed_at=task.finished_at,
    )


def _file_letter(job: models.Job, file: models.SourceFile) -> DeadLetter:
    return DeadLetter(
        kind="file",
        job_id=job.id,
        item_id=file.id,
        owner_id=job.user_id,
        job_status=job.status,
        error=file.error,
        attempts=0,
        path=file.original_path,
        failed_at=file.updated_at,
    )
