"""Settling a big job's open tasks in batches, so CancelJob, ResumeJob and RetryFailedTasks
answer in constant time.

Cancelling a job of 100,000 queued tasks in one statement, under the job's row lock, took
2.3 s on PostgreSQL, and every task report of the job waited behind it. CancelJob now only
moves the job to CANCELLED; `TaskSettler` then cancels its open tasks, BATCH per
transaction. The job's status is the durable intent: a replica that restarts (or any other
replica) finds the cancelled jobs that still have open tasks and goes on. Nothing else
writes an open task of a cancelled job meanwhile: BeginTask refuses it, and reports on it
change nothing (`task_reports`), so a batch needs no job lock and delays no one.

Resume and retry queue their tasks' messages the same way: the first batch in the request,
the rest here (`JobsContext.settling` says which job and from which position). The tasks are
QUEUED, so open, in the database already: the job cannot finish early, and messages lost to
a crash between batches are queued again by `reconcile.QueueReconciler`, which finds a
queue short of the job's open tasks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from sqlalchemy import exists, select

from services.jobs.domain.context import JobsContext, locked_job
from services.jobs.domain.status import TASK_OPEN, JobStatus, cancel_open_tasks
from services.jobs.domain.work import queue_again
from services.jobs.store import models

log = logging.getLogger(__name__)

# Tasks per transaction (as task_building.BATCH): short enough that a batch of messages,
# which holds the job's row lock, never makes the job's reports queue for long.
BATCH = 250
# Jobs whose queued tasks may be queued again.
_ACTIVE = (JobStatus.QUEUED, JobStatus.RUNNING)


class TaskSettler:
    """Cancels the open tasks of cancelled jobs, and queues again the tasks of resumed or
    retried jobs, a batch per transaction, in the background."""

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
        requeued = await self.requeue_some()
        return cancelled + requeued > 0

    async def cancel_some(self) -> int:
        """One batch of each cancelled job's open tasks -> CANCELLED; how many."""
        t = models.Task
        async with self._ctx.reading() as session:
            jobs = (
                await session.scalars(
                    select(models.Job.id).where(
                        models.Job.status == JobStatus.CANCELLED,
                        exists().where(t.job_id == models.Job.id, t.status.in_(sorted(TASK_OPEN))),
                    )
                )
            ).all()
        done = 0
        for job_id in jobs:
            async with self._ctx.transaction() as session:
                done += await cancel_open_tasks(session, job_id, limit=BATCH)
        return done

    async def requeue_some(self) -> int:
        """One batch of messages for each job this process resumed or retried; how many."""
        pending = self._ctx.settling.requeue
        done = 0
        for job_id, after in list(pending.items()):
            async with self._ctx.transaction() as session:
                job = await locked_job(session, job_id)
                if job is None or job.status not in _ACTIVE:
                    # Paused, cancelled or deleted meanwhile: a resume starts over.
                    queued, last = 0, after
                else:
                    queued, last = await queue_again(session, job, after=after, limit=BATCH)
            done += queued
            # A newer resume of the same job may have started over meanwhile: keep its place.
            if pending.get(job_id) == after:
                if queued < BATCH:
                    del pending[job_id]
                else:
                    pending[job_id] = last
        return done
