"""Settling a big job's tasks in batches, so CancelJob, ResumeJob and RetryFailedTasks
answer in constant time.

Cancelling a job of 100,000 queued tasks in one statement, under the job's row lock, took
2.3 s on PostgreSQL, and every task report of the job waited behind it; re-opening 100,000
failed tasks in one statement held the same lock as long. Both requests now only move the
job (to CANCELLED, or to QUEUED) and write what is still owed in the job's own row,
`settle_due` ("cancel" or "retry"), in the same transaction. `TaskSettler` then does the
work, BATCH tasks per transaction, and clears the mark with the last batch. The mark is the
durable intent: a replica that restarts (or any other replica) finds it and goes on, and
only marked jobs are ever looked at (a partial index holds them), however many cancelled
or finished jobs are kept.

- "cancel": the open tasks -> CANCELLED. Nothing else writes an open task of a cancelled
  job meanwhile: BeginTask refuses it, and reports on it change nothing (`tasks.reports`),
  so a batch needs no job lock and delays no one.
- "retry": failed tasks -> QUEUED (fresh attempts, a new message id each) with their
  messages and the job's failed counter, under the job's row lock like any report. The job
  cannot finish while the mark is set (`tasks.reports.finish_if_done`), though every task
  re-opened so far may have finished; the batch that clears the mark ends it then.
  RetryFailedTasks does the first batch itself. A paused job keeps its mark and goes on
  when resumed; a cancelled one trades it for "cancel" (its failed tasks stay FAILED).

Resume queues its held tasks' messages the same way, from memory: the first batch in the
request, the rest here (`JobsContext.settling` says which job and from which position).
The tasks are QUEUED, so open, in the database already: the job cannot finish early, and
messages lost to a crash between batches are queued again by `reconcile.QueueReconciler`,
which finds a queue short of the job's open tasks.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging

from sqlalchemy import exists, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.jobs.domain.context import JobsContext, locked_job
from services.jobs.domain.status import (
    TASK_OPEN,
    JobStatus,
    SettleDue,
    cancel_open_tasks,
    requeue_failed_tasks,
)
from services.jobs.domain.tasks.finishing import finish_if_done
from services.jobs.domain.work import queue_again, task_message
from services.jobs.messaging import enqueue_many
from services.jobs.store import models

log = logging.getLogger(__name__)

# Tasks per transaction (as tasks.building.BATCH): short enough that a batch of messages,
# which holds the job's row lock, never makes the job's reports queue for long.
BATCH = 250
# Jobs whose queued tasks may be queued again.
_ACTIVE = (JobStatus.QUEUED, JobStatus.RUNNING)


async def retry_batch(session: AsyncSession, job: models.Job) -> int:
    """Up to BATCH failed tasks of `job` (its row locked by the caller, its mark "retry")
    queued again; the mark is cleared once none is left. Returns how many."""
    requeued = await requeue_failed_tasks(session, job.id, limit=BATCH)
    messages = [task_message(job.id, task_id, gen, job.user_id) for task_id, gen in requeued]
    await enqueue_many(session, [(m["message_id"], m["subject"], m["payload"]) for m in messages])
    job.tasks_failed = max(0, job.tasks_failed - len(requeued))
    if len(requeued) < BATCH:
        job.settle_due = SettleDue.NOTHING
        # The tasks re-opened before may all have finished: no report would end the job.
        await finish_if_done(session, job)
    return len(requeued)


class TaskSettler:
    """Cancels the open tasks of cancelled jobs, queues again the failed tasks of retried
    jobs and the held tasks of resumed ones, a batch per transaction, in the background."""

    def __init__(self, ctx: JobsContext, *, poll_seconds: float = 1.0) -> None:
        self._ctx = ctx
        self._poll = poll_seconds
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        self._stopping.set()
        self._ctx.settling.wake()

    async def run(self) -> None:
        woken = self._ctx.settling.woken
        while not self._stopping.is_set():
            woken.clear()
            try:
                busy = await self.settle_some()
            except Exception:
                # The database being away is a wait: the next pass tries again.
                log.exception("settling tasks failed; trying again")
                busy = False
            if not busy:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(woken.wait(), self._poll)

    async def settle_some(self) -> bool:
        """One batch for each job with work left; True if anything was done."""
        cancelled = await self.cancel_some()
        retried = await self.retry_some()
        requeued = await self.requeue_some()
        return cancelled + retried + requeued > 0

    async def _marked(self, due: SettleDue) -> list[str]:
        """The jobs marked `due`, off the partial index of marked jobs."""
        async with self._ctx.reading() as session:
            found = await session.scalars(
                select(models.Job.id).where(
                    models.Job.settle_due != SettleDue.NOTHING, models.Job.settle_due == due
                )
            )
            return list(found.all())

    async def cancel_some(self) -> int:
        """One batch of each cancelled job's open tasks -> CANCELLED; how many."""
        done = 0
        for job_id in await self._marked(SettleDue.CANCEL):
            cancelled = await self._ctx.run_transaction(
                functools.partial(cancel_open_tasks, job_id=job_id, limit=BATCH)
            )
            done += cancelled
            if cancelled < BATCH:
                await self._cancelled_all(job_id)
        return done

    async def _cancelled_all(self, job_id: str) -> None:
        """Clears the job's "cancel" mark if no open task is left. A short batch alone does
        not say so: rows another replica's batch holds were skipped, not counted."""
        t, j = models.Task, models.Job
        clear = (
            update(j)
            .where(
                j.id == job_id,
                j.settle_due == SettleDue.CANCEL,
                ~exists().where(t.job_id == job_id, t.status.in_(sorted(TASK_OPEN))),
            )
            .values(settle_due=SettleDue.NOTHING)
            .execution_options(synchronize_session=False)
        )
        await self._ctx.run_transaction(lambda session: session.execute(clear))

    async def retry_some(self) -> int:
        """One batch of each retried job's failed tasks queued again; how many."""
        done = 0
        for job_id in await self._marked(SettleDue.RETRY):
            done += await self._ctx.run_transaction(
                functools.partial(self._retry_batch, job_id=job_id)
            )
        return done

    @staticmethod
    async def _retry_batch(session: AsyncSession, job_id: str) -> int:
        job = await locked_job(session, job_id)
        if job is None or job.settle_due != SettleDue.RETRY:
            return 0  # done by another replica, cancelled or deleted meanwhile
        if job.status == JobStatus.PAUSED:
            return 0  # held: resumed, it goes on
        if job.status not in _ACTIVE:
            job.settle_due = SettleDue.NOTHING  # cannot happen; never loop on it
            return 0
        return await retry_batch(session, job)

    async def requeue_some(self) -> int:
        """One batch of messages for each job this process resumed; how many."""
        pending = self._ctx.settling.requeue
        done = 0
        for job_id, after in list(pending.items()):
            queued, last = await self._ctx.run_transaction(
                functools.partial(self._requeue_batch, job_id=job_id, after=after)
            )
            done += queued
            # A newer resume of the same job may have started over meanwhile: keep its place.
            if pending.get(job_id) == after:
                if queued < BATCH:
                    del pending[job_id]
                else:
                    pending[job_id] = last
        return done

    @staticmethod
    async def _requeue_batch(session: AsyncSession, job_id: str, after: int) -> tuple[int, int]:
        job = await locked_job(session, job_id)
        if job is None or job.status not in _ACTIVE:
            return 0, after  # paused, cancelled or deleted meanwhile: a resume starts over
        return await queue_again(session, job, after=after, limit=BATCH)
