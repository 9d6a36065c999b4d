"""Decoded images a process holds at once, bounded by their pixels.

An image file is decoded whole before it is read or drawn. An extract worker runs several
tasks at once (eight by default), each in a thread of its own, and the OCR engine takes one
page at a time, so decoded images wait for it in memory; the ingest service draws pages for
the web app's viewer (RenderPage) in threads too, as many as are asked at once, and a PNG
is decoded at full size even to draw a thumbnail. A 50 Mpx scan (MAX_IMAGE_PIXELS, the
largest read at all) costs 350-500 MB decoded and converted: two or three at once took more
than a pod has (1 GiB), and the pod went down with everyone's work in it. So an image's
pixels are taken from the process's budget before it is decoded and given back once done
with: many small images (receipts, 1-3 Mpx) side by side, large ones one after another. One
image larger than the whole budget still goes, alone.

PDF pages need none of this: at most PDF_PROCESSES documents are open at once per process
(core/pdf_process.py), each drawing one page of bounded pixels at a time.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

from bytereview.core.limits import DECODED_IMAGE_PIXELS

__all__ = ["DECODED", "PixelBudget"]


class PixelBudget:
    """A number of pixels threads take for a while and give back (blocking while short)."""

    def __init__(self, pixels: int) -> None:
        if pixels < 1:
            raise ValueError("a pixel budget needs at least one pixel")
        self.total = pixels
        self._used = 0
        self._waiting = 0
        self._changed = threading.Condition()

    @property
    def waiting(self) -> int:
        """Threads waiting for pixels now."""
        with self._changed:
            return self._waiting

    @contextlib.contextmanager
    def held(self, pixels: int) -> Iterator[None]:
        """`pixels` of the budget, waited for, for the block (more than the whole budget
        waits for all of it: one image over the budget is read alone, never refused)."""
        taken = max(0, min(pixels, self.total))
        with self._changed:
            self._waiting += 1
            try:
                self._changed.wait_for(lambda: self._used + taken <= self.total)
            finally:
                self._waiting -= 1
            self._used += taken
        try:
            yield
        finally:
            with self._changed:
                self._used -= taken
                self._changed.notify_all()


# The process's budget: what its image files decode into at once.
DECODED = PixelBudget(DECODED_IMAGE_PIXELS)
