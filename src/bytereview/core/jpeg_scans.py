"""How many scans a JPEG holds, counted as its bytes stream by, before anything decodes it.

libjpeg decodes every scan of a progressive JPEG over the whole image, whatever little the
scan adds: ~100 bytes of scan that refine nothing cost ~4 ms at 50 Mpx, so a small file of
thousands of them takes minutes of CPU in the worker that decodes it (Pillow has no bound,
libjpeg's `-maxscans` is djpeg's alone). The cost is in the count, so the count is judged.

Counted as the two bytes of the start-of-scan marker (0xFF 0xDA) wherever they occur: in
the compressed data an 0xFF byte is always followed by 0x00 or a restart marker, so every
scan libjpeg would decode is counted; the bytes may occur by chance in a metadata segment
(an EXIF thumbnail has scans of its own), which only ever counts more, never fewer, and a
few more do not matter against the limit. Plain `bytes.count`, not a marker parser, so a
2 GiB file is counted at memory speed and no crafted segment can hide a scan from it.
"""

from __future__ import annotations

from typing import IO

from bytereview.core.limits import MAX_JPEG_SCANS

__all__ = ["ScanCounter", "count_scans", "scans_problem"]

_SOS = b"\xff\xda"
_CHUNK = 1024 * 1024


class ScanCounter:
    """Start-of-scan markers in the bytes fed so far (a marker may straddle two chunks)."""

    def __init__(self) -> None:
        self.scans = 0
        self._last = b""

    def feed(self, chunk: bytes) -> None:
        if not chunk:
            return
        if self._last == b"\xff" and chunk[:1] == b"\xda":
            self.scans += 1
        self.scans += chunk.count(_SOS)
        self._last = chunk[-1:]


def count_scans(handle: IO[bytes]) -> int:
    """The scans of the JPEG read from `handle` (from where it stands to its end)."""
    counter = ScanCounter()
    while chunk := handle.read(_CHUNK):
        counter.feed(chunk)
    return counter.scans


def scans_problem(scans: int) -> str:
    """Why a JPEG of `scans` scans is not decoded ('' if it may be)."""
    if scans > MAX_JPEG_SCANS:
        return (
            f"the JPEG holds {scans} scans; JPEGs of more than {MAX_JPEG_SCANS} scans are "
            "not read (decoding each costs as much as a whole image)"
        )
    return ""
