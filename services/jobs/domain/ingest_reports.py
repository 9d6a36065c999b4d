"""Reports from the ingest workers: a file's analysis, the entries of an archive. Idempotent.

Keys: a file's analysis by file id (a settled file ignores repeats), an archive entry by
(archive, entry index). A repeated report returns `applied=False` and changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bytereview.core import storage_keys
from bytereview.core.errors import InvalidArgument, NotFound
from bytereview.core.limits import MAX_ENTRIES_PER_REPORT, MAX_ERROR, MAX_MEDIA_TYPE
from services.jobs.domain import names
from services.jobs.domain.context import JobsContext, locked_job
from services.jobs.domain.events import SYSTEM_ACTOR, record_event
from services.jobs.domain.paths import clean_path, folder_of
from services.jobs.domain.status import (
    FILE_SETTLED,
    FILE_WAITING,
    FileStatus,
    JobStatus,
    move,
)
from services.jobs.domain.work import queue_ingest
from services.jobs.store import models


@dataclass(frozen=True, slots=True)
class FileAnalysis:
    status: str
    media_type: str = ""
    size_bytes: int = 0
    sha256: str = ""
    page_count: int = 0
    width: int = 0
    height: int = 0
    error: str = ""


@dataclass(frozen=True, slots=True)
class ArchiveEntry:
    index: int
    path: str
    storage_key: str
    size_bytes: int
    analysis: FileAnalysis | None = None


def _apply_analysis(row: models.SourceFile, analysis: FileAnalysis) -> None:
    """What analysis found, on the file row (its status is `move`'s to write)."""
    row.media_type = analysis.media_type[:MAX_MEDIA_TYPE]
    row.size_bytes = analysis.size_bytes
    row.sha256 = analysis.sha256[:64]
    row.page_count = analysis.page_count
    row.width = analysis.width
    row.height = analysis.height
    row.error = analysis.error[:MAX_ERROR]
    row.updated_at = models.utcnow()


def _count_settled(job: models.Job, before: str, after: str) -> None:
    """Keep the job's file counters in step with one file's status change."""
    if before in FILE_SETTLED or after not in FILE_SETTLED:
        return
    if after == FileStatus.READY:
        job.files_ready += 1
    elif after in (FileStatus.FAILED, FileStatus.UNSUPPORTED):
        job.files_failed += 1


class IngestReports:
    def __init__(self, ctx: JobsContext) -> None:
        self._ctx = ctx

    async def file_analysis(
        self, job_id: str, file_id: str, analysis: FileAnalysis
    ) -> tuple[models.SourceFile, bool]:
        if analysis.status not in FILE_SETTLED and analysis.status != FileStatus.ANALYZING:
            raise InvalidArgument(f"status {analysis.status!r} is not a result of analysis")
        target = FileStatus(analysis.status)
        async with self._ctx.transaction() as session:
            job = await locked_job(session, job_id)
            row = await session.get(models.SourceFile, file_id)
            if job is None or row is None or row.job_id != job_id:
                raise NotFound(f"file {names.file_name(job_id, file_id)} not found")
            if (
                row.status in FILE_SETTLED
                or job.status == JobStatus.CANCELLED
                or row.status == target
            ):
                return row, False
            before = row.status
            move(session, job, target, row=row, actor=SYSTEM_ACTOR, message=analysis.error)
            _apply_analysis(row, analysis)
            _count_settled(job, before, target)
            await self._maybe_ready(session, job)
        return row, True

    async def archive_entries(
        self, job_id: str, archive_id: str, entries: Sequence[ArchiveEntry]
    ) -> tuple[int, list[str]]:
        if len(entries) > MAX_ENTRIES_PER_REPORT:
            raise InvalidArgument(f"at most {MAX_ENTRIES_PER_REPORT} entries per report")
        created = 0
        queued: list[str] = []
        async with self._ctx.transaction() as session:
            job = await locked_job(session, job_id)
            archive = await session.get(models.SourceFile, archive_id)
            if job is None or archive is None or archive.job_id != job_id:
                raise NotFound(f"file {names.file_name(job_id, archive_id)} not found")
            if job.status == JobStatus.CANCELLED or archive.status in FILE_SETTLED:
                return 0, []
            have = set(
                (
                    await session.scalars(
                        select(models.SourceFile.archive_index).where(
                            models.SourceFile.parent_id == archive_id
                        )
                    )
                ).all()
            )
            for entry in entries:
                if entry.index in have:
                    continue  # redelivered archive: this entry is registered already
                if not storage_keys.is_in_job(entry.storage_key, job_id):
                    raise InvalidArgument(f"entry {entry.index} is stored outside the job's prefix")
                path = clean_path(f"{archive.original_path}/{entry.path}", field="entry.path")
                # An entry the worker analysed already is born settled; others wait for ingest.
                found = entry.analysis
                if found is not None and found.status not in FILE_SETTLED:
                    found = None
                row = models.SourceFile(
                    job_id=job_id,
                    parent_id=archive_id,
                    archive_index=entry.index,
                    depth=archive.depth + 1,
                    original_path=path,
                    folder=folder_of(path),
                    storage_key=entry.storage_key,
                    declared_size=entry.size_bytes,
                    size_bytes=entry.size_bytes,
                    status=FileStatus.UPLOADED if found is None else FileStatus(found.status),
                )
                session.add(row)
                have.add(entry.index)
                created += 1
                job.files_total += 1
                if found is not None:
                    _apply_analysis(row, found)
                    _count_settled(job, FileStatus.UPLOADED, found.status)
                else:
                    await session.flush()
                    queue_ingest(session, job_id, row)
                    queued.append(names.file_name(job_id, row.id))
            if created:
                record_event(
                    session,
                    job,
                    kind="archive.entries",
                    actor=SYSTEM_ACTOR,
                    subject=names.file_name(job_id, archive_id),
                    message=f"{created} file(s) unpacked",
                )
        return created, queued

    async def _maybe_ready(self, session: AsyncSession, job: models.Job) -> None:
        """ANALYZING -> READY once no file of the job is still waiting for analysis."""
        if job.status != JobStatus.ANALYZING:
            return
        await session.flush()
        unsettled = await session.scalar(
            select(func.count())
            .select_from(models.SourceFile)
            .where(
                models.SourceFile.job_id == job.id,
                models.SourceFile.status.in_(sorted(FILE_WAITING)),
            )
        )
        if not unsettled:
            move(
                session,
                job,
                JobStatus.READY,
                actor=SYSTEM_ACTOR,
                action="finish analysis",
                message=f"{job.files_ready} usable file(s), {job.files_failed} not usable",
            )

    async def file_for(self, job_id: str, file_id: str, user_id: str | None) -> models.SourceFile:
        """A file, for a worker (any job) or a user (their own jobs only)."""
        async with self._ctx.reading() as session:
            query = (
                select(models.SourceFile)
                .join(models.Job, models.Job.id == models.SourceFile.job_id)
                .where(models.SourceFile.id == file_id, models.SourceFile.job_id == job_id)
            )
            if user_id is not None:
                query = query.where(models.Job.user_id == user_id)
            row = await session.scalar(query)
        if row is None:
            raise NotFound(f"file {names.file_name(job_id, file_id)} not found")
        return row
