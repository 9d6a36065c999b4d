"""A walk over a file's structure as its bytes stream past, chunk by chunk.

The image checks (core/image_chunks.py, core/jpeg_scans.py) follow a file's chunks,
segments or blocks the way its decoder would, without holding the file: each step reads a
header and says how many bytes follow it (skipped, possibly across many chunks), and a
header cut by a chunk's end waits for the next chunk. The walk ends at the structure's end
or as soon as the file is judged (`problem`), so it costs no more than its limits.
"""

from __future__ import annotations

__all__ = ["ByteWalk"]


class ByteWalk:
    """Subclasses read one header at `at` in `_step` (returning where the next one starts,
    setting `skip` for the bytes after it, `walking` False at the end), count the bytes
    skipped in `_skipped`, and judge what was counted in `problem`."""

    def __init__(self, skip: int = 0) -> None:
        self.walking = True
        self.skip = skip  # bytes still to pass over before the next header
        self._pending = b""  # a header cut by the last chunk's end

    def walk(self, chunk: bytes) -> None:
        if not self.walking:
            return
        data = self._pending + chunk if self._pending else chunk
        self._pending = b""
        at, end = 0, len(data)
        while at < end and self.walking:
            if self.skip:
                step = min(self.skip, end - at)
                at += step
                self.skip -= step
                self._skipped(step)
            else:
                at = self._step(data, at, end)
            if self.problem():
                self.walking = False  # judged already: nothing more to count

    def wait_for(self, data: bytes, at: int, end: int, size: int) -> bool:
        """Whether the header of `size` bytes at `at` is cut by the chunk's end; if so it
        is kept for the next chunk (the step then returns `end`)."""
        if at + size <= end:
            return False
        self._pending = data[at:]
        return True

    def _step(self, data: bytes, at: int, end: int) -> int:
        raise NotImplementedError

    def _skipped(self, count: int) -> None:
        """`count` bytes were passed over (after the header read last)."""

    def problem(self) -> str:
        """Why the file is not decoded ('' if it may be, as far as walked)."""
        return ""
