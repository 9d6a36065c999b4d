"""PNG chunks, a GIF's blocks before its image and a WebP's chunks, walked as the bytes
stream past.

Pillow walks both in Python, reading each chunk or block whole and keeping some (a PNG's
private chunks, a GIF's comments): their count and size follow the file's, not its pixels,
and an upload may be 2 GiB. Walked here with the same steps and judged before Pillow opens
the file; the walks stop at the limits, so they cost no more than that.

The walks also read the size Pillow will give the image where it is not in the file's first
bytes: Pillow reads a PNG's chunks in any order up to its image data (an IHDR after another
chunk sets the size), and a GIF's first frame may reach past its logical screen (Pillow
enlarges the image to hold it). Judged by the first bytes alone, such a file declared 1 x 1
and was ready, for every reader to fail it later with a decoder's message.
"""

from __future__ import annotations

import struct

from bytereview.core.byte_walk import ByteWalk
from bytereview.core.declared_pixels import pixels_problem
from bytereview.core.limits import (
    MAX_GIF_HEAD_BYTES,
    MAX_PNG_CHUNKS,
    MAX_PNG_OTHER_BYTES,
    MAX_PNG_OTHER_CHUNKS,
    MAX_WEBP_CHUNKS,
)

__all__ = ["BmpHeader", "GifHead", "PngChunks", "WebpChunks"]

_IMAGE_DATA = frozenset({b"IDAT", b"fdAT"})


class PngChunks(ByteWalk):
    """Chunks of a PNG fed chunk by chunk of bytes: how many, and the bytes of those not
    image data (the pixels' are inflated in bounded pieces, and bounded by the pixels)."""

    def __init__(self) -> None:
        super().__init__(skip=8)  # the signature
        self.chunks = 0
        self.other_chunks = 0
        self.other_bytes = 0
        self._other = False  # whether the bytes skipped are another chunk's
        self.too_large = ""  # why an IHDR's size is not read (Pillow takes the last one's)

    def feed(self, chunk: bytes) -> None:
        self.walk(chunk)

    def _skipped(self, count: int) -> None:
        if self._other:  # the bytes there are, not the length a chunk claims
            self.other_bytes += count

    def _step(self, data: bytes, at: int, end: int) -> int:
        if self.wait_for(data, at, end, 8):
            return end
        length, kind = struct.unpack_from(">I4s", data, at)
        if not kind.isalpha():  # not a chunk: Pillow stops reading there too
            self.walking = False
            return at
        if kind == b"IHDR":
            if self.wait_for(data, at, end, 16):
                return end
            self.too_large = pixels_problem(*struct.unpack_from(">II", data, at + 8))
        self.chunks += 1
        self._other = kind not in _IMAGE_DATA
        self.other_chunks += self._other
        self.skip = 8 + length + 4  # length and type, data, CRC
        if kind == b"IEND":
            self.walking = False
        return at

    def problem(self) -> str:
        if self.too_large:
            return self.too_large
        if self.chunks > MAX_PNG_CHUNKS:
            return f"the PNG holds more than {MAX_PNG_CHUNKS} chunks; more are not read"
        if self.other_chunks > MAX_PNG_OTHER_CHUNKS:
            return (
                f"the PNG holds more than {MAX_PNG_OTHER_CHUNKS} chunks other than its image "
                "(metadata, private data); more are not read"
            )
        if self.other_bytes > MAX_PNG_OTHER_BYTES:
            return (
                f"the PNG holds more than {MAX_PNG_OTHER_BYTES} bytes of chunks other than "
                "its image (metadata, private data); more are not read"
            )
        return ""


class GifHead(ByteWalk):
    """The bytes of a GIF before its first image descriptor (header, colour table,
    extension blocks), fed chunk by chunk of bytes."""

    def __init__(self) -> None:
        super().__init__()
        self.head_bytes = 0
        self._state = "screen"  # then "block" (a label), "sub" (extension sub-blocks)
        self._screen = (0, 0)
        self.too_large = ""  # why the first frame's extent is not read

    def feed(self, chunk: bytes) -> None:
        self.walk(chunk)

    def _skipped(self, count: int) -> None:
        self.head_bytes += count

    def _step(self, data: bytes, at: int, end: int) -> int:
        if self._state == "screen":
            if self.wait_for(data, at, end, 13):
                return end
            self._screen = struct.unpack_from("<HH", data, at + 6)
            flags = data[at + 10]
            table = 3 * 2 ** ((flags & 7) + 1) if flags & 0x80 else 0
            self.skip = 13 + table
            self._state = "block"
        elif self._state == "block":
            if data[at] == 0x2C:  # the first image: Pillow's size holds its extent
                if self.wait_for(data, at, end, 9):
                    return end
                left, top, width, height = struct.unpack_from("<HHHH", data, at + 1)
                self.too_large = pixels_problem(
                    max(self._screen[0], left + width), max(self._screen[1], top + height)
                )
                self.walking = False
            elif data[at] != 0x21:  # the end (";") or damage: Pillow stops
                self.walking = False
            elif self.wait_for(data, at, end, 2):
                return end
            else:
                self.skip = 2  # "!" and the extension's label
                self._state = "sub"
        else:  # a sub-block: its length, then as many bytes; an empty one ends them
            length = data[at]
            self.skip = 1 + length
            if length == 0:
                self._state = "block"
        return at

    def problem(self) -> str:
        if self.too_large:
            return self.too_large
        if self.head_bytes > MAX_GIF_HEAD_BYTES:
            return (
                f"the GIF holds more than {MAX_GIF_HEAD_BYTES} bytes before its image "
                "(comments, extensions); more are not read"
            )
        return ""


# The sizes of the BMP information headers (OS/2 1.x, Windows 3 to 5); Pillow reads the
# size a file declares before it checks it is one of these.
_BMP_HEADERS = frozenset({12, 40, 52, 56, 64, 108, 124})


class BmpHeader:
    """A BMP's information header size, from its first 18 bytes: Pillow reads that many
    bytes (up to the whole file: 200 MB declared took 397 MB) before it refuses a size no
    BMP has."""

    def __init__(self) -> None:
        self._head = b""
        self.header_size: int | None = None

    def feed(self, chunk: bytes) -> None:
        if self.header_size is None:
            self._head += chunk[: 18 - len(self._head)]
            if len(self._head) == 18:
                (self.header_size,) = struct.unpack("<I", self._head[14:18])

    def problem(self) -> str:
        if self.header_size is not None and self.header_size not in _BMP_HEADERS:
            return (
                f"the BMP declares a {self.header_size}-byte header; BMP headers are "
                f"{', '.join(map(str, sorted(_BMP_HEADERS)))} bytes"
            )
        return ""


class WebpChunks(ByteWalk):
    """The chunks of a WebP fed chunk by chunk of bytes (an animation's frames are one
    each): libwebp's decoder lists every frame when it opens the file, whatever frame is
    then decoded. The walk stops past the limit, so it costs no more than that."""

    def __init__(self) -> None:
        super().__init__(skip=12)  # "RIFF", the RIFF's size, "WEBP"
        self.chunks = 0

    def feed(self, chunk: bytes) -> None:
        self.walk(chunk)

    def _step(self, data: bytes, at: int, end: int) -> int:
        if self.wait_for(data, at, end, 8):
            return end
        (length,) = struct.unpack_from("<I", data, at + 4)
        self.chunks += 1
        self.skip = 8 + length + (length & 1)  # chunks are padded to an even size
        return at

    def problem(self) -> str:
        if self.chunks > MAX_WEBP_CHUNKS:
            return (
                f"the WebP holds more than {MAX_WEBP_CHUNKS} chunks (an animation's frames, "
                "metadata); more are not read (its decoder lists every frame to read the first)"
            )
        return ""
