"""The job workflow as users drive it: create, finalize, configure, start, pause, resume, cancel.

Every status change goes through the transition table and writes a job event;
every message a change needs is an outbox row in the same transaction.
"""

from __future__ import annotations

import asyncio
import posixpath
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from bytereview.core.errors import FailedPrecondition, InvalidArgument, NotFound
from bytereview.core.storage import SignedRequest
from bytereview.core.streams import EXTRACT_SUBJECT, INGEST_SUBJECT
from bytereview.extract.v1 import messages_pb2 as extract_messages
from bytereview.ingest.v1 import messages_pb2 as ingest_messages
from services.jobs import models, names
from services.jobs.context import (
    JobsContext,
    job_not_found,
    owned_job,
    owned_job_query,
)
from services.jobs.events import enqueue, record_event
from services.jobs.fields import FieldSpec, from_dicts, validate_fields
from services.jobs.statemachine import (
    FILE_SETTLED,
    JOB_FINAL,
    check_transition,
)

MAX_FILES_PER_JOB = 10_000
_Row = TypeVar("_Row", bound=models.Base)
MAX_PATH = 1024
TASK_MODES = frozenset({"TASK_MODE_INDIVIDUAL", "TASK_MODE_COMBINED"})


@dataclass(frozen=True, slots=True)
class DeclaredFile:
    path: str
    size_bytes: int
    content_type: str = ""


@dataclass(frozen=True, slots=True)
class UploadTarget:
    file_id: str
    path: str
    request: SignedRequest


def clean_path(raw: str, *, field: str) -> str:
    """A user-declared path as a safe relative POSIX path (folders kept for combined mode)."""
    path = raw.replace("\\", "/").strip()
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if not parts:
        raise InvalidArgument(f"{field} must not be empty")
    if any(p == ".." for p in parts):
        raise InvalidArgument(f"{field} {raw!r} must not contain '..'")
    if any(ord(c) < 32 for c in path):
        raise InvalidArgument(f"{field} {raw!r} contains control characters")
    cleaned = "/".join(parts)
    if len(cleaned) > MAX_PATH:
        raise InvalidArgument(f"{field} is longer than {MAX_PATH} characters")
    return cleaned


def folder_of(path: str) -> str:
    return posixpath.dirname(path)


def ingest_message_id(file_id: str) -> str:
    return f"ingest-{file_id}"


def extract_message_id(task: models.Task) -> str:
    return f"extract-{task.id}-{task.generation}"


def queue_ingest(
    session: AsyncSession, job_id: str, file: models.SourceFile, *, message_id: str = ""
) -> None:
    enqueue(
        session,
        message_id=message_id or ingest_message_id(file.id),
        subject=INGEST_SUBJECT,
        payload=ingest_messages.IngestFileMessage(
            file=names.file_name(job_id, file.id), storage_key=file.storage_key, depth=file.depth
        ),
    )


def queue_task(session: AsyncSession, task: models.Task) -> None:
    enqueue(
        session,
        message_id=extract_message_id(task),
        subject=EXTRACT_SUBJECT,
        payload=extract_messages.ExtractTaskMessage(task=names.task_name(task.job_id, task.id)),
    )


def set_job_status(
    session: AsyncSession,
    job: models.Job,
    target: str,
    *,
    actor: str,
    action: str,
    message: str = "",
) -> None:
    check_transition("job", job.status, target, action=action)
    previous = job.status
    job.status = target
    now = models.utcnow()
    if target in JOB_FINAL:
        job.finished_at = now
    record_event(
        session,
        job,
        kind="job.status",
        actor=actor,
        subject=names.job_name(job.id),
        from_status=previous,
        to_status=target,
        message=message,
    )


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
        if not files:
            raise InvalidArgument("files must declare at least one file to upload")
        if len(files) > MAX_FILES_PER_JOB:
            raise InvalidArgument(f"at most {MAX_FILES_PER_JOB} files per job; got {len(files)}")
        if len(display_name) > 200:
            raise InvalidArgument("display_name must be at most 200 characters")
        if len(request_id) > 100:
            raise InvalidArgument("request_id must be at most 100 characters")
        limit = self._ctx.settings.max_upload_bytes
        cleaned: list[tuple[str, DeclaredFile]] = []
        seen: set[str] = set()
        for i, declared in enumerate(files):
            path = clean_path(declared.path, field=f"files[{i}].path")
            if path in seen:
                raise InvalidArgument(f"files[{i}].path {path!r} is declared twice")
            seen.add(path)
            if declared.size_bytes <= 0:
                raise InvalidArgument(f"files[{i}].size_bytes must be positive (empty file?)")
            if declared.size_bytes > limit:
                raise InvalidArgument(
                    f"files[{i}] is {declared.size_bytes} bytes; the limit is {limit} bytes"
                )
            cleaned.append((path, declared))

        if request_id:
            existing = await self._by_request_id(user_id, request_id)
            if existing is not None:
                return existing, await self._upload_targets(existing)
        try:
            async with self._ctx.transaction() as session:
                job = models.Job(
                    user_id=user_id,
                    display_name=display_name.strip() or f"Job of {len(files)} file(s)",
                    status="PENDING_UPLOAD",
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
                            storage_key=f"jobs/{job.id}/uploads/{file_id}",
                            declared_size=declared.size_bytes,
                            declared_type=declared.content_type[:200],
                            status="PENDING_UPLOAD",
                        )
                    )
                record_event(
                    session,
                    job,
                    kind="job.created",
                    actor=actor,
                    subject=names.job_name(job.id),
                    to_status="PENDING_UPLOAD",
                    message=f"{len(cleaned)} file(s) declared",
                )
        except IntegrityError:
            # Two concurrent creates with one request id: the loser returns the winner's job.
            existing = await self._by_request_id(user_id, request_id)
            if existing is None:
                raise
            job = existing
        return job, await self._upload_targets(job)

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
        storage = self._ctx.storage
        targets = []
        for f in files:
            if f.status != "PENDING_UPLOAD":
                continue
            request = await asyncio.to_thread(
                storage.signed_upload,
                f.storage_key,
                content_type=f.declared_type or "application/octet-stream",
                max_bytes=f.declared_size,
            )
            targets.append(UploadTarget(f.id, f.original_path, request))
        return targets

    async def finalize_uploads(self, *, user_id: str, actor: str, job_id: str) -> models.Job:
        """PENDING_UPLOAD -> ANALYZING; every uploaded file is queued for analysis."""
        async with self._ctx.reading() as session:
            job = await owned_job(session, user_id, job_id)
            if job.status != "PENDING_UPLOAD":
                check_transition("job", job.status, "ANALYZING", action="finalize uploads")
            files = (
                await session.scalars(
                    select(models.SourceFile).where(models.SourceFile.job_id == job_id)
                )
            ).all()
        # Check storage outside the transaction: it is network I/O for GCS.
        sizes = await asyncio.gather(
            *(asyncio.to_thread(self._ctx.storage.size, f.storage_key) for f in files)
        )
        missing = [f.original_path for f, size in zip(files, sizes, strict=True) if size is None]
        if missing:
            shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
            raise FailedPrecondition(f"{len(missing)} declared file(s) were not uploaded: {shown}")
        async with self._ctx.transaction() as session:
            job = await owned_job(session, user_id, job_id, lock=True)
            set_job_status(session, job, "ANALYZING", actor=actor, action="finalize uploads")
            for f, size in zip(files, sizes, strict=True):
                row = await session.get(models.SourceFile, f.id)
                if row is None or row.status != "PENDING_UPLOAD":
                    continue
                check_transition("file", row.status, "UPLOADED")
                row.status = "UPLOADED"
                row.size_bytes = int(size or 0)
                queue_ingest(session, job.id, row)
        return job

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
    ) -> models.Job:
        if task_mode and task_mode != "TASK_MODE_UNSPECIFIED" and task_mode not in TASK_MODES:
            raise InvalidArgument(f"task_mode {task_mode!r} is unknown")
        async with self._ctx.transaction() as session:
            job = await owned_job(session, user_id, job_id, lock=True)
            if job.status not in ("PENDING_UPLOAD", "ANALYZING", "READY"):
                raise FailedPrecondition(
                    f"cannot configure a job that is {job.status}: fields are frozen once it starts"
                )
            if fields:
                checked = await validate_fields(session, fields)
                job.template_id = template_id or job.template_id
            elif template_id:
                template = await session.scalar(
                    select(models.Template).where(
                        models.Template.id == template_id, models.Template.user_id == user_id
                    )
                )
                if template is None:
                    raise NotFound(f"template {names.template_name(template_id)} not found")
                checked = [
                    FieldSpec(f.name, f.data_type_id, f.instruction) for f in template.fields
                ]
                job.template_id = template.id
            else:
                raise InvalidArgument("give fields, or a template to copy them from")
            job.configured_fields = [f.as_dict() for f in checked]
            if task_mode and task_mode != "TASK_MODE_UNSPECIFIED":
                job.task_mode = task_mode
            if display_name:
                if len(display_name) > 200:
                    raise InvalidArgument("display_name must be at most 200 characters")
                job.display_name = display_name
            record_event(
                session,
                job,
                kind="job.configured",
                actor=actor,
                subject=names.job_name(job.id),
                message=f"{len(checked)} field(s), {job.task_mode}",
            )
        return job

    async def start(self, *, user_id: str, actor: str, job_id: str, request_id: str) -> models.Job:
        """READY -> QUEUED: snapshot the fields, build the tasks, queue one message per task."""
        async with self._ctx.transaction() as session:
            job = await owned_job(session, user_id, job_id, lock=True)
            if request_id and job.start_request_id == request_id:
                return job  # a retried start
            check_transition("job", job.status, "QUEUED", action="start the job")
            if not job.configured_fields:
                raise FailedPrecondition("cannot start a job with no fields: configure it first")
            files = (
                await session.scalars(
                    select(models.SourceFile)
                    .where(models.SourceFile.job_id == job.id, models.SourceFile.status == "READY")
                    .order_by(models.SourceFile.original_path)
                )
            ).all()
            if not files:
                raise FailedPrecondition(
                    "cannot start a job with no usable files: every file failed analysis "
                    "or is unsupported"
                )
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
            groups: list[tuple[str, list[models.SourceFile]]]
            if job.task_mode == "TASK_MODE_COMBINED":
                by_folder: dict[str, list[models.SourceFile]] = defaultdict(list)
                for f in files:
                    by_folder[f.folder].append(f)
                groups = sorted(by_folder.items())
            else:
                groups = [(f.folder, [f]) for f in files]
            for position, (folder, group) in enumerate(groups):
                task = models.Task(
                    job_id=job.id,
                    position=position,
                    mode=job.task_mode,
                    folder=folder,
                    status="QUEUED",
                )
                session.add(task)
                await session.flush()
                for order, f in enumerate(group):
                    session.add(models.TaskFile(task_id=task.id, position=order, file_id=f.id))
                queue_task(session, task)
            job.tasks_total = len(groups)
            job.start_request_id = request_id or None
            job.started_at = models.utcnow()
            set_job_status(
                session,
                job,
                "QUEUED",
                actor=actor,
                action="start the job",
                message=f"{len(groups)} task(s) queued",
            )
        return job

    # -- pause, resume, cancel, retry ----------------------------------------------------

    async def pause(self, *, user_id: str, actor: str, job_id: str) -> models.Job:
        async with self._ctx.transaction() as session:
            job = await owned_job(session, user_id, job_id, lock=True)
            set_job_status(session, job, "PAUSED", actor=actor, action="pause the job")
        return job

    async def resume(self, *, user_id: str, actor: str, job_id: str) -> models.Job:
        async with self._ctx.transaction() as session:
            job = await owned_job(session, user_id, job_id, lock=True)
            if job.status != "PAUSED":
                raise FailedPrecondition(f"cannot resume the job: it is {job.status}, not PAUSED")
            running = await session.scalar(
                select(func.count())
                .select_from(models.Task)
                .where(models.Task.job_id == job.id, models.Task.status == "RUNNING")
            )
            set_job_status(
                session, job, "RUNNING" if running else "QUEUED", actor=actor, action="resume"
            )
            # Workers dropped the messages of held tasks; queue them again.
            await self._requeue(session, job, ("QUEUED",))
        return job

    async def cancel(self, *, user_id: str, actor: str, job_id: str) -> models.Job:
        async with self._ctx.transaction() as session:
            job = await owned_job(session, user_id, job_id, lock=True)
            set_job_status(session, job, "CANCELLED", actor=actor, action="cancel the job")
            await session.execute(
                update(models.Task)
                .where(models.Task.job_id == job.id, models.Task.status.in_(("QUEUED", "RUNNING")))
                .values(status="CANCELLED", finished_at=models.utcnow())
            )
        return job

    async def retry_failed(self, *, user_id: str, actor: str, job_id: str) -> models.Job:
        async with self._ctx.transaction() as session:
            job = await owned_job(session, user_id, job_id, lock=True)
            check_transition("job", job.status, "QUEUED", action="retry failed tasks")
            count = await self._requeue(session, job, ("FAILED",), reset_attempts=True)
            if count == 0:
                raise FailedPrecondition("the job has no failed tasks to retry")
            job.tasks_failed = 0
            job.finished_at = None
            set_job_status(
                session,
                job,
                "QUEUED",
                actor=actor,
                action="retry failed tasks",
                message=f"{count} task(s) queued again",
            )
        return job

    async def _requeue(
        self,
        session: AsyncSession,
        job: models.Job,
        statuses: Sequence[str],
        *,
        reset_attempts: bool = False,
    ) -> int:
        tasks = (
            await session.scalars(
                select(models.Task)
                .where(models.Task.job_id == job.id, models.Task.status.in_(statuses))
                .order_by(models.Task.position)
            )
        ).all()
        for task in tasks:
            if task.status != "QUEUED":
                check_transition("task", task.status, "QUEUED")
                task.status = "QUEUED"
            task.generation += 1
            if reset_attempts:
                task.attempts = 0
            queue_task(session, task)
        return len(tasks)

    # -- reads -------------------------------------------------------------------------

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

    async def progress(
        self, user_id: str, job_id: str
    ) -> tuple[models.Job, dict[str, int], dict[str, int]]:
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
        return job, files, tasks

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

    async def update_result(
        self,
        *,
        user_id: str,
        actor: str,
        job_id: str,
        result_id: str,
        values: dict[str, object],
        paths: Sequence[str],
    ) -> models.Result:
        async with self._ctx.transaction() as session:
            job = await owned_job(session, user_id, job_id, lock=True)
            result = await session.scalar(
                select(models.Result).where(
                    models.Result.id == result_id, models.Result.job_id == job_id
                )
            )
            if result is None:
                raise NotFound(f"result {names.result_name(job_id, result_id)} not found")
            known = {
                r
                for r in (
                    await session.scalars(
                        select(models.JobField.name).where(models.JobField.job_id == job_id)
                    )
                ).all()
            }
            targets: set[str] = set()
            for path in paths or ["values"]:
                if path == "values":
                    targets |= set(values)
                elif path.startswith("values."):
                    targets.add(path.removeprefix("values."))
                else:
                    raise InvalidArgument(
                        f"update_mask path {path!r} cannot be updated; use values"
                    )
            unknown = targets - known
            if unknown:
                raise InvalidArgument(f"unknown field(s) in values: {sorted(unknown)}")
            merged = dict(result.values)
            for name in targets:
                merged[name] = values.get(name)
            result.values = merged
            result.edited = True
            result.updated_at = models.utcnow()
            record_event(
                session,
                job,
                kind="result.edited",
                actor=actor,
                subject=names.result_name(job_id, result_id),
                message=", ".join(sorted(targets)),
            )
        return result

    async def delete(self, *, user_id: str, job_id: str) -> int:
        """Delete the job's rows, then its storage prefix. Returns objects removed."""
        async with self._ctx.transaction() as session:
            job = await owned_job(session, user_id, job_id, lock=True)
            await session.delete(job)
        return await asyncio.to_thread(self._ctx.storage.delete_prefix, f"jobs/{job_id}/")


def settled_file(status: str) -> bool:
    return status in FILE_SETTLED
