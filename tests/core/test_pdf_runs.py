"""A page's text runs (pdf_child.text_runs) read each character once (bytereview.pdf_runs)
and say what pdfium's text of each run's rect says, whitespace folded: the reading they
replaced asked pdfium for each rect's text (FPDFText_GetBoundedText), which scans the whole
page each time, and a dense page spent the child's CPU bound on it."""

from __future__ import annotations

import io
import random
import time
from typing import Any

import pypdfium2 as pdfium
import pytest

from bytereview import pdf_child, pdf_runs
from bytereview.core.limits import MAX_PAGE_TEXT_CHARS
from bytereview.core.pdf_process import PdfProcess
from tests.hostile_documents import one_page, text_bomb
from tests.pdfs import joined_pdf, placed_pdf, text_pdf

Runs = list[tuple[float, float, float, float, str]]


def bounded_runs(data: bytes, index: int = 0) -> Runs:
    """The reading text_runs replaced, as it was: pdfium's text of each rect (rects x
    characters), whitespace folded."""
    pdf = pdfium.PdfDocument(data)
    page = pdf[index]
    textpage = page.get_textpage()
    try:
        runs = []
        for rect in range(textpage.count_rects()):
            left, bottom, right, top = textpage.get_rect(rect)
            text = " ".join(str(textpage.get_text_bounded(left, bottom, right, top)).split())
            if text:
                runs.append((bottom, top, left, right, text))
        return runs
    finally:
        textpage.close()
        page.close()
        pdf.close()


def linear_runs(data: bytes, index: int = 0) -> Runs:
    pdf = pdfium.PdfDocument(data)
    try:
        runs: Runs = pdf_child.text_runs(pdf, index, MAX_PAGE_TEXT_CHARS)
        return runs
    finally:
        pdf.close()


def _drawn(content: str) -> bytes:
    """A page drawing `content` (PDF operators) with Helvetica as /F1 (WinAnsi)."""
    font = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"
    return one_page(content.encode("cp1252"), resources=b"<< /Font << /F1 5 0 R >> >>", more=[font])


def _grid(columns: int, rows: int, text: str, *, step: float, line: float, size: float) -> bytes:
    runs = [(3 + c * step, 3 + r * line, text) for r in range(rows) for c in range(columns)]
    return placed_pdf(runs, size=size)


PAGES: dict[str, tuple[bytes, int]] = {
    "lines": (text_pdf(["Invoice Number: INV-7", "Total:   1.234,50 EUR", "", "  x  "]), 0),
    "accents": (text_pdf(["Größe: 12,50 €", "naïve café - «Übersicht»"]), 0),
    "form order": (
        placed_pdf([(400, 700, "30064443"), (72, 700, "Rechnungsnr."), (72, 100, "Seite 1")]),
        0,
    ),
    # Drawn twice over itself (a producer's bold): pdfium keeps one of the two.
    "drawn twice": (placed_pdf([(72, 700, "Total 10.00"), (72.3, 700.2, "Total 10.00")]), 0),
    # Lines closer than their letters are tall: descenders reach into the next line's rect.
    "tight lines": (
        placed_pdf([(72, 700, "Typography jg"), (72, 692, "Hjklmn yyy"), (72, 684, "ÄÖÜ gqp")]),
        0,
    ),
    "abutting": (placed_pdf([(72, 600, "Rech"), (98.68, 600, "nung"), (124, 600, "nr.")]), 0),
    # Kerned runs (generated spaces), a rotated line, a large glyph over small text.
    "kerned, rotated, watermark": (
        _drawn(
            "BT /F1 10 Tf 72 700 Td [(Amount) -2000 (due) -300 (now)] TJ ET "
            "BT /F1 10 Tf 0 1 -1 0 300 300 Tm (Rotated text) Tj ET "
            "BT /F1 400 Tf 100 200 Td (W) Tj ET "
            "BT /F1 9 Tf 150 350 Td (under the big W) Tj 0 -10 Td (and more) Tj ET"
        ),
        0,
    ),
    "second page": (joined_pdf(text_pdf(["first"]), text_pdf(["Page two", "line"])), 1),
    "one long line": (text_bomb(5000, per_line=1000), 0),
    "3,000 short runs": (_grid(60, 50, "ab", step=4, line=3.9, size=2), 0),
    "overlapping grid": (_grid(40, 40, "Wg", step=3, line=2, size=4), 0),
}


@pytest.mark.parametrize("name", list(PAGES))
def test_runs_are_pdfiums_text_of_each_rect(name: str) -> None:
    data, index = PAGES[name]
    expected = bounded_runs(data, index)
    assert expected  # the page has runs to compare
    assert linear_runs(data, index) == expected


def test_overlapping_runs_hold_each_others_characters_as_pdfium_says() -> None:
    """Where runs overlap, the text of one run's rect holds the other's characters too: so
    pdfium's reading said, and text_runs keeps it (the reading order downstream is built on
    these runs). A run drawn twice over itself is one run already in pdfium's text layer."""
    texts = [run[4] for run in linear_runs(PAGES["tight lines"][0])]
    assert texts == [
        "Typography jg Hjklmn yyy",
        "Typography Hjklmn yyy ÄÖÜ gqp",
        "Hjklmn yy ÄÖÜ gqp",
    ]
    assert [run[4] for run in linear_runs(PAGES["drawn twice"][0])] == ["Total 10.00"]


def test_a_dense_page_reads_in_the_child() -> None:
    """90,000 one-letter runs, each its own text object (a 700 KB page): read through the
    child under its usual bounds. Asked for each rect's text, it spent the child's whole
    CPU bound (about 100 CPU-seconds needed, 60 allowed) and the page failed to read."""
    data = _grid(500, 180, "a", step=1.112, line=2.8, size=2)
    with PdfProcess(io.BytesIO(data)) as pdf:
        started = time.perf_counter()
        runs: Any = pdf.call("text_runs", 0, MAX_PAGE_TEXT_CHARS)
        print(f"90,000 runs read in {time.perf_counter() - started:.2f} s")
    assert len(runs) == 90_000
    assert {run[4] for run in runs} == {"a"}


def _shape(data: bytes, index: int = 0) -> tuple[list[Any], list[Any]]:
    """The page's character boxes and pdfium's rects, as text_runs reads them."""
    pdf = pdfium.PdfDocument(data)
    page = pdf[index]
    textpage = page.get_textpage()
    try:
        _, boxes, _ = pdf_child._characters(textpage)
        rects = [tuple(textpage.get_rect(i)) for i in range(textpage.count_rects())]
        return boxes, rects
    finally:
        textpage.close()
        page.close()
        pdf.close()


@pytest.mark.parametrize("name", list(PAGES))
def test_the_grid_reads_every_real_page(name: str) -> None:
    assert pdf_runs.worth_it(*_shape(*PAGES[name]))


@pytest.mark.parametrize("name", ["kerned, rotated, watermark", "tight lines", "3,000 short runs"])
def test_pdfiums_own_reading_of_each_rect_gives_the_same_runs(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reading for pages shaped against the grid is pdfium's text of each rect: the
    same runs."""
    data, index = PAGES[name]
    monkeypatch.setattr(pdf_runs, "worth_it", lambda boxes, rects: False)
    assert linear_runs(data, index) == bounded_runs(data, index)


def test_pages_shaped_against_the_grid_are_read_by_pdfium() -> None:
    """Rects spanning many occupied cells (page-wide lines over small print), or glyphs too
    large for the grid that every rect must look at: the grid would cost more than pdfium's
    text of each rect (seconds to minutes in Python, where pdfium takes milliseconds)."""
    small = [(float(i), 0.0, i + 1.0, 1.0) for i in range(2000)]
    page_wide = [(0.0, i / 400, 300_000.0, i / 400 + 0.001) for i in range(200)]
    assert not pdf_runs.worth_it(small, page_wide)
    dense = [
        (float(i % 200), float(i // 200), i % 200 + 1.0, i // 200 + 1.0) for i in range(40_000)
    ]
    large = [
        (float(i % 100), float(i // 100), i % 100 + 30.0, i // 100 + 30.0) for i in range(10_000)
    ]
    assert not pdf_runs.worth_it(dense + large, dense)
    assert pdf_runs.worth_it(dense, dense)  # the same print without the large glyphs


def test_a_rect_over_more_cells_than_hold_characters_finds_the_same_characters() -> None:
    """The grid walks the occupied cells instead of the rect's when those are fewer: the
    same characters either way (against every box tried against the rect)."""
    rng = random.Random(7)
    boxes = []
    for _ in range(500):
        x, y, w, h = rng.uniform(0, 600), rng.uniform(0, 800), rng.uniform(0, 8), rng.uniform(0, 9)
        boxes.append((x, y, x + w, y + h))
    rects = [(0.0, float(y), 600.0, y + 0.5) for y in range(0, 800, 7)]
    rects += [(rng.uniform(0, 500), rng.uniform(0, 700), 600.0, 800.0) for _ in range(50)]
    grid = pdf_runs._Grid(boxes, rects)
    for left, bottom, right, top in rects:
        expected = [
            i
            for i, b in enumerate(boxes)
            if max(left, b[0]) < min(right, b[2]) and max(bottom, b[1]) < min(top, b[3])
        ]
        assert grid.inside(left, bottom, right, top) == expected
