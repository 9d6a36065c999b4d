"""What decoding a stored image would cost beyond its pixels, judged from its bytes before
any decoder sees them: a JPEG's scans (core/jpeg_scans.py), a WebP's size (core/webp_bytes.py),
the numbers a TIFF's first page lists (core/tiff_ifds.py).
For the readers of a file already stored (extraction, RenderPage); ingest judges the same
while the bytes stream past it once."""

from __future__ import annotations

from typing import IO

from bytereview.core.jpeg_scans import count_scans
from bytereview.core.tiff_ifds import page_problem
from bytereview.core.webp_bytes import webp_problem

__all__ = ["decoding_problem"]


def decoding_problem(handle: IO[bytes]) -> str:
    """Why the image read from `handle` (seekable, at its start) is not decoded, or ''.
    Leaves the handle at its start."""
    head = handle.read(12)
    problem = ""
    if head.startswith(b"\xff\xd8\xff"):
        handle.seek(0)
        problem = count_scans(handle).problem()
    elif head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        problem = webp_problem(handle.seek(0, 2))
    elif head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        handle.seek(0)
        problem = page_problem(handle)  # the first page: the one extraction reads
    handle.seek(0)
    return problem
