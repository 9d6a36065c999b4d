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

Before the first scan, Pillow itself walks the file in Python: every segment (an APP
segment's bytes are kept, ~30 times the file's size for empty ones) and every stray byte
between segments (one read each). Those are counted by walking the segments as Pillow
does, until the first scan or the limits; and each frame header's size is judged on the
way (core/declared_pixels.py), as the first bytes may not reach it (64 KiB of metadata
first) and Pillow takes the last one's.
"""

from __future__ import annotations

from typing import IO

from bytereview.core.byte_walk import ByteWalk
from bytereview.core.declared_pixels import pixels_problem
from bytereview.core.limits import MAX_JPEG_SCANS, MAX_JPEG_SEGMENTS, MAX_JPEG_STRAY_BYTES

__all__ = ["ScanCounter", "count_scans", "scans_problem"]

_SOS = b"\xff\xda"
# Markers without a length: restarts, start and end of image, TEM.
_BARE = frozenset({*range(0xD0, 0xDA), 0x01})
# Start-of-frame markers (those Pillow reads a size from): 0xC0-0xCF but DHT, JPG and DAC.
_FRAMES = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_CHUNK = 1024 * 1024


class ScanCounter(ByteWalk):
    """Start-of-scan markers in the bytes fed so far (a marker may straddle two chunks),
    and what Pillow walks before the first scan: segments, and stray bytes between them
    (walked as Pillow's JPEG reader walks them)."""

    def __init__(self) -> None:
        super().__init__(skip=2)  # the start-of-image marker, then each segment's body
        self.scans = 0
        self.segments = 0
        self.stray = 0
        self.too_large = ""  # why a frame header's size is not read
        self._last = b""

    def feed(self, chunk: bytes) -> None:
        if not chunk:
            return
        if self._last == b"\xff" and chunk[:1] == b"\xda":
            self.scans += 1
        self.scans += chunk.count(_SOS)
        self._last = chunk[-1:]
        self.walk(chunk)

    def _step(self, data: bytes, at: int, end: int) -> int:
        if data[at] != 0xFF:  # junk: Pillow steps over it a byte at a time
            found = data.find(b"\xff", at)
            found = end if found < 0 else found
            self.stray += found - at
            return found
        if self.wait_for(data, at, end, 2):
            return end
        if data[at + 1] in (0x00, 0xFF):  # an escaped or a padding byte, as junk
            self.stray += 1
            return at + (1 if data[at + 1] == 0xFF else 2)
        if data[at + 1] in _BARE:
            self.segments += 1
            return at + 2
        if self.wait_for(data, at, end, 4):
            return end
        if data[at + 1] in _FRAMES:
            # Marker, length, sample precision, then height and width.
            if self.wait_for(data, at, end, 9):
                return end
            height, width = data[at + 5] << 8 | data[at + 6], data[at + 7] << 8 | data[at + 8]
            self.too_large = self.too_large or pixels_problem(width, height)
        self.segments += 1
        if data[at + 1] == 0xDA:
            self.walking = False
        self.skip = max(0, (data[at + 2] << 8 | data[at + 3]) - 2) + 4
        return at

    def problem(self) -> str:
        """Why the JPEG fed is not decoded ('' if it may be)."""
        if self.too_large:
            return self.too_large
        if self.segments > MAX_JPEG_SEGMENTS:
            return (
                f"the JPEG holds more than {MAX_JPEG_SEGMENTS} segments before its image "
                "data; more are not read"
            )
        if self.stray > MAX_JPEG_STRAY_BYTES:
            return (
                f"the JPEG holds more than {MAX_JPEG_STRAY_BYTES} stray bytes between its "
                "segments; more are not read"
            )
        return scans_problem(self.scans)


def count_scans(handle: IO[bytes]) -> ScanCounter:
    """The JPEG read from `handle` (from its start to its end), counted."""
    counter = ScanCounter()
    while chunk := handle.read(_CHUNK):
        counter.feed(chunk)
    return counter


def scans_problem(scans: int) -> str:
    """Why a JPEG of `scans` scans is not decoded ('' if it may be)."""
    if scans > MAX_JPEG_SCANS:
        return (
            f"the JPEG holds {scans} scans; JPEGs of more than {MAX_JPEG_SCANS} scans are "
            "not read (decoding each costs as much as a whole image)"
        )
    return ""
