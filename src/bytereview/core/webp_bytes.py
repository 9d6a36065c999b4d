"""WebP files are decoded from memory whole: their size is what is judged.

Pillow's WebP reader reads the whole file into memory (and libwebp's decoder copies it)
before it looks at a frame, whatever the canvas: a 10 x 10 image padded with a chunk it
skips costs twice the file's size in the worker that opens it. The other formats ByteReview
reads are decoded as they are read (a TIFF through libtiff from a file on disk).
"""

from __future__ import annotations

from bytereview.core.limits import MAX_WEBP_BYTES

__all__ = ["webp_problem"]


def webp_problem(size: int) -> str:
    """Why a WebP file of `size` bytes is not decoded ('' if it may be)."""
    if size > MAX_WEBP_BYTES:
        return (
            f"the WebP file is {size} bytes; WebP files of more than {MAX_WEBP_BYTES} bytes "
            "are not read (they are decoded from memory whole): convert it to PNG or JPEG"
        )
    return ""
