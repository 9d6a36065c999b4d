"""The offline extractor: the PDF text layer (OCR for images when available) + field matching.

No network and no model download: text comes from the PDF text layer (pypdfium2);
images and scanned pages are read by rapidocr-onnxruntime, whose model ships in its wheel.
Values are found by looking for each field's label (from its name and
instruction) and reading what follows, then parsed by the field's data type.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from bytereview.values.dates import day_first_in
from bytereview.values.typed import InvalidValue, JsonValue, normalise
from services.extract.base import Extraction, ExtractionRequest
from services.extract.offline.labels import (
    Concept,
    anywhere,
    concept_for,
    generic_concept,
    labelled_value,
)
from services.extract.offline.layout import by_layout, is_layout_field
from services.extract.reading.pages import document_pages, joined, pdf_reading_order
from services.extract.schema import Field
from services.extract.trust.evidence import locate

# The matchers' regular expressions cost more than linear time in a line's length on some
# lines (16,000 spaces took 5.7 CPU-seconds, "(" and 16,000 digits 3.5: quadratic), and a
# page's text layer may hold 100,000 characters on one line (core/limits.py), from a PDF of
# a few KiB. Lines are matched in pieces of at most MAX_LINE characters, cut at a space where
# there is one: an invoice's lines are far shorter, so its values are found as before.
MAX_LINE = 500


def bounded_lines(text: str) -> str:
    """`text` with every line longer than MAX_LINE cut into lines of at most MAX_LINE."""
    if all(len(line) <= MAX_LINE for line in text.splitlines()):
        return text
    out: list[str] = []
    for line in text.splitlines():
        start = 0
        while len(line) - start > MAX_LINE:
            cut = line.rfind(" ", start + MAX_LINE // 2, start + MAX_LINE)
            end = cut if cut > 0 else start + MAX_LINE
            out.append(line[start:end])
            start = end
        out.append(line[start:])
    return "\n".join(out)


def find_value(text: str, field: Field) -> JsonValue:
    """The value in `text`, or None (see `find_value_how`)."""
    return find_value_how(text, field)[0]


def find_value_how(text: str, field: Field) -> tuple[JsonValue, str]:
    """The value in `text`, or None, and which rule decided (a confidence signal):
    `layout`, `label`, `first_date` or `anywhere`.

    A field whose name names a labelled value (invoice number, VAT, due date, IBAN...)
    is read next to its label; the seller, their address and the total are found by
    layout; any other field by its own name as a label. A value that is not where its
    label says stays None rather than borrowing a neighbour's.
    """
    text = bounded_lines(text)
    if field.data_type == "date":
        # Read in the order the document writes its dates, then given as ISO 8601.
        day_first = day_first_in(text)
        ordered = Field(field.name, "date_dmy" if day_first else "date_mdy", field.instruction)
        found, how = find_value_how(text, ordered)
        return normalise(found, "date", day_first=day_first), how
    lines = [line for line in (raw.strip() for raw in text.splitlines()) if line]
    concept = concept_for(field, by_instruction=False)
    if concept is None:
        found = by_layout(text, field)
        if found is not None or is_layout_field(field):
            return found, "layout"
        concept = concept_for(field)
    if concept is None:
        concept = generic_concept(field)
    value = labelled_value(lines, field, concept)
    if value is not None:
        return value, "label"
    if concept.name == "invoice_date":
        return first_date(lines, field), "first_date"
    return anywhere(text, field, concept) or _anywhere(text, field, concept), "anywhere"


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
    methods: dict[str, str] = {}
    for field in fields:
        values[field.name] = None
        for name, text in texts:
            value, method = find_value_how(text, field)
            if value is not None:
                values[field.name] = value
                sources[field.name] = name
                methods[field.name] = method
                break
    return Extraction(values=values, sources=sources, methods=methods)


class OfflineExtractor:
    name = "offline"

    async def aclose(self) -> None:
        """Nothing to release: the OCR engine lives for the process (it is costly to load)."""

    async def extract(self, request: ExtractionRequest) -> Extraction:
        pages = {}
        for document in request.documents:
            pages[document.name] = await document_pages(document)
        found = match_fields([(name, joined(p)) for name, p in pages.items()], request.fields)
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
        # Evidence: where each value is printed, read back from the pages it was found in.
        for field in request.fields:
            value, source = found.values[field.name], found.sources.get(field.name)
            if value is not None and source is not None:
                cited = locate(value, field, source, pages[source])
                if cited is not None:
                    found.evidence[field.name] = cited
        return found
