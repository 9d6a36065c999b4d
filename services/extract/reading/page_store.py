"""The pages OCR read from a stored file, kept beside it in the job's storage.

OCR is most of what reading a scan or a photo costs (~3 CPU-s a receipt here, and as much
again rendering a scanned PDF page), and a file is read again on every re-run, every
preview and every scoring of a template version: the bytes under a file's key never change
(signed uploads are create-only, an archive's entries are rewritten identical), so the
first reading serves the rest. Readings of text-layer pages are not kept: pdfium reads them
in milliseconds, and a stored object per task would cost more than it saves.

A reading is keyed by the file's key and READING_VERSION, and lives under the job's prefix,
so it goes with the job (deletion, retention). One that cannot be read back (missing,
malformed, from another version) is read again from the file; failing to store one only
costs the next task the OCR.
"""

from __future__ import annotations

import asyncio
import gzip
import io
import json
import logging
import math
from typing import Any

from bytereview.core import Storage, storage_keys
from services.extract.base import Box
from services.extract.reading.pages import PageText

log = logging.getLogger(__name__)

# Bump when what a page reads as changes (OCR engine, settings, line joining): readings of
# an older version are then ignored (and deleted with their job). 2: word spaces put back
# (reading/spacing.py).
READING_VERSION = 2
# A reading larger than this (stored, or once unpacked) is not read back: a page of a few
# thousand characters takes ~150 KB of JSON; reading.MAX_PAGES pages stay far below it.
MAX_READING_BYTES = 64 * 1024 * 1024


def dump(pages: list[PageText]) -> bytes:
    """Gzipped JSON: exact floats (a later task reads what the first one read, to the bit),
    and a box repeated for every character of its text run costs next to nothing."""

    def box(b: Box | None) -> list[float] | None:
        return None if b is None else [b.left, b.top, b.right, b.bottom]

    text = json.dumps(
        {
            "version": READING_VERSION,
            "pages": [
                {
                    "number": p.number,
                    "text": p.text,
                    "boxes": [box(b) for b in p.boxes],
                    "scores": list(p.scores),
                }
                for p in pages
            ],
        },
        separators=(",", ":"),
    )
    return gzip.compress(text.encode(), compresslevel=6, mtime=0)


def load(data: bytes) -> list[PageText] | None:
    """The pages of a stored reading, or None when it is not one of this version's."""
    try:
        doc = json.loads(_gunzip(data))
        if doc["version"] != READING_VERSION:
            return None
        return [_page(p) for p in doc["pages"]]
    except (ValueError, TypeError, KeyError, OSError, EOFError):
        return None


def _gunzip(data: bytes) -> bytes:
    """At most MAX_READING_BYTES of JSON, whatever the compressed size claims."""
    with gzip.GzipFile(fileobj=io.BytesIO(data)) as unpacked:
        text = unpacked.read(MAX_READING_BYTES + 1)
    if len(text) > MAX_READING_BYTES:
        raise ValueError("reading too large")
    return text


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError("not a number")
    return float(value)


def _page(page: Any) -> PageText:
    number, text = page["number"], page["text"]
    if not isinstance(number, int) or number < 1 or not isinstance(text, str):
        raise ValueError("not a page")
    boxes = tuple(None if b is None else Box(*(_number(v) for v in b)) for b in page["boxes"])
    scores = tuple(None if s is None else _number(s) for s in page["scores"])
    if len(boxes) != len(text) or len(scores) not in (0, len(text)):
        raise ValueError("boxes or scores do not match the text")
    return PageText(number, text, boxes, scores)


class StoredReadings:
    """The `PageStore` of one stored file."""

    def __init__(self, storage: Storage, key: str) -> None:
        self._storage = storage
        self._key = key

    @classmethod
    def of(cls, storage: Storage, file_key: str) -> StoredReadings | None:
        key = storage_keys.reading_key(file_key, READING_VERSION)
        return None if key is None else cls(storage, key)

    async def load(self) -> list[Any] | None:
        try:
            data = await asyncio.to_thread(self._read)
        except Exception:  # storage unreachable: the file's own read will say so
            log.warning("reading %s not loaded", self._key, exc_info=True)
            return None
        return None if data is None else load(data)

    def _read(self) -> bytes | None:
        # Asked first: a missing object is the usual case (the first task over a file), and
        # each backend says so differently when opened.
        size = self._storage.size(self._key)
        if size is None or size > MAX_READING_BYTES:
            return None
        with self._storage.open_read(self._key) as handle:
            data: bytes = handle.read(MAX_READING_BYTES + 1)
        return data

    async def save(self, pages: list[Any]) -> None:
        if not any(p.scores for p in pages):
            return  # text layers only (or nothing OCR could read): cheap to read again
        try:
            await asyncio.to_thread(self._write, dump(pages))
        except Exception:  # a later task only pays the OCR again
            log.warning("reading %s not stored", self._key, exc_info=True)

    def _write(self, data: bytes) -> None:
        with self._storage.open_write(self._key, "application/gzip") as handle:
            handle.write(data)
