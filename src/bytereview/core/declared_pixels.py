"""Whether an image's declared size is one ByteReview decodes, wherever it is declared.

Decoding is what costs (a PNG of 100,000 x 100,000 pixels is a few KiB and 30 GB decoded),
so the size a file declares is judged before any decoder sees it: the first bytes' header
(services/ingest/sniff.py), and every header further in that a decoder takes its size
from (core/image_chunks.py: a PNG's IHDR after other chunks, a GIF's first frame larger
than its screen).
"""

from __future__ import annotations

from bytereview.core.limits import MAX_IMAGE_PIXELS

__all__ = ["pixels_problem"]


def pixels_problem(width: int, height: int) -> str:
    """Why an image of `width` x `height` pixels is not read ('' if it may be)."""
    # One side alone past the bound is refused too, whatever the other: a PNG declaring
    # 2**31 x 0 has no pixels to count, and its width does not fit the report's int32.
    if width * height > MAX_IMAGE_PIXELS or max(width, height) > MAX_IMAGE_PIXELS:
        return (
            f"the image is {width} x {height} pixels; images of more than "
            f"{MAX_IMAGE_PIXELS} pixels are not read"
        )
    return ""
