"""Streaming export of a job's results as CSV, JSON or XLSX.

Results are read in pages of PAGE rows, so memory stays bounded however large
the job: CSV and JSON are produced chunk by chunk; XLSX is zipped as rows arrive
(`export.xlsx`, inline strings: no shared-string table in memory). The jobs service
answers a server stream of HttpBody chunks and the gateway passes each one on as
it arrives (gRPC flow control holds the producer back when the client is slow), so
neither holds the export. What a row says lives in `export.rows`.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import AsyncIterator
from contextlib import AbstractContextManager
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bytereview.core.caller_slots import CallerSlots
from bytereview.core.errors import InvalidArgument
from bytereview.values.typed import STORED_DATES
from services.jobs.domain.context import JobsContext, owned_job
from services.jobs.domain.export.rows import ExportLayout
from services.jobs.domain.export.xlsx import XlsxStream
from services.jobs.domain.pages.keyset import Keyset, read_page
from services.jobs.domain.pages.uncut import uncut
from services.jobs.store import models

PAGE = 500
CHUNK = 256 * 1024
FORMATS = {
    "csv": "text/csv; charset=utf-8",
    "json": "application/json",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


# Spreadsheet apps execute cells starting with these.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _safe_csv(value: Any) -> Any:
    # A CSV cell has no type: a leading quote makes a spreadsheet app read it as text.
    # A negative amount ("-12.00", how money is stored) is a number, not a formula.
    if isinstance(value, str) and re.fullmatch(r"-\d+(\.\d+)?", value):
        return value
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


# Exports one user may have open at once (per replica). An export whose client stops
# reading waits on gRPC's flow control with its page of results in memory (up to the page
# budget and a fetch) for as long as the connection stays open: unbounded, one user's
# hundreds of stalled downloads held hundreds of pages.
EXPORTS_PER_USER = 4


class Exporter:
    def __init__(self, ctx: JobsContext) -> None:
        self._ctx = ctx
        self._open = CallerSlots(limit=EXPORTS_PER_USER, what="exports open")

    def slot(self, user_id: str) -> AbstractContextManager[None]:
        """One of the user's export slots, for as long as the download runs;
        ResourceExhausted when they are all taken."""
        return self._open.held(user_id)

    async def head(self, user_id: str, job_id: str, fmt: str) -> tuple[str, str]:
        """(content type, file name): what an export says before its first byte. Access and
        the format are checked; nothing of the job's results is read (a REST HEAD asks this
        alone, core.head_only)."""
        fmt = _format(fmt)
        async with self._ctx.reading() as session:
            job = await owned_job(session, user_id, job_id)
        return FORMATS[fmt], _filename(job, fmt)

    async def export(
        self, user_id: str, job_id: str, fmt: str, *, evidence: bool = False
    ) -> tuple[str, str, AsyncIterator[bytes]]:
        """(content type, file name, chunks). Access is checked before the first chunk."""
        fmt = _format(fmt)
        # Access and the columns in one read: a job deleted between them is a 404, not an
        # export without fields.
        async with self._ctx.reading() as session:
            job = await owned_job(session, user_id, job_id)
            layout = await _layout(session, job_id, evidence=evidence)
        pages = self._pages(job_id)
        content_type, filename = FORMATS[fmt], _filename(job, fmt)
        if fmt == "csv":
            return content_type, filename, _csv(layout, pages)
        if fmt == "json":
            return content_type, filename, _json(layout, pages)
        return content_type, filename, _xlsx(layout, pages)

    async def _pages(self, job_id: str) -> AsyncIterator[Page]:
        """The job's results in order, PAGE at a time, each with its files' paths.

        Keyset on (position, id), each page in its own short read: a long download never
        holds a transaction (or SQLite's snapshot) open, and memory is one page. A page may
        be short (the byte budget); only an empty one ends the export. An export cancelled
        (its client gone) stops once its page is read (`uncut`): a read cut in the driver
        cost the connection and logged an error."""
        key: tuple[int, str] | None = None
        while True:
            page = await uncut(self._page(job_id, key))
            if not page:
                return
            yield page
            key = (page[-1][0].position, page[-1][0].id)

    async def _page(self, job_id: str, key: tuple[int, str] | None) -> Page:
        order = Keyset((models.Result.position, models.Result.id))
        async with self._ctx.reading() as session:
            # Up to PAGE rows, fewer once they weigh the page budget (read_page): PAGE
            # results of 100 values of 10,000 characters were ~3 GB in memory at once.
            results = await read_page(
                session,
                select(models.Result)
                .where(models.Result.job_id == job_id, *order.after(key))
                .order_by(*order.order_by())
                .limit(PAGE),
            )
            if not results:
                return []
            paths: dict[str, list[str]] = {}
            for task_id, path in await session.execute(
                select(models.TaskFile.task_id, models.SourceFile.original_path)
                .join(models.SourceFile, models.SourceFile.id == models.TaskFile.file_id)
                .where(models.TaskFile.task_id.in_([r.task_id for r in results]))
                .order_by(models.TaskFile.task_id, models.TaskFile.position)
            ):
                paths.setdefault(task_id, []).append(path)
        return [(r, paths.get(r.task_id, [])) for r in results]


Page = list[tuple[models.Result, list[str]]]


async def _layout(session: AsyncSession, job_id: str, *, evidence: bool) -> ExportLayout:
    """The export's columns: the job's fields, and the columns only some jobs need."""
    fields = (
        await session.execute(
            select(models.JobField.name, models.JobField.data_type_id)
            .where(models.JobField.job_id == job_id)
            .order_by(models.JobField.position)
        )
    ).all()
    # Results hold their latest version; a `corrected` column (the fields a person
    # set) is added when any value of the job was corrected.
    corrected = any(
        (
            await session.scalars(
                select(models.Result.corrected_fields).where(
                    models.Result.job_id == job_id, models.Result.edited.is_(True)
                )
            )
        ).all()
    )
    # A `files left out` column when some combined result left an unreadable file out.
    skipped = (
        await session.scalar(
            select(models.Result.id)
            .where(models.Result.job_id == job_id, models.Result.skipped_files.is_not(None))
            .limit(1)
        )
    ) is not None
    return ExportLayout(
        field_names=[name for name, _ in fields],
        money=frozenset(name for name, data_type in fields if data_type == "currency"),
        dates={
            name: STORED_DATES[data_type] for name, data_type in fields if data_type in STORED_DATES
        },
        corrected=corrected,
        evidence=evidence,
        skipped=skipped,
    )


def _filename(job: models.Job, fmt: str) -> str:
    return f"{(job.display_name or 'results').replace('/', '_')[:80]}.{fmt}"


def _format(fmt: str) -> str:
    """The format asked for (csv when none), one of FORMATS as the OpenAPI document spells
    them; InvalidArgument otherwise. (`CSV` was taken too, lowercased, though the document
    lists the lowercase names alone, and the error quoted the lowercased value back.)"""
    if fmt and fmt not in FORMATS:
        raise InvalidArgument(f"format must be one of {sorted(FORMATS)}, got {fmt[:100]!r}")
    return fmt or "csv"


async def _csv(layout: ExportLayout, pages: AsyncIterator[Page]) -> AsyncIterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    buffer.write("\ufeff")  # BOM: Excel then reads the file as UTF-8
    writer.writerow([_safe_csv(v) for v in layout.header()])
    # The header line at once: the response (and its first byte) does not wait for the
    # CHUNK's worth of rows behind it (0.6 s on 2,000 short rows).
    yield buffer.getvalue().encode()
    buffer.seek(0)
    buffer.truncate()
    async for page in pages:
        for result, paths in page:
            writer.writerow([_safe_csv(v) for v in layout.row(result, paths)])
        if buffer.tell() >= CHUNK:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode()


async def _json(layout: ExportLayout, pages: AsyncIterator[Page]) -> AsyncIterator[bytes]:
    yield b'{"fields": ' + json.dumps(list(layout.field_names)).encode() + b', "results": ['
    first = True
    async for page in pages:
        parts = []
        for result, paths in page:
            item = json.dumps(layout.item(result, paths), ensure_ascii=False)
            parts.append(item if first else "," + item)
            first = False
        yield "".join(parts).encode()
    yield b"]}"


async def _xlsx(layout: ExportLayout, pages: AsyncIterator[Page]) -> AsyncIterator[bytes]:
    """Zipped as rows arrive (`export.xlsx`): the first bytes leave with the first page."""
    book = XlsxStream("results")
    try:
        book.append(layout.header())
        async for page in pages:
            for result, paths in page:
                book.append(layout.row(result, paths))
            if chunk := book.take():
                yield chunk
        yield book.close()
    finally:
        # An export stopped half-way (its client gone): its zip is let go here, not by the
        # garbage collector, whose ZipFile.__del__ raised on the sheet still open in it.
        book.discard()
