"""What decoding an image would cost beyond its pixels, judged from its bytes before any
decoder sees them: a JPEG's scans and segments (core/jpeg_scans.py), a PNG's chunks, a
GIF's blocks before its image, a BMP's header size and a WebP's chunks
(core/image_chunks.py), a WebP's size (core/webp_bytes.py), the numbers a TIFF's first page
lists (core/tiff_ifds.py). `Streamed` judges the first five as the bytes stream past once
(ingest); `decoding_problem` judges a stored file (extraction, RenderPage)."""

from __future__ import annotations

from typing import IO

from bytereview.core.image_chunks import BmpHeader, GifHead, PngChunks, WebpChunks
from bytereview.core.jpeg_scans import ScanCounter
from bytereview.core.tiff_ifds import page_problem
from bytereview.core.webp_bytes import webp_problem

__all__ = ["Streamed", "decoding_problem"]

_CHUNK = 1024 * 1024


class Streamed:
    """A JPEG, PNG, GIF, BMP or WebP judged as its bytes are fed (any other: never a
    problem; a WebP's size is judged apart: webp_bytes.py)."""

    def __init__(self) -> None:
        self._head = b""
        self._walker: ScanCounter | PngChunks | GifHead | BmpHeader | WebpChunks | None = None

    def feed(self, chunk: bytes) -> None:
        if self._walker is None and len(self._head) < 12:
            self._head += chunk
            if len(self._head) < 12:
                return
            chunk, self._head = self._head, self._head[:12]
            if chunk.startswith(b"\xff\xd8\xff"):
                self._walker = ScanCounter()
            elif chunk.startswith(b"\x89PNG\r\n\x1a\n"):
                self._walker = PngChunks()
            elif chunk.startswith((b"GIF87a", b"GIF89a")):
                self._walker = GifHead()
            elif chunk.startswith(b"BM"):
                self._walker = BmpHeader()
            elif chunk[:4] == b"RIFF" and chunk[8:12] == b"WEBP":
                self._walker = WebpChunks()
        if self._walker is not None:
            self._walker.feed(chunk)

    def problem(self) -> str:
        return "" if self._walker is None else self._walker.problem()


def decoding_problem(handle: IO[bytes]) -> str:
    """Why the image read from `handle` (seekable, at its start) is not decoded, or ''.
    Leaves the handle at its start."""
    head = handle.read(12)
    webp = head[:4] == b"RIFF" and head[8:12] == b"WEBP"
    problem = ""
    if webp:
        problem = webp_problem(handle.seek(0, 2))  # first: it bounds the walk below
    if not problem and (
        webp
        or head.startswith((b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a", b"BM"))
    ):
        handle.seek(0)
        streamed = Streamed()
        while chunk := handle.read(_CHUNK):
            streamed.feed(chunk)
        problem = streamed.problem()
    elif head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        handle.seek(0)
        problem = page_problem(handle)  # the first page: the one extraction reads
    handle.seek(0)
    return problem
