"""Reports from the extract workers: a task begins, succeeds or fails. Every one is idempotent.

A task's result is keyed by task id (one result per task); a report on a task that is no
longer running returns `applied=False` and changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bytereview.core.errors import InvalidArgument, NotFound
from bytereview.core.limits import MAX_ERROR, MAX_EXTRACTOR
from services.jobs.domain import names, review
from services.jobs.domain.context import JobsContext, locked_job
from services.jobs.domain.events import SYSTEM_ACTOR
from services.jobs.domain.metrics import observe_task
from services.jobs.domain.status import TASK_OPEN, TASK_SETTLED, JobStatus, TaskStatus, move
from services.jobs.store import models

FAILURE_CLASSES = ("RETRYABLE", "PERMANENT", "EXHAUSTED")


@dataclass(frozen=True, slots=True)
class TaskInput:
    proceed: bool
    reason: str = ""
    task: models.Task | None = None
    fields: list[models.JobField] = field(default_factory=list)
    data_types: list[models.DataType] = field(default_factory=list)
    files: list[models.SourceFile] = field(default_factory=list)
    system_prompt: models.SystemPrompt | None = None


class TaskReports:
    def __init__(self, ctx: JobsContext) -> None:
        self._ctx = ctx

    async def begin_task(self, job_id: str, task_id: str) -> TaskInput:
        async with self._ctx.transaction() as session:
            job, task = await _locked_task(session, job_id, task_id)
            if task.status in TASK_SETTLED:
                return TaskInput(proceed=False, reason=f"task is {task.status}")
            if job.status in (JobStatus.PAUSED, JobStatus.CANCELLED):
                return TaskInput(proceed=False, reason=f"job is {job.status}")
            if task.status == TaskStatus.QUEUED:
                move(session, job, TaskStatus.RUNNING, row=task, actor=SYSTEM_ACTOR)
            else:
                # A RUNNING task seen again was redelivered after a worker died: run it again.
                task.started_at = models.utcnow()
            task.attempts += 1
            if job.status == JobStatus.QUEUED:
                move(session, job, JobStatus.RUNNING, actor=SYSTEM_ACTOR, action="run")
            return await _task_input(session, job_id, task)

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
        assessments: dict[str, dict[str, Any]] | None = None,
    ) -> bool:
        async with self._ctx.transaction() as session:
            job, task = await _locked_task(session, job_id, task_id)
            if task.status != TaskStatus.RUNNING:
                return False  # settled already (a repeat), or cancelled meanwhile
            move(session, job, TaskStatus.SUCCEEDED, row=task, actor=SYSTEM_ACTOR)
            task.last_error = ""
            result = models.Result(
                job_id=job_id,
                task_id=task_id,
                position=task.position,
                values=values,
                value_sources=value_sources,
                input_tokens=max(0, input_tokens),
                output_tokens=max(0, output_tokens),
                extractor=extractor[:MAX_EXTRACTOR],
                assessments={
                    k: review.clean(v) for k, v in (assessments or {}).items() if k in values
                },
                review_count=0,
            )
            threshold = self._ctx.settings.review_confidence_threshold
            job.values_needing_review = (job.values_needing_review or 0) + review.settle(
                result, threshold
            )
            session.add(result)
            job.tasks_succeeded += 1
            observe_task(task, "succeeded")
            await self._maybe_finish(session, job)
        return True

    async def task_failure(
        self, job_id: str, task_id: str, *, failure_class: str, error: str
    ) -> tuple[bool, str]:
        if failure_class not in FAILURE_CLASSES:
            raise InvalidArgument("failure_class must be RETRYABLE, PERMANENT or EXHAUSTED")
        async with self._ctx.transaction() as session:
            job, task = await _locked_task(session, job_id, task_id)
            if task.status != TaskStatus.RUNNING:
                return False, task.status
            target = TaskStatus.QUEUED if failure_class == "RETRYABLE" else TaskStatus.FAILED
            move(
                session,
                job,
                target,
                row=task,
                actor=SYSTEM_ACTOR,
                message=f"{failure_class}: {error}",
            )
            task.last_error = error[:MAX_ERROR]
            if target == TaskStatus.FAILED:
                job.tasks_failed += 1
                observe_task(task, "failed")
                await self._maybe_finish(session, job)
        return True, target

    async def dead_letter_task(self, job_id: str, task_id: str, *, error: str) -> bool:
        """A task JetStream gave up on: FAILED, whether it was queued or running."""
        async with self._ctx.transaction() as session:
            job, task = await _locked_task(session, job_id, task_id)
            if task.status not in TASK_OPEN:
                return False
            move(
                session,
                job,
                TaskStatus.FAILED,
                row=task,
                actor=SYSTEM_ACTOR,
                message=f"EXHAUSTED: {error}",
            )
            task.last_error = error[:MAX_ERROR]
            job.tasks_failed += 1
            await self._maybe_finish(session, job)
        return True

    async def _maybe_finish(self, session: AsyncSession, job: models.Job) -> None:
        await finish_if_done(session, job)


async def finish_if_done(session: AsyncSession, job: models.Job) -> None:
    """A queued or running job with no open task left ends: COMPLETED, PARTIALLY_COMPLETED or
    FAILED. Called after every task report, and on resume (the tasks may all have settled
    while the job was paused, and then no report would come to end it)."""
    if job.status not in (JobStatus.QUEUED, JobStatus.RUNNING):
        return
    await session.flush()
    open_tasks = await session.scalar(
        select(func.count())
        .select_from(models.Task)
        .where(models.Task.job_id == job.id, models.Task.status.in_(sorted(TASK_OPEN)))
    )
    if open_tasks:
        return
    # A file that failed analysis or unpacking has no result either: never COMPLETED.
    if job.tasks_failed == 0 and job.files_failed == 0:
        target = JobStatus.COMPLETED
    elif job.tasks_succeeded == 0:
        target = JobStatus.FAILED
    else:
        target = JobStatus.PARTIALLY_COMPLETED
    message = f"{job.tasks_succeeded} succeeded, {job.tasks_failed} failed"
    if job.files_failed:
        message += f", {job.files_failed} file(s) not usable"
    move(session, job, target, actor=SYSTEM_ACTOR, action="finish", message=message)


async def _locked_task(
    session: AsyncSession, job_id: str, task_id: str
) -> tuple[models.Job, models.Task]:
    """The task and its job, the job row locked (every task report changes job counters)."""
    job = await locked_job(session, job_id)
    task = await session.get(models.Task, task_id)
    if job is None or task is None or task.job_id != job_id:
        raise NotFound(f"task {names.task_name(job_id, task_id)} not found")
    return job, task


async def _task_input(session: AsyncSession, job_id: str, task: models.Task) -> TaskInput:
    """What the extractor needs for a task: fields, their data types, files, the prompt."""
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
            await session.scalars(select(models.DataType).where(models.DataType.id.in_(type_ids)))
        ).all()
    )
    files = list(
        (
            await session.scalars(
                select(models.SourceFile)
                .join(models.TaskFile, models.TaskFile.file_id == models.SourceFile.id)
                .where(models.TaskFile.task_id == task.id)
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
