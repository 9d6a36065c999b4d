"""Analysis of one stored file: size, sha256, sniffed type, page count, image size."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from bytereview.core import Storage
from bytereview.core.image_costs import Streamed
from bytereview.core.pdf_process import (
    PdfBounds,
    PdfProcess,
    PdfTooCostly,
    PdfUnreadable,
    SpoolFull,
)
from bytereview.core.tiff_ifds import page_problem
from bytereview.core.webp_bytes import webp_problem
from services.ingest.budget import UnpackLimits
from services.ingest.packages import document_type
from services.ingest.sniff import (
    SNIFF_BYTES,
    TIFF,
    UNKNOWN,
    WEBP,
    ZIP,
    Sniffed,
    image_problem,
    sniff,
    unsupported_reason,
    zip_at_end,
)

READ_CHUNK = 1024 * 1024
# Time and memory opening a PDF may take (core/pdf_process.py).
PDF_BOUNDS = PdfBounds()


@dataclass(frozen=True, slots=True)
class Analysis:
    """What analysis found. `status` uses SourceFile.Status names."""

    status: str
    media_type: str
    size_bytes: int
    sha256: str
    page_count: int = 0
    width: int = 0
    height: int = 0
    error: str = ""
    archive: bool = False


def digest(storage: Storage, key: str, judged: Streamed | None = None) -> tuple[int, str, bytes]:
    """(size, sha256, first bytes) of an object, streamed in chunks; `judged` walks it on
    the way (a JPEG's scans, a PNG's chunks: core/image_costs.py), in the same read."""
    hasher = hashlib.sha256()
    size = 0
    head = b""
    with storage.open_read(key) as handle:
        while chunk := handle.read(READ_CHUNK):
            if len(head) < SNIFF_BYTES:
                head += chunk[: SNIFF_BYTES - len(head)]
            hasher.update(chunk)
            if judged is not None:
                judged.feed(chunk)
            size += len(chunk)
    return size, hasher.hexdigest(), head


def pdf_page_count(storage: Storage, key: str) -> int:
    """Pages of a PDF; raises ValueError with a readable reason if it cannot be opened.

    Opened in a PDF child process (core/pdf_process.py), as every page is read: opening
    parses the page tree whole, ~25 times the file's size in memory for a tree of millions
    of references to one page (17 MB of PDF took 454 MB), and a crash of pdfium on a
    hostile file must not take the worker down with it."""
    with storage.open_read(key) as handle:
        try:
            with PdfProcess(handle, bounds=PDF_BOUNDS) as pdf:
                return pdf.page_count
        except PdfUnreadable as exc:
            reason = str(exc).lower()
            if "password" in reason:
                raise ValueError("the PDF is password-protected") from exc
            raise ValueError(f"the PDF is damaged and cannot be read ({exc})") from exc
        except PdfTooCostly as exc:
            raise ValueError(f"the PDF cannot be read within ByteReview's limits: {exc}") from exc
        except SpoolFull as exc:
            # Larger than the worker's temporary disk: the file's verdict. Otherwise the disk
            # is full of other copies for a while, an outage the worker waits out.
            if exc.never_fits:
                raise ValueError(str(exc)) from exc
            raise


def stored_tiff_problem(storage: Storage, key: str) -> str:
    """Why the stored TIFF's first page would cost too much to open (core/tiff_ifds.py)."""
    with storage.open_read(key) as handle:
        return page_problem(handle)


def stored_zip(storage: Storage, key: str) -> bool:
    with storage.open_read(key) as handle:
        return zip_at_end(handle)


def stored_document(storage: Storage, key: str, limits: UnpackLimits) -> str:
    """The document type of a stored ZIP by its directory (services/ingest/packages.py)."""
    with storage.open_read(key) as handle:
        return document_type(handle, limits)


def resolved(storage: Storage, key: str, found: Sniffed, limits: UnpackLimits) -> Sniffed:
    """What the stored file is, from what its first bytes say (`found`) and what its end
    says: a ZIP with a stub before it (self-extracting), and a ZIP that is a document
    package (Office, XPS, OpenDocument, EPUB, ...) by its directory (decided before anything
    is unpacked from it)."""
    if found.media_type == UNKNOWN and stored_zip(storage, key):
        found = Sniffed(ZIP)
    if found.archive and (document := stored_document(storage, key, limits)):
        found = Sniffed(document)
    return found


def analyse(storage: Storage, key: str, limits: UnpackLimits | None = None) -> Analysis:
    """What the stored file is and whether it can be used. `limits` bound the reading of a
    ZIP's directory (the unpacker's own, so that what is read here is what it would read)."""
    judged = Streamed()
    size, sha, head = digest(storage, key, judged)
    if size == 0:
        return Analysis("FAILED", "", 0, sha, error="the file is empty")
    found = resolved(storage, key, sniff(head), limits or UnpackLimits())
    media = found.media_type
    if found.archive:
        return Analysis("ANALYZING", media, size, sha, archive=True)
    if not found.extractable:
        return Analysis(
            "UNSUPPORTED",
            media,
            size,
            sha,
            error=unsupported_reason(found),
        )
    if media == "application/pdf":
        try:
            pages = pdf_page_count(storage, key)
        except ValueError as exc:
            return Analysis("FAILED", media, size, sha, error=str(exc))
        if pages == 0:
            return Analysis("FAILED", media, size, sha, error="the PDF has no pages")
        return Analysis("READY", media, size, sha, page_count=pages)
    if problem := image_problem(found):
        return Analysis("FAILED", media, size, sha, error=problem)
    if problem := judged.problem():
        return Analysis("FAILED", media, size, sha, error=problem)
    if media == WEBP and (problem := webp_problem(size)):
        return Analysis("FAILED", media, size, sha, error=problem)
    if media == TIFF and (problem := stored_tiff_problem(storage, key)):
        return Analysis("FAILED", media, size, sha, error=problem)
    return Analysis("READY", media, size, sha, page_count=1, width=found.width, height=found.height)
