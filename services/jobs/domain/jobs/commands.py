"""The job workflow as users drive it: create, finalize, configure, start, pause, resume,
cancel, retry, delete.

Every status change goes through `status.move` (transition table + job event); every
message a change needs is an outbox row in the same transaction.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import exists, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bytereview.core import storage_keys
from bytereview.core.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from bytereview.core.limits import MAX_DISPLAY_NAME, MAX_REQUEST_ID, check_length
from bytereview.core.storage import Storage
from services.jobs.domain import names
from services.jobs.domain.context import JobsContext, owned_job
from services.jobs.domain.events import record_event
from services.jobs.domain.fields import FieldSpec, from_dicts, validate_fields
from services.jobs.domain.jobs.uploads import (
    DeclaredFile,
    UploadTarget,
    checked_files,
    same_files,
    upload_targets,
)
from services.jobs.domain.paths import folder_of
from services.jobs.domain.status import (
    JOB_CONFIGURABLE,
    JOB_FINISHED,
    FileStatus,
    JobStatus,
    SettleDue,
    TaskMode,
    TaskStatus,
    check_transition,
    move,
)
from services.jobs.domain.tasks import settling
from services.jobs.domain.tasks.building import build_first_batch, count_tasks
from services.jobs.domain.tasks.combined import check_combined_sizes
from services.jobs.domain.tasks.finishing import finish_if_done
from services.jobs.domain.tasks.plan import (
    FolderPlan,
    FolderRule,
    check_rules,
    plan_tasks,
    summarise,
)
from services.jobs.domain.templates.versions import owned_version
from services.jobs.domain.work import queue_again, queue_ingest
from services.jobs.store import models


class Jobs:
    def __init__(self, ctx: JobsContext) -> None:
        self._ctx = ctx

    # -- create and upload -------------------------------------------------------------

    async def create(
        self,
        *,
        user_id: str,
        actor: str,
        display_name: str,
        files: Sequence[DeclaredFile],
        persist_data: bool,
        request_id: str,
    ) -> tuple[models.Job, list[UploadTarget]]:
        cleaned = checked_files(
            files,
            max_bytes=self._ctx.settings.max_upload_bytes,
            max_files=self._ctx.settings.max_files_per_job,
        )
        check_length(display_name, MAX_DISPLAY_NAME, field="display_name")
        check_length(request_id, MAX_REQUEST_ID, field="request_id")
        if request_id:
            existing = await self._by_request_id(user_id, request_id)
            if existing is not None:
                return existing, await self._retried(existing, request_id, cleaned)
        try:
            async with self._ctx.transaction() as session:
                job = models.Job(
                    user_id=user_id,
                    display_name=display_name.strip() or f"Job of {len(files)} file(s)",
                    status=JobStatus.PENDING_UPLOAD,
                    persist_data=persist_data,
                    create_request_id=request_id or None,
                    files_total=len(cleaned),
                )
                session.add(job)
                await session.flush()
                for path, declared in cleaned:
                    file_id = models.new_id()
                    session.add(
                        models.SourceFile(
                            id=file_id,
                            job_id=job.id,
                            original_path=path,
                            folder=folder_of(path),
                            storage_key=storage_keys.upload_key(job.id, file_id),
                            declared_size=declared.size_bytes,
                            declared_type=declared.content_type,
                            status=FileStatus.PENDING_UPLOAD,
                        )
                    )
                record_event(
                    session,
                    job,
                    kind="job.created",
                    actor=actor,
                    subject=names.job_name(job.id),
                    to_status=JobStatus.PENDING_UPLOAD,
                    message=f"{len(cleaned)} file(s) declared",
                )
        except IntegrityError:
            # Two concurrent creates with one request id: the loser returns the winner's job.
            existing = await self._by_request_id(user_id, request_id)
            if existing is None:
                raise
            return existing, await self._retried(existing, request_id, cleaned)
        return job, await self._upload_targets(job)

    async def _retried(
        self, job: models.Job, request_id: str, cleaned: Sequence[tuple[str, DeclaredFile]]
    ) -> list[UploadTarget]:
        """The upload targets of `job`, made earlier by a request of this id: the answer to
        a retry. AlreadyExists when this request declares other files: it was answered with
        the first request's job, and the files only it declared were dropped silently."""
        async with self._ctx.reading() as session:
            declared = (
                await session.scalars(
                    select(models.SourceFile).where(
                        models.SourceFile.job_id == job.id, models.SourceFile.parent_id.is_(None)
                    )
                )
            ).all()
        if not same_files(cleaned, declared):
            raise AlreadyExists(
                f"request_id {request_id!r} already created {names.job_name(job.id)} from "
                "other files; a retry declares the same files, a new job takes a new request_id"
            )
        return await self._upload_targets(job)

    async def _by_request_id(self, user_id: str, request_id: str) -> models.Job | None:
        async with self._ctx.reading() as session:
            return await session.scalar(
                select(models.Job).where(
                    models.Job.user_id == user_id, models.Job.create_request_id == request_id
                )
            )

    async def _upload_targets(self, job: models.Job) -> list[UploadTarget]:
        async with self._ctx.reading() as session:
            files = (
                await session.scalars(
                    select(models.SourceFile)
                    .where(
                        models.SourceFile.job_id == job.id, models.SourceFile.parent_id.is_(None)
                    )
                    .order_by(models.SourceFile.original_path)
                )
            ).all()
        return await upload_targets(self._ctx.storage, files)

    async def finalize_uploads(self, *, user_id: str, actor: str, job_id: str) -> models.Job:
        """PENDING_UPLOAD -> ANALYZING; every uploaded file is queued for analysis."""
        async with self._ctx.reading() as session:
            job = await owned_job(session, user_id, job_id)
            check_transition("job", job.status, JobStatus.ANALYZING, action="finalize uploads")
            files = (
                await session.scalars(
                    select(models.SourceFile).where(models.SourceFile.job_id == job_id)
                )
            ).all()
        # Check storage outside the transaction: it is network I/O for GCS. A bounded pool in
        # one thread hop, not a coroutine and a default-executor job per file (10,000 of them).
        sizes = await asyncio.to_thread(_sizes, self._ctx.storage, [f.storage_key for f in files])
        missing = [f.original_path for f, size in zip(files, sizes, strict=True) if size is None]
        if missing:
            shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
            raise FailedPrecondition(f"{len(missing)} declared file(s) were not uploaded: {shown}")

        async def work(session: AsyncSession) -> models.Job:
            job = await owned_job(session, user_id, job_id, lock=True)
            move(session, job, JobStatus.ANALYZING, actor=actor, action="finalize uploads")
            # The job row is locked: these rows are read once, in one query.
            rows = {
                row.id: row
                for row in await session.scalars(
                    select(models.SourceFile).where(
                        models.SourceFile.job_id == job_id,
                        models.SourceFile.status == FileStatus.PENDING_UPLOAD,
                    )
                )
            }
            for f, size in zip(files, sizes, strict=True):
                row = rows.get(f.id)
                if row is None:
                    continue
                move(session, job, FileStatus.UPLOADED, row=row, actor=actor, record=False)
                row.size_bytes = int(size or 0)
                queue_ingest(session, job.id, row)
            return job

        return await self._ctx.run_transaction(work)

    # -- configure and start -----------------------------------------------------------

    async def configure(
        self,
        *,
        user_id: str,
        actor: str,
        job_id: str,
        template_id: str,
        fields: Sequence[FieldSpec],
        task_mode: str,
        display_name: str,
        folder_rules: Sequence[FolderRule] = (),
        system_prompt_id: str = "",
        template_version: int = 0,
    ) -> models.Job:
        given_mode = task_mode and task_mode != TaskMode.UNSPECIFIED
        if given_mode and task_mode not in (TaskMode.INDIVIDUAL, TaskMode.COMBINED):
            raise InvalidArgument(f"task_mode {task_mode!r} is unknown")

        async def work(session: AsyncSession) -> models.Job:
            job = await owned_job(session, user_id, job_id, lock=True)
            if job.status not in JOB_CONFIGURABLE:
                raise FailedPrecondition(
                    f"cannot configure a job that is {job.status}: fields are frozen once it starts"
                )
            if folder_rules and job.status != JobStatus.READY:
                raise FailedPrecondition(
                    f"folder rules can be set once analysis is done; the job is {job.status}"
                )
            rules = (
                check_rules(folder_rules, await _ready_folders(session, job.id))
                if folder_rules
                else []
            )
            if system_prompt_id:
                # Prompts are shared by every tenant (ListSystemPrompts lists them all), so
                # saying which exist reveals nothing of anyone's. A well-formed name of none
                # is NOT_FOUND, as for a template (it was INVALID_ARGUMENT, a 400 for a
                # request the OpenAPI document says is well formed).
                prompt = await session.get(models.SystemPrompt, system_prompt_id)
                if prompt is None:
                    raise NotFound(f"system_prompt systemPrompts/{system_prompt_id} does not exist")
            template: models.Template | None = None
            if template_id:
                # Looked up in the caller's own templates whichever branch is taken: another
                # tenant's template and one that does not exist answer the same NOT_FOUND
                # (no existence oracle), and a job never names a template it cannot see.
                template = await session.scalar(
                    select(models.Template).where(
                        models.Template.id == template_id, models.Template.user_id == user_id
                    )
                )
                if template is None:
                    raise NotFound(f"template {names.template_name(template_id)} not found")
            version_fields: list[FieldSpec] = []
            if template is not None:
                number = template_version or template.version
                _, version = await owned_version(session, user_id, template.id, number)
                version_fields = from_dicts(version.fields)
            if fields:
                checked = await validate_fields(session, fields)
                if template is not None:
                    job.template_id = template.id
                    # The job used the version only if it kept the version's fields.
                    job.template_version = number if checked == version_fields else None
            elif template is not None:
                checked = version_fields
                job.template_id = template.id
                job.template_version = number
            else:
                raise InvalidArgument("give fields, or a template to copy them from")
            job.configured_fields = [f.as_dict() for f in checked]
            job.folder_rules = [r.as_dict() for r in rules]
            job.system_prompt_id = system_prompt_id or None
            if given_mode:
                job.task_mode = task_mode
            if display_name:
                job.display_name = check_length(
                    display_name, MAX_DISPLAY_NAME, field="display_name"
                )
            record_event(
                session,
                job,
                kind="job.configured",
                actor=actor,
                subject=names.job_name(job.id),
                message=f"{len(checked)} field(s), {job.task_mode}"
                + (f", {len(rules)} folder rule(s)" if rules else ""),
            )
            return job

        return await self._ctx.run_transaction(work)

    async def start(self, *, user_id: str, actor: str, job_id: str, request_id: str) -> models.Job:
        """READY -> QUEUED: snapshot the fields, build the tasks, queue one message per task."""
        check_length(request_id, MAX_REQUEST_ID, field="request_id")

        async def work(session: AsyncSession) -> models.Job:
            job = await owned_job(session, user_id, job_id, lock=True)
            if request_id and job.start_request_id == request_id:
                return job  # a retried start
            if job.status in JOB_FINISHED:
                # The table lets a finished job back to QUEUED, but that move is a retry's
                # or a re-run's: a second start would snapshot the fields again.
                raise FailedPrecondition(
                    f"cannot start the job: it has run already (it is {job.status}); "
                    "retry its failed tasks or re-run it instead"
                )
            check_transition("job", job.status, JobStatus.QUEUED, action="start the job")
            if not job.configured_fields:
                raise FailedPrecondition("cannot start a job with no fields: configure it first")
            count = await count_tasks(session, job)
            if not count:
                raise FailedPrecondition(
                    "cannot start a job with no usable files: every file failed analysis "
                    "or is unsupported"
                )
            # Before anything is queued: a folder too big for one call is the user's to split.
            await check_combined_sizes(session, job)
            for position, spec in enumerate(from_dicts(job.configured_fields)):
                session.add(
                    models.JobField(
                        job_id=job.id,
                        position=position,
                        name=spec.name,
                        data_type_id=spec.data_type,
                        instruction=spec.instruction,
                    )
                )
            if job.system_prompt_id is None:
                # The active prompt now: a prompt activated later does not change a running job.
                job.system_prompt_id = await session.scalar(
                    select(models.SystemPrompt.id).where(models.SystemPrompt.active.is_(True))
                )
            # The first batch now (a small job is whole at once); TaskBuilder builds the rest.
            job.tasks_total = count
            job.tasks_built = 0
            await build_first_batch(session, job)
            job.start_request_id = request_id or None
            job.started_at = models.utcnow()
            move(
                session,
                job,
                JobStatus.QUEUED,
                actor=actor,
                action="start the job",
                message=f"{count} task(s) queued",
            )
            return job

        return await self._ctx.run_transaction(work)

    async def plan(
        self, *, user_id: str, job_id: str, task_mode: str, folder_rules: Sequence[FolderRule]
    ) -> tuple[int, list[FolderPlan]]:
        """The tasks a configuration would run over the job's usable files; nothing saved."""
        if task_mode and task_mode not in (
            TaskMode.UNSPECIFIED,
            TaskMode.INDIVIDUAL,
            TaskMode.COMBINED,
        ):
            raise InvalidArgument(f"task_mode {task_mode!r} is unknown")
        async with self._ctx.transaction() as session:
            job = await owned_job(session, user_id, job_id)
            # Only the folder column, in path order: the plan needs nothing else of 10,000 rows.
            files = (
                await session.execute(
                    select(models.SourceFile.folder)
                    .where(
                        models.SourceFile.job_id == job.id,
                        models.SourceFile.status == FileStatus.READY,
                    )
                    .order_by(models.SourceFile.original_path)
                )
            ).all()
        rules = check_rules(folder_rules, (f.folder for f in files))
        mode = task_mode if task_mode and task_mode != TaskMode.UNSPECIFIED else job.task_mode
        groups = plan_tasks(files, mode, rules)
        return len(files), summarise(groups)

    # -- pause, resume, cancel, retry ----------------------------------------------------

    async def pause(self, *, user_id: str, actor: str, job_id: str) -> models.Job:
        async def work(session: AsyncSession) -> models.Job:
            job = await owned_job(session, user_id, job_id, lock=True)
            move(session, job, JobStatus.PAUSED, actor=actor, action="pause the job")
            return job

        return await self._ctx.run_transaction(work)

    async def resume(self, *, user_id: str, actor: str, job_id: str) -> models.Job:
        async def work(session: AsyncSession) -> tuple[models.Job, int, int]:
            job = await owned_job(session, user_id, job_id, lock=True)
            if job.status != JobStatus.PAUSED:
                raise FailedPrecondition(f"cannot resume the job: it is {job.status}, not PAUSED")
            running = await session.scalar(
                select(
                    exists().where(
                        models.Task.job_id == job.id, models.Task.status == TaskStatus.RUNNING
                    )
                )
            )
            target = JobStatus.RUNNING if running else JobStatus.QUEUED
            move(session, job, target, actor=actor, action="resume")
            # Workers dropped the messages of held tasks; queue them again, the first batch
            # now and the rest in the background (tasks.settling).
            queued, last = await queue_again(session, job, after=-1, limit=settling.BATCH)
            # Every task may have settled while the job was paused: then nothing else ends it.
            await finish_if_done(session, job)
            return job, queued, last

        job, queued, last = await self._ctx.run_transaction(work)
        self._requeue_rest(job, queued, last)
        return job

    async def cancel(self, *, user_id: str, actor: str, job_id: str) -> models.Job:
        """The job is CANCELLED at once; its open tasks follow in the background, a batch per
        transaction (tasks.settling). BeginTask refuses work of a cancelled job meanwhile."""

        async def work(session: AsyncSession) -> models.Job:
            job = await owned_job(session, user_id, job_id, lock=True)
            move(session, job, JobStatus.CANCELLED, actor=actor, action="cancel the job")
            # What is owed, durably: a retry still under way gives way (its failed tasks
            # stay FAILED).
            job.settle_due = SettleDue.CANCEL
            return job

        job = await self._ctx.run_transaction(work)
        self._ctx.settling.wake()
        return job

    async def retry_failed(self, *, user_id: str, actor: str, job_id: str) -> models.Job:
        """The job is QUEUED at once and marked "retry"; its failed tasks are queued again a
        batch per transaction, the first one here and the rest by `tasks.settling`, which
        finds the mark after a restart too. The job cannot finish before the last batch."""

        async def work(session: AsyncSession) -> models.Job:
            job = await owned_job(session, user_id, job_id, lock=True)
            check_transition("job", job.status, JobStatus.QUEUED, action="retry failed tasks")
            failed = await session.scalar(
                select(
                    exists().where(
                        models.Task.job_id == job.id, models.Task.status == TaskStatus.FAILED
                    )
                )
            )
            if not failed:
                raise FailedPrecondition("the job has no failed tasks to retry")
            move(
                session,
                job,
                JobStatus.QUEUED,
                actor=actor,
                action="retry failed tasks",
                message=f"{job.tasks_failed} task(s) to queue again",
            )
            job.settle_due = SettleDue.RETRY
            await settling.retry_batch(session, job)
            return job

        job = await self._ctx.run_transaction(work)
        self._ctx.settling.wake()
        return job

    def _requeue_rest(self, job: models.Job, queued: int, last: int) -> None:
        """A full first batch may have more behind it: the settler goes on after `last`."""
        if queued >= settling.BATCH:
            self._ctx.settling.requeue_after(job.id, last)

    # -- deletion ----------------------------------------------------------------------

    async def delete(self, *, user_id: str, job_id: str) -> int:
        """Delete the job's rows, then its storage prefix. Returns objects removed.

        The database deletes the job's tasks with it (ON DELETE CASCADE), after the job's
        row is locked: a report holding a running task's row and waiting for the job's
        closes a lock cycle, and this transaction, if it is the one PostgreSQL aborts, runs
        again (JobsContext.run_transaction) once the report is through."""

        async def work(session: AsyncSession) -> None:
            job = await owned_job(session, user_id, job_id, lock=True)
            await session.delete(job)

        await self._ctx.run_transaction(work)
        return await asyncio.to_thread(
            self._ctx.storage.delete_prefix, storage_keys.job_prefix(job_id)
        )


def _sizes(storage: Storage, keys: list[str]) -> list[int | None]:
    """Each object's size (None when missing), 16 storage calls at a time."""
    with ThreadPoolExecutor(max_workers=16, thread_name_prefix="finalize") as pool:
        return list(pool.map(storage.size, keys))


async def _ready_folders(session: AsyncSession, job_id: str) -> list[str]:
    return list(
        (
            await session.scalars(
                select(models.SourceFile.folder)
                .where(
                    models.SourceFile.job_id == job_id,
                    models.SourceFile.status == FileStatus.READY,
                )
                .distinct()
            )
        ).all()
    )
