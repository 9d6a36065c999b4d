"""Reads of jobs and what belongs to them: pages of jobs, files, tasks, results, events."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute, Session
from sqlalchemy.sql.elements import ColumnElement

from services.jobs.domain import names
from services.jobs.domain.context import JobsContext, job_not_found, owned_job, owned_job_query
from services.jobs.domain.fields import FieldSpec, from_dicts
from services.jobs.domain.pages.keyset import Keyset, page_of, read_page, read_rows_sync
from services.jobs.domain.pages.tokens import PageTokens, page_tokens
from services.jobs.domain.status import FILE_WAITING, JOB_ANALYSING, FileStatus, TaskStatus
from services.jobs.store import models

_Row = TypeVar("_Row", bound=models.Base)


@dataclass(frozen=True, slots=True)
class Progress:
    """A job with its files and tasks counted by status."""

    job: models.Job
    files_by_status: Mapping[str, int]
    tasks_by_status: Mapping[str, int]

    @property
    def analysis_done(self) -> bool:
        """True once no file waits for analysis (or the job is past analysis)."""
        if self.job.status not in JOB_ANALYSING:
            return True
        return sum(self.files_by_status.get(s, 0) for s in FILE_WAITING) == 0


JobWithFields = tuple[models.Job, list[FieldSpec]]


def codec_of(ctx: JobsContext) -> PageTokens:
    """The page-token codec of this install (keyed by its signing secret)."""
    return page_tokens(ctx.settings.secret("signing_secret"))


def fields_by_job(session: Session, jobs: Sequence[models.Job]) -> dict[str, list[FieldSpec]]:
    """Each job's fields: the frozen snapshot once started, the configured fields before.

    One query for a whole page of jobs; none when no job has started (the snapshot is
    written in the transaction that sets started_at), which keeps GetJob to one query.
    """
    frozen: dict[str, list[FieldSpec]] = defaultdict(list)
    started = [job.id for job in jobs if job.started_at is not None]
    if started:
        rows = session.scalars(
            select(models.JobField)
            .where(models.JobField.job_id.in_(started))
            .order_by(models.JobField.job_id, models.JobField.position)
        )
        for r in rows:
            frozen[r.job_id].append(FieldSpec(r.name, r.data_type_id, r.instruction))
    return {job.id: frozen.get(job.id) or from_dicts(job.configured_fields) for job in jobs}


def _job_with_fields(session: Session, user_id: str, job_id: str) -> JobWithFields:
    job = session.scalar(owned_job_query(user_id, job_id))
    if job is None:
        raise job_not_found(job_id)
    return job, fields_by_job(session, [job])[job.id]


# Newest first; ties (same creation time) by id, in the same direction so one row
# comparison pages through them (ix_jobs_user_created_id, ix_jobs_created_id).
JOBS_ORDER = Keyset((models.Job.created_at, models.Job.id), descending=True)


def _job_key(job: models.Job) -> tuple[dt.datetime, str]:
    return job.created_at, job.id


def jobs_page(
    session: Session,
    where: list[ColumnElement[bool]],
    *,
    codec: PageTokens,
    scope: str,
    page_token: str,
    size: int,
) -> tuple[list[JobWithFields], str, int]:
    """A page of jobs with their fields, the next page's token, and how many match in all."""
    key = codec.decode(page_token, scope)
    # On the first page the total rides along as count(*) OVER (), evaluated before LIMIT:
    # one query instead of two on the busiest read of the API. Later pages count apart
    # (the keyset condition would narrow the window's count).
    # Within the page budget (read_rows_sync): a job configured with 100 fields of long
    # instructions is ~200 KB, and 1,000 of them were read whole to answer 3 MiB.
    found = read_rows_sync(
        session,
        select(models.Job, func.count().over())
        .where(*where, *JOBS_ORDER.after(key))
        .order_by(*JOBS_ORDER.order_by())
        .limit(size + 1),
    )
    if found and key is None:
        total = int(found[0][1])
    else:
        total = int(session.scalar(select(func.count()).select_from(models.Job).where(*where)) or 0)
    rows, token = page_of(
        [job for job, _ in found], size, codec=codec, scope=scope, key_of=_job_key
    )
    fields = fields_by_job(session, rows)
    return [(job, fields[job.id]) for job in rows], token, total


# Statuses counted row by row in progress(); the others come from counters (see there).
_FILES_COUNTED = sorted(set(FileStatus) - {FileStatus.READY, FileStatus.UPLOADED})
# FAILED from its counter too: a failed big job (or one being retried) holds 100,000 of them,
# and counting them took a progress read to 0.95 s while a retry re-opened them.
_TASKS_COUNTED = sorted(
    set(TaskStatus) - {TaskStatus.SUCCEEDED, TaskStatus.FAILED, TaskStatus.QUEUED}
)


async def _counted(
    session: AsyncSession,
    status: InstrumentedAttribute[str],
    where: ColumnElement[bool],
    statuses: Sequence[str],
) -> dict[str, int]:
    rows = await session.execute(
        select(status, func.count()).where(where, status.in_(statuses)).group_by(status)
    )
    return {str(s): int(n) for s, n in rows.all()}


class JobQueries:
    def __init__(self, ctx: JobsContext) -> None:
        self._ctx = ctx

    async def get(self, user_id: str, job_id: str) -> models.Job:
        async with self._ctx.reading() as session:
            return await owned_job(session, user_id, job_id)

    async def get_with_fields(self, user_id: str, job_id: str) -> JobWithFields:
        return await self._ctx.read(lambda session: _job_with_fields(session, user_id, job_id))

    async def fields(self, job: models.Job) -> list[FieldSpec]:
        return (await self._ctx.read(lambda session: fields_by_job(session, [job])))[job.id]

    async def list_jobs(
        self, user_id: str, *, status: str, page_size: int, page_token: str
    ) -> tuple[list[JobWithFields], str, int]:
        size = names.page_size(page_size)
        scope = f"jobs:{user_id}:{status}"
        # Scoring runs of template versions are read through their versions, not listed.
        where = [models.Job.user_id == user_id, models.Job.purpose == ""]
        if status:
            where.append(models.Job.status == status)
        codec = codec_of(self._ctx)
        return await self._ctx.read(
            lambda session: jobs_page(
                session, where, codec=codec, scope=scope, page_token=page_token, size=size
            )
        )

    async def progress(self, user_id: str, job_id: str) -> Progress:
        """Files and tasks by status without reading every row of a big job.

        The statuses that hold most of a job's rows come from the job's counters (READY
        files, SUCCEEDED and FAILED tasks) or by difference from its totals (UPLOADED files
        waiting for analysis, QUEUED tasks); only the others are counted, over the
        (job_id, status) indexes. Counters and rows change in the same transactions, so the
        sums agree."""
        f, t = models.SourceFile, models.Task
        async with self._ctx.reading() as session:
            job = await owned_job(session, user_id, job_id)
            files = await _counted(session, f.status, f.job_id == job_id, _FILES_COUNTED)
            if job.files_ready:
                files[FileStatus.READY] = job.files_ready
            waiting = job.files_total - sum(files.values())
            if waiting > 0:
                files[FileStatus.UPLOADED] = waiting
            tasks = await _counted(session, t.status, t.job_id == job_id, _TASKS_COUNTED)
            if job.tasks_succeeded:
                tasks[TaskStatus.SUCCEEDED] = job.tasks_succeeded
            if job.tasks_failed:
                tasks[TaskStatus.FAILED] = job.tasks_failed
            queued = job.tasks_built - sum(tasks.values())
            if queued > 0:
                tasks[TaskStatus.QUEUED] = queued
        return Progress(job, files, tasks)

    async def list_files(
        self, user_id: str, job_id: str, page_size: int, page_token: str
    ) -> tuple[Sequence[models.SourceFile], str]:
        f = models.SourceFile
        return await self._page(
            user_id, job_id, f, Keyset((f.original_path, f.id)), page_size, page_token
        )

    async def list_tasks(
        self, user_id: str, job_id: str, page_size: int, page_token: str
    ) -> tuple[Sequence[models.Task], str]:
        t = models.Task
        return await self._page(
            user_id, job_id, t, Keyset((t.position, t.id)), page_size, page_token
        )

    async def list_results(
        self, user_id: str, job_id: str, page_size: int, page_token: str
    ) -> tuple[Sequence[models.Result], str]:
        r = models.Result
        return await self._page(
            user_id, job_id, r, Keyset((r.position, r.id)), page_size, page_token
        )

    async def list_events(
        self, user_id: str, job_id: str, page_size: int, page_token: str
    ) -> tuple[Sequence[models.JobEvent], str]:
        e = models.JobEvent
        return await self._page(
            user_id, job_id, e, Keyset((e.sequence, e.id)), page_size, page_token
        )

    async def _page(
        self,
        user_id: str,
        job_id: str,
        model: type[_Row],
        order: Keyset,
        page_size: int,
        page_token: str,
    ) -> tuple[Sequence[_Row], str]:
        size = names.page_size(page_size)
        scope = f"{model.__tablename__}:{job_id}"
        codec = codec_of(self._ctx)
        key = codec.decode(page_token, scope)
        async with self._ctx.reading() as session:
            await owned_job(session, user_id, job_id)
            rows = await read_page(
                session,
                select(model)
                .where(model.job_id == job_id, *order.after(key))  # type: ignore[attr-defined]
                .order_by(*order.order_by())
                .limit(size + 1),
            )
        names_of_key = order.names
        return page_of(
            rows,
            size,
            codec=codec,
            scope=scope,
            key_of=lambda row: [getattr(row, n) for n in names_of_key],
        )

    async def files_of_results(
        self, results: Sequence[models.Result]
    ) -> dict[str, list[tuple[str, str]]]:
        """Task id -> [(file id, original path)] in task order, for a page of results."""
        task_ids = [r.task_id for r in results]
        if not task_ids:
            return {}
        async with self._ctx.reading() as session:
            rows = await session.execute(
                select(
                    models.TaskFile.task_id,
                    models.SourceFile.id,
                    models.SourceFile.original_path,
                )
                .join(models.SourceFile, models.SourceFile.id == models.TaskFile.file_id)
                .where(models.TaskFile.task_id.in_(task_ids))
                .order_by(models.TaskFile.task_id, models.TaskFile.position)
            )
            out: dict[str, list[tuple[str, str]]] = defaultdict(list)
            for task_id, file_id, path in rows:
                out[task_id].append((file_id, path))
        return out

    async def task_paths(self, task_ids: Iterable[str]) -> dict[str, list[str]]:
        """Task id -> the original paths of its files, in task order."""
        ids = list(task_ids)
        if not ids:
            return {}
        async with self._ctx.reading() as session:
            rows = await session.execute(
                select(models.TaskFile.task_id, models.SourceFile.original_path)
                .join(models.SourceFile, models.SourceFile.id == models.TaskFile.file_id)
                .where(models.TaskFile.task_id.in_(ids))
                .order_by(models.TaskFile.task_id, models.TaskFile.position)
            )
            out: dict[str, list[str]] = defaultdict(list)
            for task_id, path in rows:
                out[task_id].append(path)
        return out

    async def task_files(self, task_ids: Sequence[str]) -> dict[str, list[str]]:
        if not task_ids:
            return {}
        async with self._ctx.reading() as session:
            rows = await session.execute(
                select(models.TaskFile.task_id, models.TaskFile.file_id)
                .where(models.TaskFile.task_id.in_(task_ids))
                .order_by(models.TaskFile.task_id, models.TaskFile.position)
            )
            out: dict[str, list[str]] = defaultdict(list)
            for task_id, file_id in rows:
                out[task_id].append(file_id)
        return out
