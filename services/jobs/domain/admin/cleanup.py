"""The scheduled clean-ups (the seed's three), each safe to run again and again.

- abandoned: jobs never finalized (still PENDING_UPLOAD) N hours after creation.
- ephemeral: jobs with persist_data=false, N hours after they finished.
- orphans: storage objects under a job's prefix (`storage_keys.job_prefix`) whose job no
  longer exists, older than N hours.

Each removes database rows first and storage second, so a crash in between leaves
only orphans, which the orphans clean-up removes on its next run.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import logging
from dataclasses import dataclass

from sqlalchemy import ColumnElement, select
from sqlalchemy.ext.asyncio import AsyncSession

from bytereview.core import storage_keys
from services.jobs.domain.context import JobsContext
from services.jobs.domain.status import JOB_FINAL, JobStatus
from services.jobs.store import models

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CleanupReport:
    task: str
    jobs_deleted: int = 0
    objects_deleted: int = 0

    def __str__(self) -> str:
        return f"{self.task}: {self.jobs_deleted} job(s), {self.objects_deleted} object(s) removed"


async def _delete_job(session: AsyncSession, job_id: str) -> bool:
    """Whether the job was there to delete."""
    job = await session.get(models.Job, job_id)
    if job is None:
        return False
    await session.delete(job)
    return True


class Cleanup:
    def __init__(self, ctx: JobsContext) -> None:
        self._ctx = ctx

    async def _delete_jobs(self, task: str, job_ids: list[str]) -> CleanupReport:
        objects = 0
        deleted = 0
        for job_id in job_ids:
            # Its tasks go with it (ON DELETE CASCADE), as in DeleteJob, and a lock cycle
            # with a report runs it again (JobsContext.run_transaction).
            if not await self._ctx.run_transaction(functools.partial(_delete_job, job_id=job_id)):
                continue
            deleted += 1
            objects += await asyncio.to_thread(
                self._ctx.storage.delete_prefix, storage_keys.job_prefix(job_id)
            )
            log.info("%s: deleted job %s", task, job_id)
        return CleanupReport(task, deleted, objects)

    async def abandoned(
        self, *, older_than: dt.timedelta, now: dt.datetime | None = None
    ) -> CleanupReport:
        """Jobs never finalized: created, uploads never completed."""
        cutoff = (now or models.utcnow()) - older_than
        return await self._delete_matching(
            "abandoned",
            models.Job.status == JobStatus.PENDING_UPLOAD,
            models.Job.created_at < cutoff,
        )

    async def ephemeral(
        self, *, older_than: dt.timedelta, now: dt.datetime | None = None
    ) -> CleanupReport:
        """Finished jobs whose owner asked not to keep the data."""
        cutoff = (now or models.utcnow()) - older_than
        return await self._delete_matching(
            "ephemeral",
            models.Job.persist_data.is_(False),
            models.Job.status.in_(sorted(JOB_FINAL)),
            models.Job.finished_at < cutoff,
        )

    async def _delete_matching(self, task: str, *conditions: ColumnElement[bool]) -> CleanupReport:
        async with self._ctx.reading() as session:
            ids = list((await session.scalars(select(models.Job.id).where(*conditions))).all())
        return await self._delete_jobs(task, ids)

    async def orphans(
        self, *, older_than: dt.timedelta, now: dt.datetime | None = None
    ) -> CleanupReport:
        """Objects of jobs that no longer exist. Young prefixes are left alone: a job being
        created writes its row before its uploads, but a slow replica may still be mid-way."""
        storage = self._ctx.storage
        keys = await asyncio.to_thread(lambda: list(storage.list_keys(storage_keys.JOBS_PREFIX)))
        by_job: dict[str, list[str]] = {}
        for key in keys:
            job_id = storage_keys.job_of_key(key)
            if job_id is not None:
                by_job.setdefault(job_id, []).append(key)
        if not by_job:
            return CleanupReport("orphans")
        async with self._ctx.reading() as session:
            existing = set(
                (
                    await session.scalars(
                        select(models.Job.id).where(models.Job.id.in_(sorted(by_job)))
                    )
                ).all()
            )
        cutoff = (now or models.utcnow()) - older_than
        removed = 0
        for job_id, job_keys in by_job.items():
            if job_id in existing:
                continue
            if not await asyncio.to_thread(self._older_than, job_keys[0], cutoff):
                continue
            removed += await asyncio.to_thread(
                storage.delete_prefix, storage_keys.job_prefix(job_id)
            )
        return CleanupReport("orphans", 0, removed)

    def _older_than(self, key: str, cutoff: dt.datetime) -> bool:
        when = self._ctx.storage.modified_time(key)
        return when is None or when < cutoff
