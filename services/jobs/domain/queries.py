"""Reads of jobs and what belongs to them: pages of jobs, files, tasks, results, events."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from services.jobs.domain import names
from services.jobs.domain.context import JobsContext, job_not_found, owned_job, owned_job_query
from services.jobs.domain.fields import FieldSpec, from_dicts
from services.jobs.domain.status import FILE_WAITING, JOB_ANALYSING
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


def _jobs_page(
    session: Session, where: list[ColumnElement[bool]], offset: int, size: int
) -> tuple[list[JobWithFields], bool, int]:
    """A page of jobs with their fields, whether more follow, and how many match in all."""
    # The total rides along as count(*) OVER (), evaluated before OFFSET/LIMIT: one query
    # instead of two on the busiest read of the API.
    found = session.execute(
        select(models.Job, func.count().over())
        .where(*where)
        .order_by(models.Job.created_at.desc(), models.Job.id)
        .offset(offset)
        .limit(size + 1)
    ).all()
    if found:
        total = int(found[0][1])
    else:  # a page past the end has no row to carry the total
        total = int(session.scalar(select(func.count()).select_from(models.Job).where(*where)) or 0)
    page = [job for job, _ in found[:size]]
    fields = fields_by_job(session, page)
    return [(job, fields[job.id]) for job in page], len(found) > size, total


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
        offset = names.decode_page_token(page_token, scope)
        where = [models.Job.user_id == user_id]
        if status:
            where.append(models.Job.status == status)
        page, more, total = await self._ctx.read(
            lambda session: _jobs_page(session, where, offset, size)
        )
        token = names.encode_page_token(offset + size, scope) if more else ""
        return page, token, total

    async def progress(self, user_id: str, job_id: str) -> Progress:
        async with self._ctx.reading() as session:
            job = await owned_job(session, user_id, job_id)
            files = dict(
                (
                    await session.execute(
                        select(models.SourceFile.status, func.count())
                        .where(models.SourceFile.job_id == job_id)
                        .group_by(models.SourceFile.status)
                    )
                ).all()
            )
            tasks = dict(
                (
                    await session.execute(
                        select(models.Task.status, func.count())
                        .where(models.Task.job_id == job_id)
                        .group_by(models.Task.status)
                    )
                ).all()
            )
        return Progress(job, files, tasks)

    async def list_files(
        self, user_id: str, job_id: str, page_size: int, page_token: str
    ) -> tuple[Sequence[models.SourceFile], str]:
        return await self._page(
            user_id,
            job_id,
            models.SourceFile,
            (models.SourceFile.original_path, models.SourceFile.id),
            page_size,
            page_token,
        )

    async def list_tasks(
        self, user_id: str, job_id: str, page_size: int, page_token: str
    ) -> tuple[Sequence[models.Task], str]:
        return await self._page(
            user_id, job_id, models.Task, (models.Task.position,), page_size, page_token
        )

    async def list_results(
        self, user_id: str, job_id: str, page_size: int, page_token: str
    ) -> tuple[Sequence[models.Result], str]:
        return await self._page(
            user_id,
            job_id,
            models.Result,
            (models.Result.position, models.Result.id),
            page_size,
            page_token,
        )

    async def list_events(
        self, user_id: str, job_id: str, page_size: int, page_token: str
    ) -> tuple[Sequence[models.JobEvent], str]:
        return await self._page(
            user_id, job_id, models.JobEvent, (models.JobEvent.sequence,), page_size, page_token
        )

    async def _page(
        self,
        user_id: str,
        job_id: str,
        model: type[_Row],
        order: tuple[object, ...],
        page_size: int,
        page_token: str,
    ) -> tuple[Sequence[_Row], str]:
        size = names.page_size(page_size)
        scope = f"{model.__tablename__}:{job_id}"
        offset = names.decode_page_token(page_token, scope)
        async with self._ctx.reading() as session:
            await owned_job(session, user_id, job_id)
            rows = (
                await session.scalars(
                    select(model)
                    .where(model.job_id == job_id)  # type: ignore[attr-defined]
                    .order_by(*order)  # type: ignore[arg-type]
                    .offset(offset)
                    .limit(size + 1)
                )
            ).all()
        token = names.encode_page_token(offset + size, scope) if len(rows) > size else ""
        return rows[:size], token

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
