"""Prometheus metrics of the ingest workers."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

FILES = Counter("bytereview_ingest_files_total", "Files analysed, by resulting status", ["status"])
ARCHIVES = Counter(
    "bytereview_ingest_archives_total", "Archives processed, by outcome", ["outcome"]
)
ENTRIES = Counter("bytereview_ingest_entries_total", "Archive entries unpacked")
BYTES = Counter("bytereview_ingest_bytes_total", "Bytes written while unpacking")
REJECTS = Counter(
    "bytereview_ingest_rejects_total", "Archives or entries refused, by reason", ["reason"]
)
# Pages drawn for viewing (RenderPage): a PDF's in a pdfium child, an image's by Pillow.
PAGE_DRAWS = Counter(
    "bytereview_ingest_page_draws_total", "Pages drawn for RenderPage, by kind", ["kind"]
)
UNPACK_SECONDS = Histogram(
    "bytereview_ingest_unpack_seconds",
    "Time to unpack one archive",
    buckets=(0.1, 0.5, 1, 5, 10, 30, 60, 120, 300, 600, 1800),
)


def reject_reason(error: str) -> str:
    """A short, bounded label for a refusal message."""
    for needle, label in (
        ("zip bomb", "bomb"),
        ("inflates beyond", "too_large"),
        ("limit is", "too_many_entries"),
        ("outside the archive", "traversal"),
        ("absolute path", "traversal"),
        ("backslashes", "traversal"),
        ("symbolic link", "symlink"),
        ("overlap", "overlap"),
        ("damaged or truncated", "corrupt"),
        ("nested deeper", "depth"),
        ("encrypted", "encrypted"),
        ("same name", "duplicate"),
    ):
        if needle in error:
            return label
    return "other"
