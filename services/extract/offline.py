"""The offline extractor: the PDF text layer (OCR for images when available) + field matching.

No network and no model download: text comes from the PDF text layer (pypdfium2);
images and scanned pages are read by rapidocr-onnxruntime, whose model ships in its wheel.
Values are found by looking for each field's label (from its name and
instruction) and reading what follows, then parsed by the field's data type.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import threading
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO

from bytereview.core import pdfium
from services.extract.base import (
    Document,
    Extraction,
    ExtractionError,
    ExtractionRequest,
)
from services.extract.labels import (
    Concept,
    anywhere,
    concept_for,
    generic_concept,
    labelled_value,
)
from services.extract.layout import by_layout, is_layout_field
from services.extract.ocr import ocr_engine
from services.extract.schema import Field, InvalidValue, JsonValue, normalise

MAX_PAGES = 50
# A page with less text than this is treated as scanned and read by OCR.
MIN_TEXT_LAYER_CHARS = 16
RENDER_SCALE = 200 / 72  # 200 dpi: small print stays readable, memory stays modest


_OCR_LOCK = threading.Lock()


def ocr_lines(image: bytes | Any) -> str:
    """OCR text of an image (bytes or a PIL image), with boxes on one baseline joined into lines."""
    # onnxruntime already spreads one inference over every core: running two at once
    # only doubles the memory.
    with _OCR_LOCK:
        result, _ = ocr_engine()(image)
    boxes = []
    for points, text, _score in result or []:
        ys = [float(p[1]) for p in points]
        xs = [float(p[0]) for p in points]
        boxes.append((min(ys), max(ys), min(xs), str(text)))
    boxes.sort()
    lines: list[list[tuple[float, float, float, str]]] = []
    for box in boxes:
        top, bottom = box[0], box[1]
        if lines:
            last = lines[-1]
            last_top = min(b[0] for b in last)
            last_bottom = max(b[1] for b in last)
            # Same line when the boxes overlap vertically by more than half the smaller one.
            overlap = min(bottom, last_bottom) - max(top, last_top)
            if overlap > 0.6 * min(bottom - top, last_bottom - last_top):
                last.append(box)
                continue
        lines.append([box])
    text = "\n".join(" ".join(b[3] for b in sorted(line, key=lambda b: b[2])) for line in lines)
    # OCR of Asian receipts yields full-width punctuation (U+FF08 for a parenthesis).
    return unicodedata.normalize("NFKC", text)


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


def _page_text_or_image(opened: _OpenPdf, index: int) -> tuple[str, Any]:
    """A page's text layer, or its rendered image when the layer is too thin (a scan)."""
    page = opened.pdf[index]
    try:
        textpage = page.get_textpage()
        try:
            text = str(textpage.get_text_range())
        finally:
            textpage.close()
        if len(text.strip()) >= MIN_TEXT_LAYER_CHARS:
            return text, None
        bitmap = page.render(scale=RENDER_SCALE)
        try:
            # A copy: the image must not share the bitmap's buffer once it is closed.
            return "", bitmap.to_pil().copy()
        finally:
            bitmap.close()
    finally:
        page.close()


def _close_pdf(opened: _OpenPdf) -> None:
    try:
        opened.pdf.close()
    finally:
        opened.handle.close()


async def pdf_text(document: Document) -> str:
    """The PDF's text, page by page; pdfium on its own thread, OCR outside its lock."""
    opened = await pdfium.run(_open_pdf, document)
    try:
        pages = []
        for index in range(await pdfium.run(_page_count, opened)):
            text, image = await pdfium.run(_page_text_or_image, opened, index)
            if image is not None:
                text = await asyncio.to_thread(ocr_lines, image)
            pages.append(text)
        return "\n".join(pages)
    finally:
        await pdfium.run(_close_pdf, opened)


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


def image_text(document: Document) -> str:
    with document.open() as handle:
        data = handle.read()
    try:
        return ocr_lines(data)
    except Exception as exc:  # the OCR engine raises bare exceptions on undecodable images
        raise ExtractionError(
            f"{document.path}: cannot read the image ({exc})", retryable=False
        ) from exc


async def document_text(document: Document) -> str:
    if document.media_type == "application/pdf":
        return await pdf_text(document)
    if document.media_type.startswith("image/"):
        return await asyncio.to_thread(image_text, document)
    raise ExtractionError(f"{document.path}: cannot read {document.media_type}", retryable=False)


def find_value(text: str, field: Field) -> JsonValue:
    """The value in `text`, or None.

    A field whose name names a labelled value (invoice number, VAT, due date, IBAN...)
    is read next to its label; the seller, their address and the total are found by
    layout; any other field by its own name as a label. A value that is not where its
    label says stays None rather than borrowing a neighbour's.
    """
    lines = [line for line in (raw.strip() for raw in text.splitlines()) if line]
    concept = concept_for(field, by_instruction=False)
    if concept is None:
        found = by_layout(text, field)
        if found is not None or is_layout_field(field):
            return found
        concept = concept_for(field)
    if concept is None:
        concept = generic_concept(field)
    value = labelled_value(lines, field, concept)
    if value is not None:
        return value
    if concept.name == "invoice_date":
        return first_date(lines, field)
    return anywhere(text, field, concept) or _anywhere(text, field, concept)


def first_date(lines: Sequence[str], field: Field) -> JsonValue:
    """The first date printed: a document's own date comes before the dates it lists."""
    for line in lines:
        try:
            return normalise(line, field.data_type)
        except InvalidValue:
            continue
    return None


_RECIPIENT_WORDS = frozenset(
    {"customer", "client", "buyer", "recipient", "bill", "billing", "ship", "shipping", "to"}
)


def _anywhere(text: str, field: Field, concept: Concept) -> JsonValue:
    """Contact details are recognisable without a label."""
    name = set(re.findall(r"[a-z]+", field.name.lower()))
    if name & _RECIPIENT_WORDS:
        return None  # the first address printed is the issuer's, not the customer's
    if concept.name == "generic" and field.data_type in ("email", "url", "phone"):
        try:
            return normalise(text, field.data_type)
        except InvalidValue:
            return None
    return None


def match_fields(texts: Sequence[tuple[str, str]], fields: Sequence[Field]) -> Extraction:
    """Values for `fields` from [(document name, text)], first document that has each."""
    values: dict[str, JsonValue] = {}
    sources: dict[str, str] = {}
    for field in fields:
        values[field.name] = None
        for name, text in texts:
            value = find_value(text, field)
            if value is not None:
                values[field.name] = value
                sources[field.name] = name
                break
    return Extraction(values=values, sources=sources)


class OfflineExtractor:
    name = "offline"

    async def aclose(self) -> None:
        """Nothing to release: the OCR engine lives for the process (it is costly to load)."""

    async def extract(self, request: ExtractionRequest) -> Extraction:
        texts = []
        for document in request.documents:
            text = await document_text(document)
            texts.append((document.name, text))
        found = match_fields(texts, request.fields)
        # A labelled value not found in the text layer's own order may be in a form whose
        # labels and values were drawn apart: read those PDFs again in rows, for those
        # fields only (the layout rules keep the producer's order they were built on).
        missing = [
            f
            for f in request.fields
            if found.values[f.name] is None and concept_for(f, by_instruction=False)
        ]
        pdfs = [d for d in request.documents if d.media_type == "application/pdf"]
        if missing and pdfs:
            rows = [(d.name, await pdf_reading_order(d)) for d in pdfs]
            more = match_fields(rows, missing)
            for name, value in more.values.items():
                if value is not None:
                    found.values[name] = value
                    found.sources[name] = more.sources[name]
        return found
