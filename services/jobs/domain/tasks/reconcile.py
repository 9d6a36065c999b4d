"""Puts back queue messages JetStream lost after the outbox had sent them (#17).

The relay marks a row sent once JetStream acknowledged storing its message. A store lost
afterwards (a NATS data dir wiped, a stream purged or recreated, a second nats-server on the
same directory) leaves tasks QUEUED, and files waiting for analysis, with no message: their
jobs would hang for good. Every `every` seconds this compares, per queue, the messages in the
stream with the work that should have one (cheap counts); when fewer are there on two passes
in a row, it reads which tasks (or files) the stream still holds and queues the others again
through the outbox, under new message ids. Work settling meanwhile may be queued once more;
BeginTask and the idempotent reports make that harmless.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid

from nats.js import JetStreamContext
from nats.js.errors import NotFoundError
from sqlalchemy import ColumnElement, Select, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bytereview.core import streams
from bytereview.extract.v1 import messages_pb2 as extract_messages
from bytereview.ingest.v1 import messages_pb2 as ingest_messages
from services.jobs.domain import names
from services.jobs.domain.context import JobsContext
from services.jobs.domain.status import TASK_OPEN, FileStatus, JobStatus, TaskStatus
from services.jobs.domain.work import (
    extract_message_id,
    ingest_message_id,
    queue_ingest,
    queue_task,
)
from services.jobs.store import models

log = logging.getLogger(__name__)

_OPEN_TASK = (
    models.Task.status.in_((TaskStatus.QUEUED, TaskStatus.RUNNING)),
    # A paused job's held tasks have no message.
    models.Job.status.in_((JobStatus.QUEUED, JobStatus.RUNNING)),
)
_OPEN_FILE = (
    # Queued files are UPLOADED. A nested archive is born ANALYZING and unpacked by the
    # worker holding its top-level archive's message: it has no message of its own.
    or_(
        models.SourceFile.status == FileStatus.UPLOADED,
        (models.SourceFile.status == FileStatus.ANALYZING) & models.SourceFile.parent_id.is_(None),
    ),
    models.Job.status == JobStatus.ANALYZING,
)


def _on_queue(spec: streams.QueueSpec) -> ColumnElement[bool]:
    """Outbox rows whose subject is on `spec`'s queue (any lane of a fair one)."""
    subject = models.OutboxMessage.subject
    if not spec.fair:
        return subject == spec.subject
    return or_(subject == spec.subject, subject.startswith(f"{spec.subject}.", autoescape=True))


class QueueReconciler:
    def __init__(
        self,
        *,
        ctx: JobsContext,
        js: JetStreamContext,
        ingest: streams.QueueSpec,
        extract: streams.QueueSpec,
        every: float,
        replicas: int = 1,
    ) -> None:
        self._ctx = ctx
        self._js = js
        self._ingest = ingest
        self._extract = extract
        self._every = every
        self._replicas = replicas
        self._stopping = asyncio.Event()
        # Queues short of messages on the previous pass: acted on if still short.
        self._suspect: set[str] = set()
        self.requeued = 0

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._every):
                    await self._stopping.wait()
            if self._stopping.is_set():
                return
            try:
                await self.reconcile_once()
            except Exception:
                log.exception("queue reconciliation failed; trying again later")

    async def reconcile_once(self) -> int:
        """One pass over both queues; returns how many messages were queued again."""
        requeued = 0
        for spec in (self._extract, self._ingest):
            missing = await self._missing(spec)
            if missing <= 0:
                self._suspect.discard(spec.stream)
            elif spec.stream not in self._suspect:
                # Work just settled may not have been acked yet: look again next pass.
                self._suspect.add(spec.stream)
            else:
                self._suspect.discard(spec.stream)
                log.warning("%s is %d message(s) short: queueing again", spec.stream, missing)
                requeued += await self._requeue(spec)
        self.requeued += requeued
        return requeued

    async def _missing(self, spec: streams.QueueSpec) -> int:
        """Open work minus what the stream and the unsent outbox hold (> 0: messages lost)."""
        try:
            info = await self._js.stream_info(spec.stream)
        except NotFoundError:
            # The stream itself is gone (a new, empty NATS store): declare it again.
            await streams.declare_queue(self._js, spec, replicas=self._replicas)
            info = await self._js.stream_info(spec.stream)
        in_stream = int(info.state.messages or 0)
        async with self._ctx.reading() as session:
            unsent = await session.scalar(
                select(func.count())
                .select_from(models.OutboxMessage)
                .where(
                    models.OutboxMessage.sent_at.is_(None),
                    _on_queue(spec),
                )
            )
            open_work = await session.scalar(self._open_count(spec))
        return int(open_work or 0) - in_stream - int(unsent or 0)

    def _open_count(self, spec: streams.QueueSpec) -> Select[int]:
        if spec is self._extract:
            return (
                select(func.count())
                .select_from(models.Task)
                .join(models.Job, models.Job.id == models.Task.job_id)
                .where(*_OPEN_TASK)
            )
        return (
            select(func.count())
            .select_from(models.SourceFile)
            .join(models.Job, models.Job.id == models.SourceFile.job_id)
            .where(*_OPEN_FILE)
        )

    async def _requeue(self, spec: streams.QueueSpec) -> int:
        """Queue again, under a new message id, the open work whose message is gone.

        A new id: JetStream remembers the ids it stored for its duplicate window even after
        a purge, and would drop the same id as a repeat.
        """
        extract = spec is self._extract
        async with self._ctx.reading() as session:
            unsent = set(
                (
                    await session.scalars(
                        select(models.OutboxMessage.id).where(
                            models.OutboxMessage.sent_at.is_(None),
                            _on_queue(spec),
                        )
                    )
                ).all()
            )
            open_ids = await session.scalars(
                select(models.Task.id).join(models.Job).where(*_OPEN_TASK)
                if extract
                else select(models.SourceFile.id).join(models.Job).where(*_OPEN_FILE)
            )
            # In id order: two replicas' passes write the same rows in the same order.
            wanted = sorted(open_ids.all())
        present = await self._names_in_stream(spec)

        async def work(session: AsyncSession) -> int:
            requeued = 0
            for item_id in wanted:
                if extract:
                    task = await session.get(models.Task, item_id)
                    if task is None or extract_message_id(task) in unsent:
                        continue
                    if task.status not in TASK_OPEN:
                        # Settled since it was listed: its row is written only under its
                        # job's lock (tasks.reports._LOCK_ORDER), and it needs no message.
                        continue
                    if names.task_name(task.job_id, task.id) in present:
                        continue
                    job = await session.get(models.Job, task.job_id)
                    if job is None:
                        continue
                    task.generation += 1  # a new message id (resume does the same)
                    queue_task(session, task, job.user_id)
                else:
                    file = await session.get(models.SourceFile, item_id)
                    if file is None or ingest_message_id(file.id) in unsent:
                        continue
                    if names.file_name(file.job_id, file.id) in present:
                        continue
                    again = f"{ingest_message_id(file.id)}-{uuid.uuid4().hex[:8]}"
                    queue_ingest(session, file.job_id, file, message_id=again)
                requeued += 1
            return requeued

        # It writes running tasks' rows without their jobs' (as a report does) and queued
        # ones too, which a resume or a retry writes holding the job's: a lock cycle with
        # both and a report is rare but possible, and the pass then runs again.
        return await self._ctx.run_transaction(work)

    async def _names_in_stream(self, spec: streams.QueueSpec) -> set[str]:
        """The task (or file) names of the messages the stream holds."""
        found: set[str] = set()
        seq = 1
        while True:
            try:
                raw = await self._js.get_msg(spec.stream, seq=seq, subject=">", next=True)
            except NotFoundError:
                return found
            data = raw.data or b""
            if spec is self._extract:
                found.add(extract_messages.ExtractTaskMessage.FromString(data).task)
            else:
                found.add(ingest_messages.IngestFileMessage.FromString(data).file)
            seq = int(raw.seq or seq) + 1
