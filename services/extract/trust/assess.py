"""The platform's own check of an extraction: every cited quote is looked for in the
documents' text, and every value gets a calibrated confidence.

Runs in the extract worker after whichever extractor answered (and in the Preview RPC),
so no extractor grades itself: the offline extractor's evidence and Gemini's cited quotes
go through the same verification against the text the platform reads.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from bytereview.core.outages import object_missing
from bytereview.jobs.v1 import resources_pb2
from bytereview.values.typed import JsonValue
from services.extract.base import Document, Evidence, Extraction, ExtractionError
from services.extract.reading.pages import PageText, document_pages
from services.extract.schema import Field
from services.extract.trust.confidence import confidence, signals
from services.extract.trust.evidence import Check, occurrences, verify

log = logging.getLogger(__name__)


async def read_pages(documents: Sequence[Document]) -> dict[str, list[PageText]]:
    """Each document's pages (already read when the offline extractor ran); a document the
    platform cannot read has none, and its values stay unverified."""
    pages: dict[str, list[PageText]] = {}
    for document in documents:
        try:
            pages[document.name] = await document_pages(document)
        except ExtractionError as exc:
            log.info("cannot read %s to verify its evidence: %s", document.path, exc)
            pages[document.name] = []
        except Exception as exc:
            # Gone from storage since the extractor read it (or never read by it, as the
            # no-op bench extractor does): the values stand, unverified. Other errors (an
            # outage above all) are the caller's to handle.
            if not object_missing(exc):
                raise
            log.warning("%s is not in storage: its evidence stays unverified", document.path)
            pages[document.name] = []
    return pages


def _evidence_pb(cited: Evidence, check: Check) -> resources_pb2.Evidence:
    out = resources_pb2.Evidence(
        file=cited.document, page=check.page or max(cited.page, 0), quote=cited.quote
    )
    box = check.box if check.quote_found else None
    if box is not None:
        out.box.CopyFrom(
            resources_pb2.BoundingBox(
                left=round(box.left, 4),
                top=round(box.top, 4),
                right=round(box.right, 4),
                bottom=round(box.bottom, 4),
            )
        )
    return out


def assess(
    fields: Sequence[Field],
    values: Mapping[str, JsonValue],
    extraction: Extraction,
    pages: Mapping[str, Sequence[PageText]],
) -> dict[str, resources_pb2.ValueAssessment]:
    """Evidence (as verified), confidence and `verified` for each field's final value."""
    out: dict[str, resources_pb2.ValueAssessment] = {}
    for field in fields:
        value = values.get(field.name)
        cited = extraction.evidence.get(field.name)
        check = verify(cited, value, field, pages)
        source = extraction.sources.get(field.name) or (cited.document if cited else "")
        document_pages = pages.get(source) or [p for ps in pages.values() for p in ps]
        repeats = occurrences(value, field, document_pages)
        found = signals(field, value, extraction.methods.get(field.name, "model"), check, repeats)
        assessment = resources_pb2.ValueAssessment(
            confidence=confidence(found), verified=check.verified
        )
        if cited is not None and value is not None:
            assessment.evidence.CopyFrom(_evidence_pb(cited, check))
        out[field.name] = assessment
    return out
