"""The messages that hand work to the workers: one ingest message per file, one extract
message per task run (tasks built here too). Each is an outbox row in the caller's
transaction."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from google.protobuf.message import Message
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from bytereview.core.streams import EXTRACT_SUBJECT, INGEST_SUBJECT
from bytereview.extract.v1 import messages_pb2 as extract_messages
from bytereview.ingest.v1 import messages_pb2 as ingest_messages
from services.jobs.domain import names
from services.jobs.domain.status import TaskMode, TaskStatus, move
from services.jobs.messaging.outbox import enqueue, enqueue_many
from services.jobs.store import models


def ingest_message_id(file_id: str) -> str:
    return f"ingest-{file_id}"


def extract_message_id(task: models.Task) -> str:
    # The generation changes when a held or failed task is queued again, so JetStream's
    # de-duplication does not drop the new message as a repeat of the old one.
    return _extract_message_id(task.id, task.generation)


def _extract_message_id(task_id: str, generation: int) -> str:
    return f"extract-{task_id}-{generation}"


def queue_ingest(
    session: AsyncSession, job_id: str, file: models.SourceFile, *, message_id: str = ""
) -> None:
    enqueue(
        session,
        message_id=message_id or ingest_message_id(file.id),
        subject=INGEST_SUBJECT,
        payload=ingest_messages.IngestFileMessage(
            file=names.file_name(job_id, file.id), storage_key=file.storage_key, depth=file.depth
        ),
    )


def queue_task(session: AsyncSession, task: models.Task) -> None:
    enqueue(
        session,
        message_id=extract_message_id(task),
        subject=EXTRACT_SUBJECT,
        payload=extract_messages.ExtractTaskMessage(task=names.task_name(task.job_id, task.id)),
    )


async def queue_new_tasks(
    session: AsyncSession, job: models.Job, files: Sequence[models.SourceFile]
) -> int:
    """One task per file (individual mode) or per folder (combined), each queued.

    Bulk INSERTs of plain rows, not ORM objects: a 10,000-file job is 30,000 rows (tasks,
    their files, their messages), which the unit of work took seconds to build and flush.
    """
    groups: list[tuple[str, list[models.SourceFile]]]
    if job.task_mode == TaskMode.COMBINED:
        by_folder: dict[str, list[models.SourceFile]] = defaultdict(list)
        for f in files:
            by_folder[f.folder].append(f)
        groups = sorted(by_folder.items())
    else:
        groups = [(f.folder, [f]) for f in files]
    now = models.utcnow()
    tasks: list[dict[str, object]] = []
    task_files: list[dict[str, object]] = []
    messages: list[tuple[str, str, Message]] = []
    for position, (folder, group) in enumerate(groups):
        task_id = models.new_id()
        tasks.append(
            {
                "id": task_id,
                "job_id": job.id,
                "position": position,
                "mode": job.task_mode,
                "folder": folder,
                "status": TaskStatus.QUEUED,
                "attempts": 0,
                "generation": 0,
                "last_error": "",
                "created_at": now,
            }
        )
        task_files.extend(
            {"task_id": task_id, "position": order, "file_id": f.id}
            for order, f in enumerate(group)
        )
        messages.append(
            (
                _extract_message_id(task_id, 0),
                EXTRACT_SUBJECT,
                extract_messages.ExtractTaskMessage(task=names.task_name(job.id, task_id)),
            )
        )
    if tasks:
        await session.execute(insert(models.Task), tasks)
        await session.execute(insert(models.TaskFile), task_files)
        await enqueue_many(session, messages)
    return len(groups)


async def requeue_tasks(
    session: AsyncSession,
    job: models.Job,
    status: TaskStatus,
    *,
    actor: str,
    reset: bool = False,
) -> int:
    """Queue the job's tasks in `status` again, under a new message id; `reset` clears
    their attempts (a retry by the user starts afresh)."""
    tasks = (
        await session.scalars(
            select(models.Task)
            .where(models.Task.job_id == job.id, models.Task.status == status)
            .order_by(models.Task.position)
        )
    ).all()
    for task in tasks:
        if task.status != TaskStatus.QUEUED:
            move(session, job, TaskStatus.QUEUED, row=task, actor=actor, record=False)
        task.generation += 1
        if reset:
            task.attempts = 0
        queue_task(session, task)
    return len(tasks)
