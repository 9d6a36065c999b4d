"""A job ends once its last open task has settled."""

from __future__ import annotations

from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.jobs.domain.events import SYSTEM_ACTOR
from services.jobs.domain.results.scoring import SCORE_PURPOSE, settle_score
from services.jobs.domain.status import TASK_OPEN, JobStatus, SettleDue, move
from services.jobs.store import models


async def finish_if_done(session: AsyncSession, job: models.Job) -> None:
    """A queued or running job with no open task left ends: COMPLETED, PARTIALLY_COMPLETED or
    FAILED. Called after every task report, and on resume (the tasks may all have settled
    while the job was paused, and then no report would come to end it)."""
    if job.status not in (JobStatus.QUEUED, JobStatus.RUNNING):
        return
    if job.tasks_built < job.tasks_total:
        return  # TaskBuilder has tasks still to add (tasks.building)
    if job.settle_due == SettleDue.RETRY:
        return  # failed tasks still to queue again (tasks.settling)
    await session.flush()
    # EXISTS, not COUNT: one probe of ix_tasks_job_status per report, not a scan of the
    # job's open tasks (100,000 of them early in a big job).
    open_tasks = await session.scalar(
        select(
            exists().where(models.Task.job_id == job.id, models.Task.status.in_(sorted(TASK_OPEN)))
        )
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
    if job.purpose == SCORE_PURPOSE:
        await settle_score(session, job)
