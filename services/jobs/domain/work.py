"""The messages that hand work to the workers: one ingest message per file, one extract
message per task run (tasks are built in `task_building`). Each is an outbox row in the
caller's transaction."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bytereview.core.streams import INGEST_SUBJECT, extract_lane_subject
from bytereview.extract.v1 import messages_pb2 as extract_messages
from bytereview.ingest.v1 import messages_pb2 as ingest_messages
from services.jobs.domain import names
from services.jobs.domain.status import TaskStatus, move
from services.jobs.messaging.outbox import enqueue
from services.jobs.store import models


def ingest_message_id(file_id: str) -> str:
    return f"ingest-{file_id}"


def extract_message_id(task: models.Task) -> str:
    # The generation changes when a held or failed task is queued again, so JetStream's
    # de-duplication does not drop the new message as a repeat of the old one.
    return _extract_id(task.id, task.generation)


def _extract_id(task_id: str, generation: int) -> str:
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


def queue_task(session: AsyncSession, task: models.Task, tenant: str) -> None:
    """Queue the task on its tenant's lane (the job owner's), so workers share out their
    slots between tenants instead of first in, first out (bytereview.core.fair_pull)."""
    enqueue(session, **task_message(task.job_id, task.id, task.generation, tenant))


def task_message(job_id: str, task_id: str, generation: int, tenant: str) -> dict[str, Any]:
    """The outbox row's fields for one run of a task (see `extract_message_id`), on the
    tenant's lane of the extract queue."""
    return {
        "message_id": _extract_id(task_id, generation),
        "subject": extract_lane_subject(tenant),
        "payload": extract_messages.ExtractTaskMessage(task=names.task_name(job_id, task_id)),
    }


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
        queue_task(session, task, job.user_id)
    return len(tasks)
