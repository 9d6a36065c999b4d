"""The streamed XLSX writer: a workbook openpyxl (and so Excel's format) reads back with the
values typed by our data, produced chunk by chunk."""

from __future__ import annotations

import asyncio
import gc
import io
from collections.abc import AsyncIterator
from decimal import Decimal

from openpyxl import load_workbook

from services.jobs.domain.export.exporter import _xlsx
from services.jobs.domain.export.rows import ExportLayout
from services.jobs.domain.export.xlsx import XlsxStream, column_letters
from services.jobs.store import models


def test_column_letters() -> None:
    assert [column_letters(i) for i in (0, 25, 26, 51, 52, 701, 702)] == [
        "A", "Z", "AA", "AZ", "BA", "ZZ", "AAA",
    ]  # fmt: skip


def test_a_streamed_workbook_reads_back_typed() -> None:
    book = XlsxStream("results")
    chunks = []
    book.append(["file", "name", "total", "count", "ok", "none"])
    for i in range(5000):
        book.append([f"dir/{i}.pdf", f"<b>&\x01{i}", Decimal(f"{i}.50"), i, i % 2 == 0, None])
        if i % 500 == 0:
            chunks.append(book.take())
    chunks.append(book.close())
    assert sum(1 for c in chunks if c) > 2  # bytes leave while rows still arrive
    sheet = load_workbook(io.BytesIO(b"".join(chunks)))["results"]
    rows = [[c.value for c in row] for row in sheet.iter_rows()]
    assert rows[0] == ["file", "name", "total", "count", "ok", "none"]
    assert rows[1] == ["dir/0.pdf", "<b>&0", 0.5, 0, True, None]  # illegal XML char dropped
    assert rows[5000][:5] == ["dir/4999.pdf", "<b>&4999", 4999.5, 4999, False]
    assert sheet["C2"].number_format == "0.00"
    assert sheet["B2"].data_type == "s"


async def test_an_export_stopped_half_way_lets_its_zip_go() -> None:
    """An XLSX export stopped mid-stream (a cancellation raised through it: its client went
    away) closes its unfinished zip on the way out. Left in the exception's traceback, a
    garbage cycle, the zip was finalized by the collector, in no set order with the sheet
    open in it, and ZipFile.__del__ raised "Can't close the ZIP file while there is an open
    writing handle on it" (an unraisable exception: a failure of this test)."""
    layout = ExportLayout(field_names=["a"], money=frozenset())

    async def pages() -> AsyncIterator[list[tuple[models.Result, list[str]]]]:
        for page in range(100):
            if page == 2:
                raise asyncio.CancelledError
            yield [(models.Result(values={"a": f"{page}-{i}" * 50}), ["f.pdf"]) for i in range(500)]

    async def stopped() -> BaseException:
        caught: BaseException | None = None
        try:
            async for _ in _xlsx(layout, pages()):
                pass
        except asyncio.CancelledError as exc:
            caught = exc  # kept, as a task keeps what ended it: its traceback holds the export
        assert caught is not None
        return caught

    assert isinstance(await stopped(), asyncio.CancelledError)
    gc.collect()


def test_a_discarded_workbook_gives_nothing_more() -> None:
    book = XlsxStream()
    book.append(["x"])
    book.discard()
    book.discard()  # idempotent
    assert book.take() == b""
    finished = XlsxStream()
    assert finished.close()
    finished.discard()  # a no-op once closed
