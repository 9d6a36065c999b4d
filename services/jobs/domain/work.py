"""The messages that hand work to the workers: one ingest message per file, one extract
message per task run (tasks are built in `tasks.building`). Each is an outbox row in the
caller's transaction."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bytereview.core.streams import INGEST_SUBJECT, extract_lane_subject
from bytereview.extract.v1 import messages_pb2 as extract_messages
from bytereview.ingest.v1 import messages_pb2 as ingest_messages
from services.jobs.domain import names
from services.jobs.domain.status import TaskStatus
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


async def queue_again(
    session: AsyncSession, job: models.Job, *, after: int, limit: int
) -> tuple[int, int]:
    """Queue again, under new message ids, up to `limit` QUEUED tasks of `job` (its row
    locked by the caller) past position `after`, in position order. Returns how many and
    the last position queued (`after` when none): the caller goes on from there.

    A resumed job's held tasks (workers dropped their messages) and a retry's tasks get
    their messages this way, a batch per transaction (`tasks.settling`)."""
    t = models.Task
    tasks = (
        await session.scalars(
            select(t)
            .where(t.job_id == job.id, t.status == TaskStatus.QUEUED, t.position > after)
            .order_by(t.position)
            .limit(limit)
        )
    ).all()
    for task in tasks:
        task.generation += 1
        queue_task(session, task, job.user_id)
    return len(tasks), tasks[-1].position if tasks else after
