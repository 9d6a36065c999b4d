"""Streaming export of a job's results as CSV, JSON or XLSX.

Results are read in pages of PAGE rows, so memory stays bounded however large
the job: CSV and JSON are produced chunk by chunk; XLSX rows go to a temporary
file through openpyxl's write-only mode, which is then streamed.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import math
import os
import re
import tempfile
from collections.abc import AsyncIterator, Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from bytereview.core.errors import InvalidArgument
from services.jobs.domain import export_evidence
from services.jobs.domain.context import JobsContext, owned_job
from services.jobs.store import models

PAGE = 500
CHUNK = 256 * 1024
FORMATS = {
    "csv": "text/csv; charset=utf-8",
    "json": "application/json",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


def _cell(value: Any) -> Any:
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return json.dumps(value, ensure_ascii=False)


def _amount(value: Any) -> Any:
    """A currency value as a Decimal: the extractors store the document's decimals as a string
    ("30.90"); older results and models may hold a number (whose `30.90` lost its zero).
    A Decimal prints with its places in CSV and is a numeric 0.00 cell in XLSX."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return Decimal(f"{value:.2f}")
    if isinstance(value, str) and re.fullmatch(r"-?\d+(\.\d+)?", value.strip()):
        return Decimal(value.strip())
    return _cell(value)


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


def _xlsx_cell(sheet: Any, value: Any) -> Any:
    """A write-only cell typed by our data, never by its first character.

    openpyxl turns a string starting with `=` into a formula; a string is written as a
    string (shared-string cell), so `=HYPERLINK(...)` from a document stays text."""
    from openpyxl.cell import WriteOnlyCell

    cell = WriteOnlyCell(sheet, value=value)
    if isinstance(value, str):
        cell.data_type = "s"
    elif isinstance(value, Decimal):
        cell.number_format = "0.00"
    return cell


class Exporter:
    def __init__(self, ctx: JobsContext) -> None:
        self._ctx = ctx

    async def export(
        self, user_id: str, job_id: str, fmt: str, *, evidence: bool = False
    ) -> tuple[str, str, AsyncIterator[bytes]]:
        """(content type, file name, chunks). Access is checked before the first chunk."""
        fmt = (fmt or "csv").lower()
        if fmt not in FORMATS:
            raise InvalidArgument(f"format must be one of {sorted(FORMATS)}, got {fmt!r}")
        async with self._ctx.reading() as session:
            job = await owned_job(session, user_id, job_id)
            fields = (
                await session.execute(
                    select(models.JobField.name, models.JobField.data_type_id)
                    .where(models.JobField.job_id == job_id)
                    .order_by(models.JobField.position)
                )
            ).all()
        field_names = [name for name, _ in fields]
        money = {name for name, data_type in fields if data_type == "currency"}
        filename = f"{(job.display_name or 'results').replace('/', '_')[:80]}.{fmt}"
        header = ["file", *field_names]
        if evidence:
            header += export_evidence.header(field_names)
        rows = self._rows(job_id, field_names, money, evidence)
        if fmt == "csv":
            return FORMATS[fmt], filename, self._csv(header, rows)
        if fmt == "json":
            return FORMATS[fmt], filename, self._json(field_names, job_id, evidence)
        return FORMATS[fmt], filename, self._xlsx(header, rows)

    async def _pages(self, job_id: str) -> AsyncIterator[list[tuple[models.Result, str]]]:
        last = -1
        while True:
            async with self._ctx.reading() as session:
                results = (
                    await session.scalars(
                        select(models.Result)
                        .where(models.Result.job_id == job_id, models.Result.position > last)
                        .order_by(models.Result.position)
                        .limit(PAGE)
                    )
                ).all()
                if not results:
                    return
                paths: dict[str, list[str]] = {}
                for task_id, path in await session.execute(
                    select(models.TaskFile.task_id, models.SourceFile.original_path)
                    .join(models.SourceFile, models.SourceFile.id == models.TaskFile.file_id)
                    .where(models.TaskFile.task_id.in_([r.task_id for r in results]))
                    .order_by(models.TaskFile.task_id, models.TaskFile.position)
                ):
                    paths.setdefault(task_id, []).append(path)
            yield [(r, "; ".join(paths.get(r.task_id, []))) for r in results]
            last = results[-1].position

    async def _rows(
        self, job_id: str, field_names: Sequence[str], money: set[str], evidence: bool = False
    ) -> AsyncIterator[list[Any]]:
        async for page in self._pages(job_id):
            for result, path in page:
                yield [
                    path,
                    *(
                        _amount(value) if name in money else _cell(value)
                        for name in field_names
                        for value in [result.values.get(name)]
                    ),
                    *(export_evidence.cells(result, field_names) if evidence else []),
                ]

    async def _csv(self, header: list[str], rows: AsyncIterator[list[Any]]) -> AsyncIterator[bytes]:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        buffer.write("\ufeff")  # BOM: Excel then reads the file as UTF-8
        writer.writerow([_safe_csv(v) for v in header])
        async for row in rows:
            writer.writerow([_safe_csv(v) for v in row])
            if buffer.tell() >= CHUNK:
                yield buffer.getvalue().encode()
                buffer.seek(0)
                buffer.truncate()
        yield buffer.getvalue().encode()

    async def _json(
        self, field_names: list[str], job_id: str, evidence: bool = False
    ) -> AsyncIterator[bytes]:
        yield b'{"fields": ' + json.dumps(field_names).encode() + b', "results": ['
        first = True
        async for page in self._pages(job_id):
            parts = []
            for result, path in page:
                item = {
                    "file": path,
                    "values": {name: result.values.get(name) for name in field_names},
                    "edited": result.edited,
                }
                if evidence:
                    item["assessments"] = export_evidence.json_item(result, field_names)
                parts.append(("" if first else ",") + json.dumps(item, ensure_ascii=False))
                first = False
            yield "".join(parts).encode()
        yield b"]}"

    async def _xlsx(
        self, header: list[str], rows: AsyncIterator[list[Any]]
    ) -> AsyncIterator[bytes]:
        from openpyxl import Workbook

        fd, path = tempfile.mkstemp(suffix=".xlsx")
        os.close(fd)
        try:
            workbook = Workbook(write_only=True)
            sheet = workbook.create_sheet("results")
            sheet.append([_xlsx_cell(sheet, v) for v in header])
            async for row in rows:
                sheet.append([_xlsx_cell(sheet, v) for v in row])
            await asyncio.to_thread(workbook.save, path)
            with open(path, "rb") as handle:  # noqa: ASYNC230 - local temp file, small reads
                while chunk := handle.read(CHUNK):
                    yield chunk
        finally:
            os.unlink(path)
