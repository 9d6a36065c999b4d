"""Reports from the ingest workers: a file's analysis, the entries of an archive. Idempotent.

Keys: a file's analysis by file id (a settled file ignores repeats), an archive entry by
(archive, entry index). A repeated report returns `applied=False` and changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from bytereview.core import storage_keys
from bytereview.core.errors import InvalidArgument, NotFound
from bytereview.core.limits import (
    MAX_ENTRIES_PER_REPORT,
    MAX_ERROR,
    MAX_MEDIA_TYPE,
    MAX_PATH,
)
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


@dataclass(slots=True)
class RegisteredEntries:
    created: int = 0
    # Files queued for analysis.
    queued: list[str] = field(default_factory=list)
    # Per entry in report order, its file name; "" when it was not registered.
    files: list[str] = field(default_factory=list)
    # Why entries were not registered (the job's file cap), if they were not.
    refused: str = ""


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

        async def work(session: AsyncSession) -> tuple[models.SourceFile, bool]:
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
            if target in FILE_SETTLED:
                await self._settle_abandoned_archives(session, job, file_id)
            await self._maybe_ready(session, job)
            return row, True

        # Locks the job's row, then writes its files': run again whole (the report is
        # idempotent) when PostgreSQL aborts it in a lock cycle, rather than answer the
        # worker INTERNAL, which it would count as a failed attempt of the file.
        return await self._ctx.run_transaction(work)

    async def archive_entries(
        self, job_id: str, archive_id: str, entries: Sequence[ArchiveEntry]
    ) -> RegisteredEntries:
        if len(entries) > MAX_ENTRIES_PER_REPORT:
            raise InvalidArgument(f"at most {MAX_ENTRIES_PER_REPORT} entries per report")

        async def work(session: AsyncSession) -> RegisteredEntries:
            # Made afresh by each try: a try PostgreSQL aborted registered nothing.
            out = RegisteredEntries()
            job = await locked_job(session, job_id)
            archive = await session.get(models.SourceFile, archive_id)
            if job is None or archive is None or archive.job_id != job_id:
                raise NotFound(f"file {names.file_name(job_id, archive_id)} not found")
            # Only this batch's entries: an archive of 100,000 entries must not read back
            # every entry registered so far on each report (uq_source_files_entry serves it).
            have: dict[int | None, str] = dict(
                (
                    await session.execute(
                        select(models.SourceFile.archive_index, models.SourceFile.id).where(
                            models.SourceFile.parent_id == archive_id,
                            models.SourceFile.archive_index.in_({e.index for e in entries}),
                        )
                    )
                ).all()
            )
            closed = job.status == JobStatus.CANCELLED or archive.status in FILE_SETTLED
            # The job's file cap holds after unpacking too (the job row is locked: exact).
            max_files = self._ctx.settings.max_files_per_job
            room = max_files - job.files_total
            for entry in entries:
                if entry.index in have:
                    # Redelivered archive: this entry is registered already.
                    out.files.append(names.file_name(job_id, have[entry.index]))
                    continue
                if closed or room <= 0:
                    # Not registered; the worker deletes its bytes.
                    out.files.append("")
                    if not closed:
                        out.refused = f"the job holds its limit of {max_files} files"
                    continue
                if not storage_keys.is_in_job(entry.storage_key, job_id):
                    raise InvalidArgument(f"entry {entry.index} is stored outside the job's prefix")
                # An entry the worker analysed already is born settled; a nested archive the
                # worker unpacks itself is born ANALYZING; others wait for ingest.
                found = entry.analysis
                if found is not None and found.status not in (*FILE_SETTLED, FileStatus.ANALYZING):
                    found = None
                try:
                    path = clean_path(f"{archive.original_path}/{entry.path}", field="entry.path")
                except InvalidArgument as exc:
                    # One bad name fails its own file, not the whole report.
                    path = f"{archive.original_path[: MAX_PATH - 20]}/entry-{entry.index}"
                    found = FileAnalysis(FileStatus.FAILED, error=exc.message)
                row = models.SourceFile(
                    id=models.new_id(),
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
                have[entry.index] = row.id
                out.files.append(names.file_name(job_id, row.id))
                out.created += 1
                room -= 1
                job.files_total += 1
                if found is not None:
                    _apply_analysis(row, found)
                    _count_settled(job, FileStatus.UPLOADED, found.status)
                else:
                    await session.flush()
                    queue_ingest(session, job_id, row)
                    out.queued.append(names.file_name(job_id, row.id))
            if out.created:
                record_event(
                    session,
                    job,
                    kind="archive.entries",
                    actor=SYSTEM_ACTOR,
                    subject=names.file_name(job_id, archive_id),
                    message=f"{out.created} file(s) unpacked",
                )
            return out

        # As file_analysis: locks the job's row, then writes files; run again if aborted.
        return await self._ctx.run_transaction(work)

    async def _settle_abandoned_archives(
        self, session: AsyncSession, job: models.Job, archive_id: str
    ) -> None:
        """Nested archives a worker was still unpacking (ANALYZING) when the archive holding
        them was settled: only that worker would have settled them, and it gave up (a dead
        letter), so they fail too instead of keeping the job from READY."""
        parents = [archive_id]
        while parents:
            stuck = (
                await session.scalars(
                    select(models.SourceFile).where(
                        models.SourceFile.parent_id.in_(parents),
                        models.SourceFile.status == FileStatus.ANALYZING,
                    )
                )
            ).all()
            why = "not unpacked: unpacking the archive holding it did not finish"
            for row in stuck:
                move(session, job, FileStatus.FAILED, row=row, actor=SYSTEM_ACTOR, message=why)
                row.error = why
                _count_settled(job, FileStatus.ANALYZING, FileStatus.FAILED)
            parents = [row.id for row in stuck]

    async def _maybe_ready(self, session: AsyncSession, job: models.Job) -> None:
        """ANALYZING -> READY once no file of the job is still waiting for analysis."""
        if job.status != JobStatus.ANALYZING:
            return
        await session.flush()
        # EXISTS, not COUNT: it stops at the first waiting file (ix_source_files_job_status),
        # so each of a 100,000-file job's reports costs an index probe, not a scan.
        unsettled = await session.scalar(
            select(
                exists().where(
                    models.SourceFile.job_id == job.id,
                    models.SourceFile.status.in_(sorted(FILE_WAITING)),
                )
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
