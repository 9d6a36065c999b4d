"""The streamed XLSX writer: a workbook openpyxl (and so Excel's format) reads back with the
values typed by our data, produced chunk by chunk."""

from __future__ import annotations

import io
from decimal import Decimal

from openpyxl import load_workbook

from services.jobs.domain.export.xlsx import XlsxStream, column_letters


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
