"""Reports from the ingest and extract workers. Every one is idempotent.

Keys: a file's analysis by file id (a settled file ignores repeats), an archive
entry by (archive, entry index), a task's result by task id (one result per task).
A repeated report returns `applied=False` and changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bytereview.core.errors import InvalidArgument, NotFound
from services.jobs import models, names
from services.jobs.context import JobsContext, locked_job
from services.jobs.events import SYSTEM_ACTOR, record_event
from services.jobs.jobs import clean_path, folder_of, queue_ingest, set_job_status
from services.jobs.metrics import observe_task
from services.jobs.statemachine import FILE_SETTLED, TASK_SETTLED, check_transition

MAX_ENTRIES_PER_REPORT = 1000


@dataclass(frozen=True, slots=True)
class FileAnalysis:
    status: str
    media_type: str = ""
    size_bytes: int = 0
    sha256: str = ""
    page_count: int = 0
    width: int = 0
    height: int = 0
    error: str = ""


@dataclass(frozen=True, slots=True)
class ArchiveEntry:
    index: int
    path: str
    storage_key: str
    size_bytes: int
    analysis: FileAnalysis | None = None


@dataclass(frozen=True, slots=True)
class TaskInput:
    proceed: bool
    reason: str = ""
    task: models.Task | None = None
    fields: list[models.JobField] = field(default_factory=list)
    data_types: list[models.DataType] = field(default_factory=list)
    files: list[models.SourceFile] = field(default_factory=list)
    system_prompt: models.SystemPrompt | None = None


def _apply_analysis(row: models.SourceFile, analysis: FileAnalysis) -> None:
    row.status = analysis.status
    row.media_type = analysis.media_type[:200]
    row.size_bytes = analysis.size_bytes
    row.sha256 = analysis.sha256[:64]
    row.page_count = analysis.page_count
    row.width = analysis.width
    row.height = analysis.height
    row.error = analysis.error[:2000]
    row.updated_at = models.utcnow()


def _count_settled(job: models.Job, before: str, after: str) -> None:
    """Keep the job's file counters in step with one file's status change."""
    if before in FILE_SETTLED or after not in FILE_SETTLED:
        return
    if after == "READY":
        job.files_ready += 1
    elif after in ("FAILED", "UNSUPPORTED"):
        job.files_failed += 1


class Reports:
    def __init__(self, ctx: JobsContext) -> None:
        self._ctx = ctx

    async def file_analysis(
        self, job_id: str, file_id: str, analysis: FileAnalysis
    ) -> tuple[models.SourceFile, bool]:
        if analysis.status not in FILE_SETTLED and analysis.status != "ANALYZING":
            raise InvalidArgument(f"status {analysis.status!r} is not a result of analysis")
        async with self._ctx.transaction() as session:
            job = await locked_job(session, job_id)
            row = await session.get(models.SourceFile, file_id)
            if job is None or row is None or row.job_id != job_id:
                raise NotFound(f"file {names.file_name(job_id, file_id)} not found")
            if (
                row.status in FILE_SETTLED
                or job.status == "CANCELLED"
                or row.status == analysis.status
            ):
                return row, False
            before = row.status
            check_transition("file", before, analysis.status)
            _apply_analysis(row, analysis)
            _count_settled(job, before, analysis.status)
            record_event(
                session,
                job,
                kind="file.status",
                actor=SYSTEM_ACTOR,
                subject=names.file_name(job_id, file_id),
                from_status=before,
                to_status=analysis.status,
                message=analysis.error,
            )
            await self._maybe_ready(session, job)
        return row, True

    async def archive_entries(
        self, job_id: str, archive_id: str, entries: Sequence[ArchiveEntry]
    ) -> tuple[int, list[str]]:
        if len(entries) > MAX_ENTRIES_PER_REPORT:
            raise InvalidArgument(f"at most {MAX_ENTRIES_PER_REPORT} entries per report")
        prefix = f"jobs/{job_id}/"
        created = 0
        queued: list[str] = []
        async with self._ctx.transaction() as session:
            job = await locked_job(session, job_id)
            archive = await session.get(models.SourceFile, archive_id)
            if job is None or archive is None or archive.job_id != job_id:
                raise NotFound(f"file {names.file_name(job_id, archive_id)} not found")
            if job.status == "CANCELLED" or archive.status in FILE_SETTLED:
                return 0, []
            have = set(
                (
                    await session.scalars(
                        select(models.SourceFile.archive_index).where(
                            models.SourceFile.parent_id == archive_id
                        )
                    )
                ).all()
            )
            for entry in entries:
                if entry.index in have:
                    continue  # redelivered archive: this entry is registered already
                if not entry.storage_key.startswith(prefix) or ".." in entry.storage_key:
                    raise InvalidArgument(f"entry {entry.index} is stored outside the job's prefix")
                path = clean_path(f"{archive.original_path}/{entry.path}", field="entry.path")
                row = models.SourceFile(
                    job_id=job_id,
                    parent_id=archive_id,
                    archive_index=entry.index,
                    depth=archive.depth + 1,
                    original_path=path,
                    folder=folder_of(path),
                    storage_key=entry.storage_key,
                    declared_size=entry.size_bytes,
                    size_bytes=entry.size_bytes,
                    status="UPLOADED",
                )
                session.add(row)
                have.add(entry.index)
                created += 1
                job.files_total += 1
                if entry.analysis is not None and entry.analysis.status in FILE_SETTLED:
                    _apply_analysis(row, entry.analysis)
                    _count_settled(job, "UPLOADED", entry.analysis.status)
                else:
                    await session.flush()
                    queue_ingest(session, job_id, row)
                    queued.append(names.file_name(job_id, row.id))
            if created:
                record_event(
                    session,
                    job,
                    kind="archive.entries",
                    actor=SYSTEM_ACTOR,
                    subject=names.file_name(job_id, archive_id),
                    message=f"{created} file(s) unpacked",
                )
        return created, queued

    async def _maybe_ready(self, session: AsyncSession, job: models.Job) -> None:
        """ANALYZING -> READY once no file of the job is still waiting for analysis."""
        if job.status != "ANALYZING":
            return
        await session.flush()
        unsettled = await session.scalar(
            select(func.count())
            .select_from(models.SourceFile)
            .where(
                models.SourceFile.job_id == job.id,
                models.SourceFile.status.in_(("PENDING_UPLOAD", "UPLOADED", "ANALYZING")),
            )
        )
        if not unsettled:
            set_job_status(
                session,
                job,
                "READY",
                actor=SYSTEM_ACTOR,
                action="finish analysis",
                message=f"{job.files_ready} usable file(s), {job.files_failed} not usable",
            )

    async def begin_task(self, job_id: str, task_id: str) -> TaskInput:
        async with self._ctx.transaction() as session:
            job, task = await _locked_task(session, job_id, task_id)
            if task.status in TASK_SETTLED:
                return TaskInput(proceed=False, reason=f"task is {task.status}")
            if job.status in ("PAUSED", "CANCELLED"):
                return TaskInput(proceed=False, reason=f"job is {job.status}")
            if task.status == "QUEUED":
                check_transition("task", "QUEUED", "RUNNING")
                task.status = "RUNNING"
                record_event(
                    session,
                    job,
                    kind="task.status",
                    actor=SYSTEM_ACTOR,
                    subject=names.task_name(job_id, task_id),
                    from_status="QUEUED",
                    to_status="RUNNING",
                )
            # A RUNNING task seen again was redelivered after a worker died: run it again.
            task.attempts += 1
            task.started_at = models.utcnow()
            if job.status == "QUEUED":
                set_job_status(session, job, "RUNNING", actor=SYSTEM_ACTOR, action="run")
            fields = list(
                (
                    await session.scalars(
                        select(models.JobField)
                        .where(models.JobField.job_id == job_id)
                        .order_by(models.JobField.position)
                    )
                ).all()
            )
            type_ids = {f.data_type_id for f in fields}
            data_types = list(
                (
                    await session.scalars(
                        select(models.DataType).where(models.DataType.id.in_(type_ids))
                    )
                ).all()
            )
            files = list(
                (
                    await session.scalars(
                        select(models.SourceFile)
                        .join(models.TaskFile, models.TaskFile.file_id == models.SourceFile.id)
                        .where(models.TaskFile.task_id == task_id)
                        .order_by(models.TaskFile.position)
                    )
                ).all()
            )
            prompt = await session.scalar(
                select(models.SystemPrompt).where(models.SystemPrompt.active.is_(True)).limit(1)
            )
        return TaskInput(
            proceed=True,
            task=task,
            fields=fields,
            data_types=data_types,
            files=files,
            system_prompt=prompt,
        )

    async def task_result(
        self,
        job_id: str,
        task_id: str,
        *,
        values: dict[str, Any],
        value_sources: dict[str, str],
        input_tokens: int,
        output_tokens: int,
        extractor: str,
    ) -> bool:
        async with self._ctx.transaction() as session:
            job, task = await _locked_task(session, job_id, task_id)
            if task.status != "RUNNING":
                return False  # settled already (a repeat), or cancelled meanwhile
            check_transition("task", task.status, "SUCCEEDED")
            task.status = "SUCCEEDED"
            task.finished_at = models.utcnow()
            task.last_error = ""
            session.add(
                models.Result(
                    job_id=job_id,
                    task_id=task_id,
                    position=task.position,
                    values=values,
                    value_sources=value_sources,
                    input_tokens=max(0, input_tokens),
                    output_tokens=max(0, output_tokens),
                    extractor=extractor[:100],
                )
            )
            job.tasks_succeeded += 1
            observe_task(task, "succeeded")
            record_event(
                session,
                job,
                kind="task.status",
                actor=SYSTEM_ACTOR,
                subject=names.task_name(job_id, task_id),
                from_status="RUNNING",
                to_status="SUCCEEDED",
            )
            await self._maybe_finish(session, job)
        return True

    async def task_failure(
        self, job_id: str, task_id: str, *, failure_class: str, error: str
    ) -> tuple[bool, str]:
        if failure_class not in ("RETRYABLE", "PERMANENT", "EXHAUSTED"):
            raise InvalidArgument("failure_class must be RETRYABLE, PERMANENT or EXHAUSTED")
        async with self._ctx.transaction() as session:
            job, task = await _locked_task(session, job_id, task_id)
            if task.status != "RUNNING":
                return False, task.status
            target = "QUEUED" if failure_class == "RETRYABLE" else "FAILED"
            check_transition("task", task.status, target)
            task.status = target
            task.last_error = error[:2000]
            if target == "FAILED":
                task.finished_at = models.utcnow()
                job.tasks_failed += 1
                observe_task(task, "failed")
            record_event(
                session,
                job,
                kind="task.status",
                actor=SYSTEM_ACTOR,
                subject=names.task_name(job_id, task_id),
                from_status="RUNNING",
                to_status=target,
                message=f"{failure_class}: {error}",
            )
            if target == "FAILED":
                await self._maybe_finish(session, job)
        return True, target

    async def dead_letter_task(self, job_id: str, task_id: str, *, error: str) -> bool:
        """A task JetStream gave up on: FAILED, whether it was queued or running."""
        async with self._ctx.transaction() as session:
            job, task = await _locked_task(session, job_id, task_id)
            if task.status not in ("QUEUED", "RUNNING"):
                return False
            previous = task.status
            check_transition("task", previous, "FAILED")
            task.status = "FAILED"
            task.last_error = error[:2000]
            task.finished_at = models.utcnow()
            job.tasks_failed += 1
            record_event(
                session,
                job,
                kind="task.status",
                actor=SYSTEM_ACTOR,
                subject=names.task_name(job_id, task_id),
                from_status=previous,
                to_status="FAILED",
                message=f"EXHAUSTED: {error}",
            )
            await self._maybe_finish(session, job)
        return True

    async def _maybe_finish(self, session: AsyncSession, job: models.Job) -> None:
        if job.status not in ("QUEUED", "RUNNING"):
            return
        await session.flush()
        open_tasks = await session.scalar(
            select(func.count())
            .select_from(models.Task)
            .where(models.Task.job_id == job.id, models.Task.status.in_(("QUEUED", "RUNNING")))
        )
        if open_tasks:
            return
        # A file that failed analysis or unpacking has no result either: never COMPLETED.
        if job.tasks_failed == 0 and job.files_failed == 0:
            target = "COMPLETED"
        elif job.tasks_succeeded == 0:
            target = "FAILED"
        else:
            target = "PARTIALLY_COMPLETED"
        message = f"{job.tasks_succeeded} succeeded, {job.tasks_failed} failed"
        if job.files_failed:
            message += f", {job.files_failed} file(s) not usable"
        set_job_status(session, job, target, actor=SYSTEM_ACTOR, action="finish", message=message)

    async def file_for(self, job_id: str, file_id: str, user_id: str | None) -> models.SourceFile:
        """A file, for a worker (any job) or a user (their own jobs only)."""
        async with self._ctx.reading() as session:
            query = (
                select(models.SourceFile)
                .join(models.Job, models.Job.id == models.SourceFile.job_id)
                .where(models.SourceFile.id == file_id, models.SourceFile.job_id == job_id)
            )
            if user_id is not None:
                query = query.where(models.Job.user_id == user_id)
            row = await session.scalar(query)
        if row is None:
            raise NotFound(f"file {names.file_name(job_id, file_id)} not found")
        return row


async def _locked_task(
    session: AsyncSession, job_id: str, task_id: str
) -> tuple[models.Job, models.Task]:
    """The task and its job, the job row locked (every task report changes job counters)."""
    job = await locked_job(session, job_id)
    task = await session.get(models.Task, task_id)
    if job is None or task is None or task.job_id != job_id:
        raise NotFound(f"task {names.task_name(job_id, task_id)} not found")
    return job, task
