"""A document's own text, page by page, with where each character sits on its page.

The offline extractor reads values from this text and the platform verifies every quote
against it (whichever extractor cited it), so both read a document once per task: the pages
are kept on the `Document`. Text comes from the PDF text layer (pypdfium2, with character
boxes) or, for images and scanned pages, from OCR (rapidocr, with the box of each text run).
"""

from __future__ import annotations

import asyncio
import io
import itertools
import threading
import unicodedata
from dataclasses import dataclass
from typing import Any, BinaryIO

from bytereview.core import pdfium
from services.extract.base import Box, Document, ExtractionError
from services.extract.ocr import ocr_engine

MAX_PAGES = 50
# A page with less text than this is treated as scanned and read by OCR.
MIN_TEXT_LAYER_CHARS = 16
RENDER_SCALE = 200 / 72  # 200 dpi: small print stays readable, memory stays modest


@dataclass(frozen=True, slots=True)
class PageText:
    """One page's text; `boxes[i]` is where `text[i]` is printed (None where unknown), and
    `scores[i]` how sure OCR was of the run `text[i]` belongs to (None or absent where the
    text came from a text layer, which is not read but given)."""

    number: int  # 1-based
    text: str
    boxes: tuple[Box | None, ...]
    scores: tuple[float | None, ...] = ()

    def scores_of(self, start: int, end: int) -> list[float]:
        """OCR's recognition scores of the characters [start, end) it read."""
        return [s for s in self.scores[start:end] if s is not None]

    def box_of(self, start: int, end: int) -> Box | None:
        """The box around the characters [start, end), or None when none of them has one."""
        known = [b for b in self.boxes[start:end] if b is not None]
        if not known:
            return None
        return Box(
            left=min(b.left for b in known),
            top=min(b.top for b in known),
            right=max(b.right for b in known),
            bottom=max(b.bottom for b in known),
        )


_OCR_LOCK = threading.Lock()


def _image_size(image: bytes | Any) -> tuple[float, float]:
    if isinstance(image, bytes):
        from PIL import Image

        with Image.open(io.BytesIO(image)) as opened:
            width, height = opened.size
    else:
        width, height = image.size
    return float(width) or 1.0, float(height) or 1.0


def ocr_page(image: bytes | Any, number: int = 1) -> PageText:
    """OCR text of an image (bytes or a PIL image), boxes on one baseline joined into lines."""
    # onnxruntime already spreads one inference over every core: running two at once
    # only doubles the memory.
    with _OCR_LOCK:
        result, _ = ocr_engine()(image)
    width, height = _image_size(image) if result else (1.0, 1.0)
    runs = []
    for points, text, score in result or []:
        ys = [float(p[1]) for p in points]
        xs = [float(p[0]) for p in points]
        box = Box(
            left=min(xs) / width,
            top=min(ys) / height,
            right=max(xs) / width,
            bottom=max(ys) / height,
        )
        # OCR of Asian receipts yields full-width punctuation (U+FF08 for a parenthesis).
        runs.append(
            (
                min(ys),
                max(ys),
                min(xs),
                unicodedata.normalize("NFKC", str(text)),
                box,
                float(score),
            )
        )
    runs.sort(key=lambda r: r[:3])
    lines: list[list[tuple[float, float, float, str, Box, float]]] = []
    for run in runs:
        top, bottom = run[0], run[1]
        if lines:
            last = lines[-1]
            last_top = min(b[0] for b in last)
            last_bottom = max(b[1] for b in last)
            # Same line when the boxes overlap vertically by more than half the smaller one.
            overlap = min(bottom, last_bottom) - max(top, last_top)
            if overlap > 0.6 * min(bottom - top, last_bottom - last_top):
                last.append(run)
                continue
        lines.append([run])
    chars: list[str] = []
    boxes: list[Box | None] = []
    # Kept per character: a value's quote is scored by the runs it spans (a misread name
    # is printed as confidently as a right one, but OCR itself was often less sure).
    scores: list[float | None] = []
    for n, line in enumerate(lines):
        if n:
            chars.append("\n")
            boxes.append(None)
            scores.append(None)
        for k, run in enumerate(sorted(line, key=lambda b: b[2])):
            if k:
                chars.append(" ")
                boxes.append(None)
                scores.append(None)
            chars.append(run[3])
            boxes.extend([run[4]] * len(run[3]))
            scores.extend([run[5]] * len(run[3]))
    return PageText(number, "".join(chars), tuple(boxes), tuple(scores))


@dataclass
class _OpenPdf:
    """A PDF open in pdfium, with the handle pdfium reads it through."""

    handle: BinaryIO
    pdf: Any


def _open_pdf(document: Document) -> _OpenPdf:
    import pypdfium2 as pdfium

    handle = document.open()
    try:
        return _OpenPdf(handle, pdfium.PdfDocument(handle))
    except pdfium.PdfiumError as exc:
        handle.close()
        raise ExtractionError(
            f"{document.path}: cannot read the PDF ({exc})", retryable=False
        ) from exc
    except BaseException:
        handle.close()
        raise


def _page_count(opened: _OpenPdf) -> int:
    return min(len(opened.pdf), MAX_PAGES)


def _page_text_or_image(opened: _OpenPdf, index: int) -> tuple[PageText | None, Any]:
    """A page's text layer, or its rendered image when the layer is too thin (a scan)."""
    page = opened.pdf[index]
    try:
        textpage = page.get_textpage()
        try:
            text = str(textpage.get_text_range())
            if len(text.strip()) >= MIN_TEXT_LAYER_CHARS:
                return PageText(index + 1, text, _char_boxes(page, textpage, text)), None
        finally:
            textpage.close()
        bitmap = page.render(scale=RENDER_SCALE)
        try:
            # A copy: the image must not share the bitmap's buffer once it is closed.
            return None, bitmap.to_pil().copy()
        finally:
            bitmap.close()
    finally:
        page.close()


def _char_boxes(page: Any, textpage: Any, text: str) -> tuple[Box | None, ...]:
    """Each character's box as a fraction of the page (top-left origin); unknown boxes are
    None, and all are when the text does not map one to one onto pdfium's characters."""
    if textpage.count_chars() != len(text):
        return (None,) * len(text)
    width, height = page.get_size()
    width, height = float(width) or 1.0, float(height) or 1.0
    boxes: list[Box | None] = []
    for i, ch in enumerate(text):
        if ch.isspace():
            boxes.append(None)
            continue
        left, bottom, right, top = textpage.get_charbox(i)
        boxes.append(
            Box(
                left=left / width,
                top=(height - top) / height,
                right=right / width,
                bottom=(height - bottom) / height,
            )
        )
    return tuple(boxes)


def _close_pdf(opened: _OpenPdf) -> None:
    try:
        opened.pdf.close()
    finally:
        opened.handle.close()


async def pdf_pages(document: Document) -> list[PageText]:
    """The PDF's pages; pdfium on its own thread, OCR outside its lock. At the first page
    that needs OCR, an earlier task's reading of the file serves instead, if one was kept
    (a PDF with a text layer on every page is read in milliseconds and never asks)."""
    opened = await pdfium.run(_open_pdf, document)
    try:
        count = await pdfium.run(_page_count, opened)
        pages = []
        asked = False
        for index in range(count):
            page, image = await pdfium.run(_page_text_or_image, opened, index)
            if page is None:
                if not asked:
                    asked = True
                    kept = await _kept(document)
                    if kept is not None and len(kept) == count:
                        return kept
                page = await asyncio.to_thread(ocr_page, image, index + 1)
            pages.append(page)
    finally:
        await pdfium.run(_close_pdf, opened)
    if asked and document.readings is not None:
        await document.readings.save(pages)
    return pages


def image_page(document: Document) -> PageText:
    with document.open() as handle:
        data = handle.read()
    try:
        return ocr_page(data)
    except Exception as exc:  # the OCR engine raises bare exceptions on undecodable images
        raise ExtractionError(
            f"{document.path}: cannot read the image ({exc})", retryable=False
        ) from exc


def _page_reading_order(opened: _OpenPdf, index: int) -> str:
    """A page's text layer line by line as it is seen: runs on one baseline, left to right.

    A text layer stores runs in the order the producer drew them, which for a form may put
    a column of labels apart from their values (`Rechnungsnr.` a page of text away from
    `30064443`); read in rows, the label and its value share a line again.
    """
    page = opened.pdf[index]
    textpage = page.get_textpage()
    try:
        runs = []
        for rect in range(textpage.count_rects()):
            left, bottom, right, top = textpage.get_rect(rect)
            text = " ".join(str(textpage.get_text_bounded(left, bottom, right, top)).split())
            if text:
                runs.append((bottom, top, left, right, text))
    finally:
        textpage.close()
        page.close()
    runs.sort(key=lambda r: (-r[1], -r[0], r[2]))
    rows: list[list[tuple[float, float, float, float, str]]] = []
    for run in runs:
        if rows:
            low = max(run[0], min(r[0] for r in rows[-1]))
            high = min(run[1], max(r[1] for r in rows[-1]))
            if high - low > 0.6 * min(run[1] - run[0], max(r[1] - r[0] for r in rows[-1])):
                rows[-1].append(run)
                continue
        rows.append([run])
    lines = []
    for row in rows:
        row.sort(key=lambda r: r[2])
        line = row[0][4]
        for before, run in itertools.pairwise(row):
            # Producers that place glyph by glyph leave no gap inside a word.
            line += ("" if run[2] - before[3] < 0.15 * (run[1] - run[0]) else " ") + run[4]
        lines.append(line)
    return "\n".join(lines)


async def pdf_reading_order(document: Document) -> str:
    """The PDF's text layer read in rows (see `_page_reading_order`); scanned pages are left
    out, their OCR text is in reading order already."""
    opened = await pdfium.run(_open_pdf, document)
    try:
        pages = []
        for index in range(await pdfium.run(_page_count, opened)):
            pages.append(await pdfium.run(_page_reading_order, opened, index))
        return "\n".join(pages)
    finally:
        await pdfium.run(_close_pdf, opened)


async def document_pages(document: Document) -> list[PageText]:
    """The document's pages, read once per `Document` (extractor and verifier share them),
    and what OCR read of a stored file once per file (`page_store`)."""
    if document.pages:
        return list(document.pages)
    if document.media_type == "application/pdf":
        pages = await pdf_pages(document)
    elif document.media_type.startswith("image/"):
        pages = await _kept(document) or []
        if not pages:
            pages = [await asyncio.to_thread(image_page, document)]
            if document.readings is not None:
                await document.readings.save(pages)
    else:
        raise ExtractionError(
            f"{document.path}: cannot read {document.media_type}", retryable=False
        )
    document.pages[:] = pages
    return pages


async def _kept(document: Document) -> list[PageText] | None:
    """What OCR read of this stored file in an earlier task, if it was kept."""
    return None if document.readings is None else await document.readings.load()


def joined(pages: list[PageText]) -> str:
    """The document's text as the offline extractor reads it: pages one after the other."""
    return "\n".join(p.text for p in pages)
