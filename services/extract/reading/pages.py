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
import tempfile
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bytereview.core.image_costs import decoding_problem
from bytereview.core.limits import (
    MAX_DOCUMENT_TEXT_CHARS,
    MAX_IMAGE_PIXELS,
    MAX_PAGE_TEXT_CHARS,
    OCR_PAGE_SECONDS,
)
from bytereview.core.pdf_process import (
    PdfBounds,
    PdfProcess,
    PdfTooCostly,
    PdfUnreadable,
    bounded_scale,
)
from bytereview.core.pixel_budget import DECODED
from bytereview.core.reasons import reason_of
from bytereview.core.spool import SpoolFull, copy_to_disk
from services.extract.base import Box, Document, ExtractionError
from services.extract.reading.ocr import ocr_engine
from services.extract.reading.ocr_run import OcrTooCostly, OcrUnreadableShape, TurnLock, read

MAX_PAGES = 50
# A page with less text than this is treated as scanned and read by OCR.
MIN_TEXT_LAYER_CHARS = 16
RENDER_SCALE = 200 / 72  # 200 dpi: small print stays readable, memory stays modest
# A scanned page is drawn at 200 dpi up to this many pixels (A2 at 200 dpi; 75 MB as RGB):
# a page declared 14,400 pt square would otherwise be a 40,000-pixel-square bitmap.
MAX_RENDER_PIXELS = 25_000_000
# Time and memory one pdfium call may take (core/pdf_process.py).
PDF_BOUNDS = PdfBounds()
# An image file up to this size is read into memory; a larger one is spooled to disk.
IMAGE_IN_MEMORY = 16 * 1024 * 1024
# Rows of a 16/32-bit image stretched to 8 bits at a time (ocr_input).
_BAND_ROWS = 256


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


# onnxruntime already spreads one model run over every core: running two at once only
# doubles the memory. Taken per run, not per page (services/extract/reading/ocr_run.py), in turn.
_OCR_LOCK = TurnLock()


def _image_size(image: bytes | Any) -> tuple[float, float]:
    if isinstance(image, bytes):
        from PIL import Image

        with Image.open(io.BytesIO(image)) as opened:
            width, height = opened.size
    else:
        width, height = image.size
    return float(width) or 1.0, float(height) or 1.0


def ocr_page(
    image: bytes | Any, number: int = 1, charge: Callable[[float], None] | None = None
) -> PageText:
    """OCR text of an image (bytes or a PIL image), boxes on one baseline joined into lines;
    OcrTooCostly past OCR_PAGE_SECONDS of its own CPU time, which `charge` is told."""
    result = read(ocr_engine(), image, _OCR_LOCK, lambda: OCR_PAGE_SECONDS, charge)
    width, height = _image_size(image) if result else (1.0, 1.0)
    return page_text(result or [], width, height, number)


def page_text(result: list[list[Any]], width: float, height: float, number: int = 1) -> PageText:
    """The page of OCR's text runs ([box points, text, score], as `read` returns them) on an
    image `width` x `height` pixels: runs on one baseline joined into lines, left to right."""
    runs = []
    for points, text, score in result:
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


def _open_pdf(document: Document) -> PdfProcess:
    """The PDF open in a child process (core/pdf_process.py): a page that would take pdfium
    minutes or gigabytes fails this file alone, and never holds up the worker's other work."""
    with document.open() as handle:
        try:
            return PdfProcess(handle, bounds=PDF_BOUNDS)
        except (PdfUnreadable, PdfTooCostly) as exc:
            raise ExtractionError(
                f"{document.path}: cannot read the PDF ({reason_of(exc)})", retryable=False
            ) from exc
        except SpoolFull as exc:
            _never_fits(document, exc)
            raise


def _never_fits(document: Document, exc: SpoolFull) -> None:
    """The worker's temporary disk had no room for the file's copy. A file larger than the
    disk fails (no attempt can copy it); otherwise the SpoolFull goes on up, an outage the
    worker waits out holding the message (core/outages.py): other copies fill the disk
    only for a while, and the file is not at fault."""
    if exc.never_fits:
        raise ExtractionError(f"{document.path}: {exc}", retryable=False) from exc


class _Unloadable(ExtractionError):
    """pdfium cannot load the page (it may not exist at all)."""


def _call(document: Document, opened: PdfProcess, operation: str, *args: Any) -> Any:
    """The child's `operation`; ExtractionError (not retryable) when the page cannot be
    loaded (_Unloadable) or costs more than the bounds allow."""
    try:
        return opened.call(operation, *args)
    except PdfUnreadable as exc:
        raise _Unloadable(
            f"{document.path}: page {args[0] + 1} cannot be read ({exc})", retryable=False
        ) from exc
    except PdfTooCostly as exc:
        page = f" page {args[0] + 1}" if args else ""
        raise ExtractionError(
            f"{document.path}:{page} cannot be read ({exc})", retryable=False
        ) from exc


def _text_left(read: int) -> int:
    """Characters the next page's text layer may hold, `read` of the document's read already
    (core/limits.py: a text layer is not bounded by the file's size)."""
    return max(0, min(MAX_PAGE_TEXT_CHARS, MAX_DOCUMENT_TEXT_CHARS - read))


def _page_text_or_image(
    document: Document, opened: PdfProcess, index: int, read: int = 0
) -> tuple[PageText | None, Any]:
    """A page's text layer, or its rendered image when the layer is too thin (a scan). A
    page pdfium cannot load is read as empty: the document's other pages still count (a
    page tree may even claim pages it does not have: pdfium believes its /Count). `read`:
    characters of the document's text read before this page."""
    try:
        width, height, text, boxes = _call(
            document, opened, "page_text", index, MIN_TEXT_LAYER_CHARS, _text_left(read)
        )
    except _Unloadable:
        return PageText(index + 1, "", ()), None
    if text is not None:
        return PageText(index + 1, text, _char_boxes(text, boxes, width, height)), None
    from PIL import Image

    scale = bounded_scale(width, height, RENDER_SCALE, MAX_RENDER_PIXELS)
    mode, w, h, pixels = _call(document, opened, "render", index, scale)
    return None, Image.frombytes(mode, (w, h), pixels)


def _char_boxes(
    text: str, boxes: list[Any] | None, width: float, height: float
) -> tuple[Box | None, ...]:
    """Each character's box as a fraction of the page (top-left origin); unknown boxes are
    None, and all are when the text does not map one to one onto pdfium's characters."""
    if boxes is None:
        return (None,) * len(text)
    width, height = width or 1.0, height or 1.0
    return tuple(
        None
        if box is None
        else Box(
            left=box[0] / width,
            top=(height - box[3]) / height,
            right=box[2] / width,
            bottom=(height - box[1]) / height,
        )
        for box in boxes
    )


async def pdf_pages(document: Document) -> list[PageText]:
    """The PDF's pages (at most MAX_PAGES); pdfium in its child, OCR here. At the first page
    that needs OCR, an earlier task's reading of the file serves instead, if one was kept
    (a PDF with a text layer on every page is read in milliseconds and never asks)."""
    pages, count = await asyncio.to_thread(_pdf_pages, document, [], ocr=False)
    if len(pages) == count:
        return pages
    kept = await _kept(document)
    if kept is not None and len(kept) == count:
        return kept
    # On from the page that needs OCR: the text pages before it are read already.
    pages, _ = await asyncio.to_thread(_pdf_pages, document, pages, ocr=True)
    if document.readings is not None:
        await document.readings.save(pages)
    return pages


def _pdf_pages(
    document: Document, read: list[PageText], *, ocr: bool
) -> tuple[list[PageText], int]:
    """(pages, how many there are to read), reading on after the pages `read` already;
    without `ocr`, it stops at the first page that needs it, so that a kept reading is
    looked for first.

    One thread for the whole document: a reader holding one of the few PDF children
    (core/pdf_process.py) must never wait for another thread of the pool that readers
    waiting for a child may all be holding (so a kept reading is looked for in between)."""
    with _open_pdf(document) as opened:
        count = min(opened.page_count, MAX_PAGES)
        pages = list(read)
        for index in range(len(pages), count):
            read_chars = sum(len(p.text) for p in pages)
            page, image = _page_text_or_image(document, opened, index, read_chars)
            if page is None:
                if not ocr:
                    return pages, count
                # Its OCR counts in the document's bound, its waiting for the engine not.
                try:
                    page = _ocr(document, image, index + 1, opened.charge)
                except _UnreadableShape:
                    # Nothing OCR can read (a strip of a page): empty, as an unloadable
                    # page is, so that the document's other pages still count.
                    page = PageText(index + 1, "", ())
            pages.append(page)
        return pages, count


def image_page(document: Document) -> PageText:
    from PIL import Image

    # A local copy, kept in memory only while small: an image file may be up to the upload
    # limit (a TIFF of many pages), while only its first frame is decoded. Copied first, so
    # that storage failing is told apart from the image being damaged.
    with tempfile.SpooledTemporaryFile(max_size=IMAGE_IN_MEMORY) as data:
        with document.open() as handle:
            try:
                copy_to_disk(handle, data, "the image")
            except SpoolFull as exc:
                _never_fits(document, exc)
                raise
        data.seek(0)
        # Judged before Pillow reads a byte: it bounds neither a JPEG's scans nor what it
        # reads of a WebP (ingest refuses these too; this holds for any file).
        if problem := decoding_problem(data):
            raise ExtractionError(f"{document.path}: {problem}", retryable=False)
        try:
            return _ocr_image(document, Image.open(data))
        except ExtractionError:
            raise
        except Exception as exc:  # Pillow raises several kinds on bad images
            raise ExtractionError(
                f"{document.path}: cannot read the image ({reason_of(exc)})", retryable=False
            ) from exc


def _ocr_image(document: Document, opened: Any) -> PageText:
    with opened:
        # The declared size first: decoding is what costs, and a few KiB of PNG can declare
        # gigabytes of pixels (ingest refuses those too; this holds for any file).
        width, height = opened.size
        if width * height > MAX_IMAGE_PIXELS:
            raise ExtractionError(
                f"{document.path}: the image is {width} x {height} pixels; images of more "
                f"than {MAX_IMAGE_PIXELS} pixels are not read",
                retryable=False,
            )
        # Its pixels held from decoding to the end of its OCR (core/pixel_budget.py: decoded
        # images wait for the engine in memory, and a pod has room for only so many).
        with DECODED.held(width * height):
            opened.load()  # decoded here, not under the OCR engine's lock
            return _ocr(document, ocr_input(opened), 1)


class _UnreadableShape(ExtractionError):
    """The page is too long and narrow for OCR (ocr_run.OcrUnreadableShape)."""


def _ocr(
    document: Document, image: Any, number: int, charge: Callable[[float], None] | None = None
) -> PageText:
    """`ocr_page`, a page over its time or of a shape OCR cannot read failing its file
    alone (the worker goes on)."""
    try:
        return ocr_page(image, number, charge)
    except OcrTooCostly as exc:
        raise ExtractionError(
            f"{document.path}: page {number} has more text than OCR reads in "
            f"{OCR_PAGE_SECONDS:g} CPU-seconds",
            retryable=False,
        ) from exc
    except OcrUnreadableShape as exc:
        raise _UnreadableShape(
            f"{document.path}: page {number} is {exc}, too long and narrow for OCR to read "
            "(it reads pages at most ~100 times longer than wide)",
            retryable=False,
        ) from exc


def ocr_input(image: Any) -> Any:
    """The image in a mode the OCR engine reads as it is seen (it takes the array of
    pixels as they are): CMYK's four channels would be read as RGBA, a palette image's
    indices as grey levels, 16- and 32-bit samples overflow; each read as nothing at all."""
    mode = image.mode
    if mode in ("RGB", "L", "1", "RGBA", "LA"):
        return image
    if mode.startswith(("I", "F")):  # 16/32-bit integer or float samples: stretched to 8 bits
        import numpy as np
        from PIL import Image

        # Band by band: the whole image as float32 (and a temporary or two of it) was 4 to
        # 12 bytes a pixel, 560 MB more for a 7000 x 7000 16-bit scan, over what a worker
        # has beside its OCR engine. The extremes as float32 rounds them, as before.
        low, high = (float(np.float32(v)) for v in image.getextrema())
        span = high - low or 1.0
        width, height = image.size
        out = np.empty((height, width), dtype=np.uint8)
        for top in range(0, height, _BAND_ROWS):
            bottom = min(height, top + _BAND_ROWS)
            band = np.array(image.crop((0, top, width, bottom)), dtype=np.float32)
            band -= low
            band *= 255.0 / span
            out[top:bottom] = band.astype(np.uint8)
        return Image.fromarray(out, "L")
    if mode in ("P", "PA"):
        transparent = mode == "PA" or "transparency" in image.info
        return image.convert("RGBA" if transparent else "RGB")
    return image.convert("RGB")  # CMYK, YCbCr, LAB, HSV


def _page_runs(
    document: Document, opened: PdfProcess, index: int, read: int = 0
) -> list[tuple[float, float, float, float, str]]:
    try:
        runs: list[tuple[float, float, float, float, str]] = _call(
            document, opened, "text_runs", index, _text_left(read)
        )
    except _Unloadable:
        return []  # as in pdf_pages: an unloadable page is an empty one
    return runs


def _page_reading_order(runs: list[tuple[float, float, float, float, str]]) -> str:
    """A page's text layer line by line as it is seen: runs on one baseline, left to right.

    A text layer stores runs in the order the producer drew them, which for a form may put
    a column of labels apart from their values (`Rechnungsnr.` a page of text away from
    `30064443`); read in rows, the label and its value share a line again.
    """
    runs.sort(key=lambda r: (-r[1], -r[0], r[2]))
    rows: list[list[tuple[float, float, float, float, str]]] = []
    # The current row's lowest bottom, highest top and tallest run, kept as runs join it:
    # recomputed per run, a page of 20,000 glyphs on one baseline (a 1 KB PDF) took 19
    # CPU-seconds of the worker, quadratic in the glyphs.
    bottom = top = tallest = 0.0
    for run in runs:
        height = run[1] - run[0]
        if rows:
            overlap = min(run[1], top) - max(run[0], bottom)
            if overlap > 0.6 * min(height, tallest):
                rows[-1].append(run)
                bottom, top, tallest = min(bottom, run[0]), max(top, run[1]), max(tallest, height)
                continue
        rows.append([run])
        bottom, top, tallest = run[0], run[1], height
    lines = []
    for row in rows:
        row.sort(key=lambda r: r[2])
        parts = [row[0][4]]
        for before, run in itertools.pairwise(row):
            # Producers that place glyph by glyph leave no gap inside a word.
            parts.append(("" if run[2] - before[3] < 0.15 * (run[1] - run[0]) else " ") + run[4])
        lines.append("".join(parts))
    return "\n".join(lines)


async def pdf_reading_order(document: Document) -> str:
    """The PDF's text layer read in rows (see `_page_reading_order`); scanned pages are left
    out, their OCR text is in reading order already."""
    return await asyncio.to_thread(_pdf_reading_order, document)


def _pdf_reading_order(document: Document) -> str:
    with _open_pdf(document) as opened:  # one thread for the whole document, as _pdf_pages
        lines: list[str] = []
        read = 0
        for index in range(min(opened.page_count, MAX_PAGES)):
            runs = _page_runs(document, opened, index, read)
            read += sum(len(run[4]) for run in runs)
            lines.append(_page_reading_order(runs))
        return "\n".join(lines)


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
