"""The offline extractor: the PDF text layer (OCR for images when available) + field matching.

No network and no model download: text comes from pypdfium2, or from
rapidocr-onnxruntime (which ships its model in the wheel) when installed.
Values are found by looking for each field's label (from its name and
instruction) and reading what follows, then parsed by the field's data type.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence

from bytereview.services.extract.base import (
    Document,
    Extraction,
    ExtractionError,
    ExtractionRequest,
)
from bytereview.services.extract.schema import Field, InvalidValue, JsonValue, normalise

MAX_PAGES = 50
_STOP = frozenset(
    {
        "the",
        "a",
        "an",
        "of",
        "on",
        "in",
        "for",
        "to",
        "and",
        "or",
        "is",
        "as",
        "from",
        "this",
        "that",
        "value",
        "field",
        "document",
        "extract",
        "find",
        "get",
        "give",
        "written",
        "shown",
    }
)
_TYPE_HINTS = {
    "currency": ("total", "amount", "sum", "due"),
    "date_ymd": ("date",),
    "date_dmy": ("date",),
    "date_mdy": ("date",),
    "email": ("email", "e-mail"),
    "phone": ("phone", "tel", "telephone"),
}


def pdf_text(document: Document) -> str:
    import pypdfium2 as pdfium

    with document.open() as handle:
        try:
            pdf = pdfium.PdfDocument(handle)
        except pdfium.PdfiumError as exc:
            raise ExtractionError(
                f"{document.path}: cannot read the PDF ({exc})", retryable=False
            ) from exc
        try:
            pages = []
            for index in range(min(len(pdf), MAX_PAGES)):
                page = pdf[index]
                textpage = page.get_textpage()
                pages.append(textpage.get_text_range())
                textpage.close()
                page.close()
            return "\n".join(pages)
        finally:
            pdf.close()


def image_text(document: Document) -> str:
    try:
        from rapidocr_onnxruntime import RapidOCR  # type: ignore[import-not-found]
    except ImportError as exc:
        raise ExtractionError(
            f"{document.path}: reading images offline needs OCR; install the 'ocr' extra "
            "(pip install 'bytereview[ocr]') or configure Gemini",
            retryable=False,
        ) from exc
    with document.open() as handle:
        data = handle.read()
    result, _ = RapidOCR()(data)
    return "\n".join(str(item[1]) for item in result or [])


def document_text(document: Document) -> str:
    if document.media_type == "application/pdf":
        return pdf_text(document)
    if document.media_type.startswith("image/"):
        return image_text(document)
    raise ExtractionError(f"{document.path}: cannot read {document.media_type}", retryable=False)


def labels_for(field: Field) -> list[str]:
    """Phrases that may label the field in a document, most specific first."""
    name_words = [w for w in re.split(r"[_\W]+", field.name.lower()) if w]
    labels = [" ".join(name_words)]
    words = [w for w in re.findall(r"[a-z]+", field.instruction.lower()) if w not in _STOP]
    if len(words) >= 2:
        labels.append(" ".join(words[:3]))
        labels.append(" ".join(words[:2]))
    labels.extend(w for w in name_words if len(w) > 2 and w not in _STOP)
    labels.extend(_TYPE_HINTS.get(field.data_type, ()))
    # dict keeps the first occurrence of each label, in order.
    return list(dict.fromkeys(x for x in labels if x))


def _label_regex(label: str) -> re.Pattern[str]:
    words = [re.escape(w) for w in label.split()]
    return re.compile(
        r"(?i)\b" + r"[\s._-]*".join(words) + r"\b\.?\s*(?:no\.?|#|number)?\s*[:#]?\s*"
    )


def find_value(text: str, field: Field) -> JsonValue:
    """The field's value in `text`, or None."""
    lines = [line.strip() for line in text.splitlines()]
    for label in labels_for(field):
        pattern = _label_regex(label)
        for i, line in enumerate(lines):
            match = pattern.search(line)
            if match is None:
                continue
            candidates = [line[match.end() :].strip(" :#-\t")]
            candidates += [ln for ln in lines[i + 1 : i + 3] if ln]
            for candidate in candidates:
                if not candidate:
                    continue
                try:
                    value = normalise(candidate, field.data_type)
                except InvalidValue:
                    continue
                if value is not None:
                    return value
    return _anywhere(text, field)


def _anywhere(text: str, field: Field) -> JsonValue:
    """Types that are recognisable without a label."""
    if field.data_type in ("email", "url", "date_ymd", "date_dmy", "date_mdy", "phone"):
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

    async def extract(self, request: ExtractionRequest) -> Extraction:
        texts = []
        for document in request.documents:
            text = await asyncio.to_thread(document_text, document)
            texts.append((document.name, text))
        return match_fields(texts, request.fields)
