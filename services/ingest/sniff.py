"""What a file is, from its bytes: magic numbers, never the name or the declared type."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import BinaryIO

from services.ingest import directory

SNIFF_BYTES = 64 * 1024

PDF = "application/pdf"
ZIP = "application/zip"
PNG = "image/png"
JPEG = "image/jpeg"
GIF = "image/gif"
TIFF = "image/tiff"
WEBP = "image/webp"
BMP = "image/bmp"

# Types an extractor can read.
EXTRACTABLE = frozenset({PDF, PNG, JPEG, GIF, TIFF, WEBP, BMP})
ARCHIVES = frozenset({ZIP})


@dataclass(frozen=True, slots=True)
class Sniffed:
    media_type: str
    width: int = 0
    height: int = 0

    @property
    def extractable(self) -> bool:
        return self.media_type in EXTRACTABLE

    @property
    def archive(self) -> bool:
        return self.media_type in ARCHIVES


def sniff(head: bytes) -> Sniffed:
    """The media type (and image size where the header says) of a file starting with `head`."""
    if head.startswith(b"%PDF-"):
        return Sniffed(PDF)
    # Before the lenient PDF check below: a ZIP that stores a PDF uncompressed carries
    # `%PDF-` a few dozen bytes in, and must still be unpacked, not read as a PDF.
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return Sniffed(ZIP)
    if head.startswith(b"\x89PNG\r\n\x1a\n") and len(head) >= 24:
        width, height = struct.unpack(">II", head[16:24])
        return Sniffed(PNG, width, height)
    if head.startswith(b"\xff\xd8\xff"):
        width, height = _jpeg_size(head)
        return Sniffed(JPEG, width, height)
    if head.startswith((b"GIF87a", b"GIF89a")) and len(head) >= 10:
        width, height = struct.unpack("<HH", head[6:10])
        return Sniffed(GIF, width, height)
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return Sniffed(TIFF)
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return Sniffed(WEBP)
    if head.startswith(b"BM") and len(head) >= 26:
        width, height = struct.unpack("<ii", head[18:26])
        return Sniffed(BMP, abs(width), abs(height))
    if head.startswith(b"Rar!") or head.startswith(b"7z\xbc\xaf\x27\x1c"):
        return Sniffed("application/x-archive-unsupported")
    # Readers accept a PDF header anywhere in the first KiB (after junk some tools prepend).
    if b"%PDF-" in head[:1024]:
        return Sniffed(PDF)
    return Sniffed("application/octet-stream")


def zip_directory(tail: bytes, size: int) -> bool:
    """Whether a file of `size` bytes ending in `tail` is a ZIP by its end-of-central-directory
    record, wherever the archive starts: self-extracting archives (an executable stub before
    the first local header) are ZIPs to unzip and zipfile, and so to us. The record must
    point at a central directory that starts with a directory record (when that lies in
    `tail`), so that a stray signature in other data is not enough."""
    end = directory.find_end(tail, size)
    if end is None or end.entries == 0 or end.size < directory.CENTRAL_SIZE:
        return False
    at = end.start - (size - len(tail))
    if 0 <= at <= len(tail) - 4:
        return tail[at : at + 4] == directory.CENTRAL
    return end.start + end.size <= size


def zip_at_end(handle: BinaryIO) -> bool:
    """zip_directory() for a stored, seekable file: reads its last 64 KiB only."""
    size = handle.seek(0, 2)
    handle.seek(max(0, size - directory.TAIL_BYTES))
    return zip_directory(handle.read(directory.TAIL_BYTES), size)


def _jpeg_size(data: bytes) -> tuple[int, int]:
    """Width and height from the first SOF marker, if it lies within `data`."""
    i = 2
    while i + 9 < len(data):
        if data[i] != 0xFF:
            i += 1
            continue
        marker = data[i + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        length = struct.unpack(">H", data[i + 2 : i + 4])[0]
        if marker in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF):
            height, width = struct.unpack(">HH", data[i + 5 : i + 9])
            return width, height
        i += 2 + length
    return 0, 0
