"""An extractor's answer made a result, the same way for a task and for a preview.

Only the job's fields are kept, each a single value within its bounds (bounds.py); each is
read as its field's type (schema.normalise_all); every quote is checked against the
documents' own text and every value gets a calibrated confidence (trust/assess.py). An
answer that could not be used (past the bounds, or unreadable as its type) is an empty value
that asks for review and says why (bounds.to_review).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from google.protobuf import struct_pb2

from bytereview.jobs.v1 import resources_pb2
from bytereview.values.typed import JsonValue
from services.extract.base import Document, Extraction
from services.extract.bounds import bounded, to_review
from services.extract.schema import Field, normalise_all
from services.extract.trust.assess import assess, read_pages


@dataclass(frozen=True, slots=True)
class Checked:
    # The answer, only the job's fields (their values as the extractor gave them).
    extraction: Extraction
    # Each field's value in its type's canonical form; None where the answer was emptied.
    values: dict[str, JsonValue]
    assessments: dict[str, resources_pb2.ValueAssessment]
    # Field -> why the extractor's answer was set to None.
    emptied: dict[str, str]

    def struct(self) -> struct_pb2.Struct:
        out = struct_pb2.Struct()
        out.update(self.values)
        return out


async def checked(
    extraction: Extraction, fields: Sequence[Field], documents: Sequence[Document]
) -> Checked:
    """`extraction` bounded, normalised and assessed. Reading the documents may fail as
    storage does (an outage is the caller's to handle)."""
    extraction, refused = bounded(extraction, fields)
    values, problems = normalise_all(extraction.values, fields)
    pages = await read_pages(documents)
    # In a thread: on a long document it is seconds of CPU, and the event loop keeps the
    # other tasks' heartbeats, acks and reports going meanwhile.
    assessments = await asyncio.to_thread(assess, fields, values, extraction, pages)
    emptied = {**problems, **refused}
    to_review(assessments, emptied)
    return Checked(extraction, values, assessments, emptied)
