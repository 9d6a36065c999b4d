"""Building a started job's tasks in batches, so StartJob answers in constant time.

StartJob counts the tasks a job will have (`tasks_total`, planned as `plan.plan_tasks` does:
folder), snapshots the fields and builds the first START_BATCH in its own transaction; a job of
100,000 files would otherwise write 300,000 rows (tasks, task files, outbox) in one request.
`TaskBuilder` builds the rest, BATCH tasks per transaction, each committed with its outbox
rows (the transactional outbox holds for every batch). Progress is `tasks_built`; each
batch locks the job row and continues after the last task built, so replicas never build
twice and a crash loses nothing. A job does not finish while `tasks_built < tasks_total`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging

from sqlalchemy import func, insert, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from services.jobs.domain.context import JobsContext, locked_job
from services.jobs.domain.status import FileStatus, JobStatus, TaskMode, TaskStatus
from services.jobs.domain.tasks.plan import mode_of, rules_from_dicts
from services.jobs.domain.work import task_message
from services.jobs.messaging import enqueue_many
from services.jobs.store import models

log = logging.getLogger(__name__)

# Tasks per transaction. A batch holds the job's row lock, which every task report of the
# job also takes: 1,000 tasks per batch (~3,000 rows) made reports queue for seconds, and
# with them the database connections other requests needed.
BATCH = 250
# Built by StartJob itself: a small job is whole at once, a big one answers quickly.
START_BATCH = 250
# Jobs whose tasks may still be unbuilt (a cancelled or finished job builds no more).
BUILDING = (JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.PAUSED)

_READY = models.SourceFile.status == FileStatus.READY


async def count_tasks(session: AsyncSession, job: models.Job) -> int:
    """How many tasks `plan.plan_tasks` makes of the job's usable files: one per file under
    INDIVIDUAL, one per folder (its direct files) under COMBINED, by the job's mode and its
    folder rules. Reads the folder column only."""
    f = models.SourceFile
    default, rules = _modes(job)
    if not rules:
        counted = func.count(f.folder.distinct()) if default == TaskMode.COMBINED else func.count()
        return int(await session.scalar(select(counted).where(f.job_id == job.id, _READY)) or 0)
    individual, combined = 0, set()
    for folder in await session.scalars(select(f.folder).where(f.job_id == job.id, _READY)):
        if mode_of(folder, default, rules) == TaskMode.COMBINED:
            combined.add(folder)
        else:
            individual += 1
    return individual + len(combined)


def _modes(job: models.Job) -> tuple[str, dict[str, str]]:
    """The job's default mode and its folder rules (folder -> mode), as plan_tasks reads them."""
    default = TaskMode.COMBINED if job.task_mode == TaskMode.COMBINED else TaskMode.INDIVIDUAL
    return default, {r.folder: r.task_mode for r in rules_from_dicts(job.folder_rules)}


async def build_first_batch(session: AsyncSession, job: models.Job) -> int:
    """StartJob's share: the first START_BATCH tasks."""
    return await build_batch(session, job, batch=START_BATCH)


async def build_batch(session: AsyncSession, job: models.Job, *, batch: int = 0) -> int:
    """Build and queue up to `batch` more tasks of `job` (its row locked by the caller)."""
    if job.tasks_built >= job.tasks_total:
        return 0
    groups = await _next_groups(session, job, batch or BATCH)
    # Core multi-row INSERTs, not ORM objects: the builder shares the jobs service's event
    # loop with every request, and a batch must not hold it for long.
    tasks, task_files, messages = [], [], []
    for offset, (folder, mode, files) in enumerate(groups):
        task_id = models.new_id()
        tasks.append(
            {
                "id": task_id,
                "job_id": job.id,
                "position": job.tasks_built + offset,
                "mode": mode,
                "folder": folder,
                "status": TaskStatus.QUEUED,
            }
        )
        task_files += [
            {"task_id": task_id, "position": order, "file_id": file_id}
            for order, file_id in enumerate(files)
        ]
        message = task_message(job.id, task_id, 0, job.user_id)
        messages.append((message["message_id"], message["subject"], message["payload"]))
    if tasks:
        await session.execute(insert(models.Task), tasks)
        await session.execute(insert(models.TaskFile), task_files)
        await enqueue_many(session, messages)
    position = job.tasks_built + len(tasks)
    job.tasks_built = position
    if not groups:
        # Fewer usable files than counted at start cannot happen (READY is final), but a
        # job must never wait for tasks that will not come.
        job.tasks_total = job.tasks_built
    return len(groups)


async def _next_groups(
    session: AsyncSession, job: models.Job, batch: int
) -> list[tuple[str, str, list[str]]]:
    """(folder, mode, file ids in order) of the next tasks, in plan_tasks' order: by each
    task's first file in path order, going on after the last task built. A file of a
    combined folder starts its folder's task when it is the folder's first file, and is
    skipped otherwise (that task holds it already)."""
    f, t, tf = models.SourceFile, models.Task, models.TaskFile
    default, rules = _modes(job)
    cursor: tuple[str, str] | None = None
    if job.tasks_built:
        # The last task's first file is where planning goes on.
        last = (
            await session.execute(
                select(f.original_path, f.id)
                .join(tf, tf.file_id == f.id)
                .join(t, t.id == tf.task_id)
                .where(t.job_id == job.id, t.position == job.tasks_built - 1, tf.position == 0)
            )
        ).one_or_none()
        if last is None:
            return []
        cursor = (last.original_path, last.id)
    groups: list[tuple[str, str, list[str]]] = []
    while len(groups) < batch:
        after = [] if cursor is None else [tuple_(f.original_path, f.id) > tuple_(*cursor)]
        rows = (
            await session.execute(
                select(f.folder, f.original_path, f.id)
                .where(f.job_id == job.id, _READY, *after)
                .order_by(f.original_path, f.id)
                .limit(batch)
            )
        ).all()
        if not rows:
            break
        firsts: dict[str, str] = {}
        for folder, path, file_id in rows:
            cursor = (path, file_id)
            if mode_of(folder, default, rules) != TaskMode.COMBINED:
                groups.append((folder, TaskMode.INDIVIDUAL, [file_id]))
            else:
                if folder not in firsts:
                    firsts[folder] = await _folder_first(session, job.id, folder)
                if firsts[folder] == file_id:
                    members = await session.scalars(
                        select(f.id)
                        .where(f.job_id == job.id, _READY, f.folder == folder)
                        .order_by(f.original_path, f.id)
                    )
                    groups.append((folder, TaskMode.COMBINED, list(members)))
            if len(groups) >= batch:
                break
    return groups


async def _folder_first(session: AsyncSession, job_id: str, folder: str) -> str:
    f = models.SourceFile
    first = await session.scalar(
        select(f.id)
        .where(f.job_id == job_id, _READY, f.folder == folder)
        .order_by(f.original_path, f.id)
        .limit(1)
    )
    return str(first)


class TaskBuilder:
    """Builds the unbuilt tasks of started jobs, a batch per transaction, in the background."""

    def __init__(self, ctx: JobsContext, *, poll_seconds: float = 0.5) -> None:
        self._ctx = ctx
        self._poll = poll_seconds
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        while not self._stopping.is_set():
            try:
                busy = await self.build_some()
            except Exception:
                # The database being away is a wait: the next pass tries again.
                log.exception("building tasks failed; trying again")
                busy = False
            if not busy:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), self._poll)

    async def build_some(self) -> bool:
        """One batch for each job with tasks left to build; True if anything was built."""
        async with self._ctx.reading() as session:
            waiting = (
                await session.scalars(
                    select(models.Job.id).where(
                        models.Job.status.in_(BUILDING),
                        models.Job.tasks_built < models.Job.tasks_total,
                    )
                )
            ).all()
        built = 0
        for job_id in waiting:
            built += await self._ctx.run_transaction(
                functools.partial(self._build_batch, job_id=job_id)
            )
        return built > 0

    @staticmethod
    async def _build_batch(session: AsyncSession, job_id: str) -> int:
        job = await locked_job(session, job_id)
        if job is None or job.status not in BUILDING:
            return 0
        return await build_batch(session, job)
