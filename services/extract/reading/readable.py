"""Which files of a combined task can be read: one unreadable file must not cost the folder
its result.

A combined task (one result per folder) reads every file of the folder. Each file is read
here first, with the reader the offline extractor and the platform's evidence check use
(`services.extract.reading.pages`); a file that cannot be read (a corrupt or truncated
PDF, a page OCR gives up on, a page the PDF child refuses, an image over the pixel limit,
a file gone from storage) is left out with its reason, and the folder is extracted from
the others. The pages read are kept on the `Document`, so the extraction and the check do
not read them again. When no file can be read, the task fails as one unreadable file
always did, naming every file and why.

A file is left out whichever extractor runs: values read from a file the platform cannot
read could not be checked, and a corrupt file in a Gemini request fails the whole request.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from bytereview.core.outages import object_missing
from services.extract.base import Document, ExtractionError
from services.extract.reading.pages import document_pages

log = logging.getLogger(__name__)
# A reason is one sentence for a person; the jobs service bounds it again.
MAX_REASON = 300
# Files named in the error of a folder none of whose files can be read (5 x 300 characters
# fit the jobs service's bound on a task's error).
NAMED_IN_ERROR = 5


@dataclass(frozen=True, slots=True)
class Skipped:
    """A file left out: the document and why, in one sentence (without its path)."""

    document: Document
    reason: str


def _reason(document: Document, error: str) -> str:
    # The reader's messages start with the file's path; the path is reported beside it.
    reason = error.removeprefix(f"{document.path}:").strip() or "it cannot be read"
    return reason[:MAX_REASON]


async def readable(documents: Sequence[Document]) -> tuple[list[Document], list[Skipped]]:
    """(the documents that can be read, in order; those left out, with why).

    Only a file's own failures leave it out; an outage of storage (or any error that is not
    about the file) is raised, for the caller to retry the task."""
    ok: list[Document] = []
    skipped: list[Skipped] = []
    for document in documents:
        try:
            await document_pages(document)
        except ExtractionError as exc:
            if exc.retryable:
                raise
            skipped.append(Skipped(document, _reason(document, str(exc))))
        except Exception as exc:
            if not object_missing(exc):
                raise
            skipped.append(Skipped(document, "the file is no longer in storage"))
        else:
            ok.append(document)
    for left_out in skipped:
        log.info("%s left out of its folder's result: %s", left_out.document.path, left_out.reason)
    return ok, skipped


def none_readable(folder: str, skipped: Sequence[Skipped]) -> ExtractionError:
    """The task's failure when no file of its folder can be read: each file with why, the
    first NAMED_IN_ERROR of them (a task's error is bounded; the rest are counted)."""
    where = f"folder {folder}" if folder else "the top folder"
    each = "; ".join(f"{s.document.path}: {s.reason}" for s in skipped[:NAMED_IN_ERROR])
    if len(skipped) > NAMED_IN_ERROR:
        each += f"; and {len(skipped) - NAMED_IN_ERROR} more"
    return ExtractionError(f"no file of {where} can be read: {each}", retryable=False)
