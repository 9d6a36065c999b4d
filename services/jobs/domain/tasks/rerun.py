"""Re-running part of a finished job: chosen files, failed tasks, or chosen results (values
under review), with the job's fields or a template version's.

Results keep their rows and gain versions (domain/results/extractions.py). Nothing is extracted
twice for the same inputs: a succeeded task whose files and fields are unchanged since its
latest extraction is skipped (its input key matches) unless the caller forces it. A
redelivered re-run message finds its task settled and does nothing, so one re-run is one
new version.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from bytereview.core.errors import FailedPrecondition, InvalidArgument, NotFound
from bytereview.core.limits import MAX_FIELDS, MAX_FILES_PER_JOB
from services.jobs.domain import names
from services.jobs.domain.context import JobsContext, owned_job
from services.jobs.domain.events import record_event
from services.jobs.domain.fields import from_dicts, job_fields
from services.jobs.domain.results.extractions import task_input_key
from services.jobs.domain.results.versions import latest_input_keys
from services.jobs.domain.status import JOB_FINISHED, JobStatus, TaskStatus, move
from services.jobs.domain.templates.versions import owned_version
from services.jobs.domain.work import queue_task
from services.jobs.store import models


@dataclass(frozen=True, slots=True)
class RerunChoice:
    file_ids: Sequence[str] = ()
    failed_tasks: bool = False
    result_ids: Sequence[str] = ()
    # With result_ids: only these fields are taken from the new extraction.
    fields: Sequence[str] = ()
    # (template id, version) whose fields to extract with; None keeps the job's fields.
    template_version: tuple[str, int] | None = None
    force: bool = False


@dataclass(frozen=True, slots=True)
class RerunOutcome:
    job: models.Job
    queued: list[models.Task] = field(default_factory=list)
    skipped: list[models.Task] = field(default_factory=list)


class Reruns:
    def __init__(self, ctx: JobsContext) -> None:
        self._ctx = ctx

    async def rerun(
        self, *, user_id: str, actor: str, job_id: str, choice: RerunChoice
    ) -> RerunOutcome:
        if not (choice.file_ids or choice.failed_tasks or choice.result_ids):
            raise InvalidArgument("choose what to re-run: files, results, or failed_tasks")
        if max(len(choice.file_ids), len(choice.result_ids)) > MAX_FILES_PER_JOB:
            raise InvalidArgument(f"a re-run names at most {MAX_FILES_PER_JOB} files or results")
        if len(choice.fields) > MAX_FIELDS:
            raise InvalidArgument(f"fields names at most {MAX_FIELDS} fields")
        if choice.fields and not choice.result_ids:
            raise InvalidArgument("fields narrows a re-run of results: give results too")

        async def work(session: AsyncSession) -> RerunOutcome:
            job = await owned_job(session, user_id, job_id, lock=True)
            if job.purpose:
                raise FailedPrecondition("a scoring run is not re-run: score the version again")
            if job.status not in JOB_FINISHED:
                raise FailedPrecondition(
                    f"cannot re-run the job: it is {job.status}; wait until it finishes"
                )
            tasks = await _chosen_tasks(session, job_id, choice)
            if choice.template_version is not None:
                await _use_template_version(
                    session, job, user_id=user_id, actor=actor, version=choice.template_version
                )
            if choice.fields:
                known = set(
                    (
                        await session.scalars(
                            select(models.JobField.name).where(models.JobField.job_id == job_id)
                        )
                    ).all()
                )
                unknown = set(choice.fields) - known
                if unknown:
                    raise InvalidArgument(f"unknown field(s): {sorted(unknown)}")
            queued, skipped = await _unchanged_skipped(session, job_id, tasks, force=choice.force)
            for task in queued:
                if task.status == TaskStatus.SUCCEEDED:
                    job.tasks_succeeded -= 1
                else:
                    job.tasks_failed -= 1
                move(session, job, TaskStatus.QUEUED, row=task, actor=actor, message="re-run")
                task.generation += 1  # a new message id: JetStream must not drop it
                task.attempts = 0
                task.last_error = ""
                task.rerun_fields = sorted(choice.fields) or None
                queue_task(session, task, job.user_id)
            if queued:
                move(
                    session,
                    job,
                    JobStatus.QUEUED,
                    actor=actor,
                    action="re-run",
                    message=f"{len(queued)} task(s) queued again, {len(skipped)} unchanged skipped",
                )
            return RerunOutcome(job=job, queued=queued, skipped=skipped)

        return await self._ctx.run_transaction(work)


async def _chosen_tasks(
    session: AsyncSession, job_id: str, choice: RerunChoice
) -> list[models.Task]:
    task_ids: set[str] = set()
    if choice.file_ids:
        found = dict(
            (
                await session.execute(
                    select(models.TaskFile.file_id, models.TaskFile.task_id)
                    .join(models.Task, models.Task.id == models.TaskFile.task_id)
                    .where(
                        models.Task.job_id == job_id,
                        models.TaskFile.file_id.in_(choice.file_ids),
                    )
                )
            ).all()
        )
        missing = [f for f in choice.file_ids if f not in found]
        if missing:
            raise NotFound(f"no task of the job extracts {names.file_name(job_id, missing[0])}")
        task_ids |= set(found.values())
    if choice.result_ids:
        found = dict(
            (
                await session.execute(
                    select(models.Result.id, models.Result.task_id).where(
                        models.Result.job_id == job_id, models.Result.id.in_(choice.result_ids)
                    )
                )
            ).all()
        )
        missing = [r for r in choice.result_ids if r not in found]
        if missing:
            raise NotFound(f"result {names.result_name(job_id, missing[0])} not found")
        task_ids |= set(found.values())
    where = [models.Task.job_id == job_id]
    if choice.failed_tasks:
        failed = (
            await session.scalars(
                select(models.Task.id).where(*where, models.Task.status == TaskStatus.FAILED)
            )
        ).all()
        task_ids |= set(failed)
    if not task_ids:
        raise FailedPrecondition("nothing to re-run: the job has no failed tasks")
    rows = (
        await session.scalars(
            select(models.Task)
            .where(*where, models.Task.id.in_(task_ids))
            .order_by(models.Task.position)
        )
    ).all()
    return [t for t in rows if t.status in (TaskStatus.SUCCEEDED, TaskStatus.FAILED)]


async def _use_template_version(
    session: AsyncSession, job: models.Job, *, user_id: str, actor: str, version: tuple[str, int]
) -> None:
    """The job's fields become the version's (the whole job's table keeps one set of columns);
    the results not re-run keep their values for the fields that remain."""
    template_id, number = version
    _, row = await owned_version(session, user_id, template_id, number)
    specs = from_dicts(row.fields)
    current = await job_fields(session, job.id)
    same = [(f.name, f.data_type_id, f.instruction) for f in current] == [
        (s.name, s.data_type, s.instruction) for s in specs
    ]
    job.template_id = template_id
    job.template_version = number
    if same:
        return
    await session.execute(delete(models.JobField).where(models.JobField.job_id == job.id))
    for position, spec in enumerate(specs):
        session.add(
            models.JobField(
                job_id=job.id,
                position=position,
                name=spec.name,
                data_type_id=spec.data_type,
                instruction=spec.instruction,
            )
        )
    job.configured_fields = [s.as_dict() for s in specs]
    await session.flush()
    record_event(
        session,
        job,
        kind="job.fields_changed",
        actor=actor,
        subject=names.job_name(job.id),
        message=f"fields of {names.template_version_name(template_id, number)} "
        f"({len(specs)} field(s)) for the re-run",
    )


async def _unchanged_skipped(
    session: AsyncSession, job_id: str, tasks: list[models.Task], *, force: bool
) -> tuple[list[models.Task], list[models.Task]]:
    """Split the chosen tasks: those to queue, and succeeded ones whose inputs are unchanged."""
    if force:
        return tasks, []
    succeeded = [t for t in tasks if t.status == TaskStatus.SUCCEEDED]
    now = await task_input_key(session, job_id, [t.id for t in succeeded])
    result_of = dict(
        (
            await session.execute(
                select(models.Result.task_id, models.Result.id).where(
                    models.Result.task_id.in_([t.id for t in succeeded])
                )
            )
        ).all()
    )
    last = await latest_input_keys(session, list(result_of.values()))
    queued, skipped = [], []
    for task in tasks:
        result_id = result_of.get(task.id)
        if (
            task.status == TaskStatus.SUCCEEDED
            and result_id is not None
            and last.get(result_id) == now[task.id]
        ):
            skipped.append(task)
        else:
            queued.append(task)
    return queued, skipped
