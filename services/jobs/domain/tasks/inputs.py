"""What the extractor needs for a begun task: the job's fields, their data types, the task's
files in order and the job's system prompt."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.jobs.domain.fields import job_fields
from services.jobs.store import models


@dataclass(frozen=True, slots=True)
class TaskInput:
    proceed: bool
    reason: str = ""
    task: models.Task | None = None
    fields: list[models.JobField] = field(default_factory=list)
    data_types: list[models.DataType] = field(default_factory=list)
    files: list[models.SourceFile] = field(default_factory=list)
    system_prompt: models.SystemPrompt | None = None


async def task_input(session: AsyncSession, job: models.Job, task: models.Task) -> TaskInput:
    """What the extractor needs for a task: fields, their data types, files, the prompt."""
    fields, data_types, prompt = await _job_inputs(session, job)
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
    return TaskInput(
        proceed=True,
        task=task,
        fields=fields,
        data_types=data_types,
        files=files,
        system_prompt=prompt,
    )


async def _job_inputs(
    session: AsyncSession, job: models.Job
) -> tuple[list[models.JobField], list[models.DataType], models.SystemPrompt | None]:
    """The job's fields, their data types and its system prompt."""
    fields = await job_fields(session, job.id)
    type_ids = {f.data_type_id for f in fields}
    data_types = list(
        (
            await session.scalars(select(models.DataType).where(models.DataType.id.in_(type_ids)))
        ).all()
    )
    # The job's chosen prompt (recorded at start); jobs started before prompts could be
    # chosen have none and get the active one.
    prompt = (
        await session.get(models.SystemPrompt, job.system_prompt_id)
        if job.system_prompt_id
        else None
    ) or await session.scalar(
        select(models.SystemPrompt).where(models.SystemPrompt.active.is_(True)).limit(1)
    )
    return fields, data_types, prompt


async def task_inputs(
    session: AsyncSession, job: models.Job, tasks: Sequence[models.Task]
) -> list[TaskInput]:
    """`task_input` for many tasks of one job: fields, types and prompt read once, the
    files of every task in one query."""
    fields, data_types, prompt = await _job_inputs(session, job)
    files: dict[str, list[models.SourceFile]] = defaultdict(list)
    rows = await session.execute(
        select(models.TaskFile.task_id, models.SourceFile)
        .join(models.SourceFile, models.TaskFile.file_id == models.SourceFile.id)
        .where(models.TaskFile.task_id.in_([t.id for t in tasks]))
        .order_by(models.TaskFile.task_id, models.TaskFile.position)
    )
    for task_id, file in rows:
        files[task_id].append(file)
    return [
        TaskInput(
            proceed=True,
            task=task,
            fields=fields,
            data_types=data_types,
            files=files[task.id],
            system_prompt=prompt,
        )
        for task in tasks
    ]
