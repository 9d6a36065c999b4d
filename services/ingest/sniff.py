"""What a file is, from its bytes: magic numbers, never the name or the declared type."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import BinaryIO

from bytereview.core.declared_pixels import pixels_problem
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
# Bytes of no known type: the only ones looked at again for a ZIP at their end (self-extracting
# archives: an executable stub before the archive), not a document or archive we name. A
# shell script's stub is no text here: the archive's headers (control bytes) follow it within
# the head that is judged.
UNKNOWN = "application/octet-stream"
# Text people upload (a saved web page, an e-mail, an e-invoice's XML, notes), named so that
# they are told what the file is and what to do, not "files of type application/octet-stream".
TEXT = "text/plain"
HTML = "text/html"
XML = "application/xml"
RTF = "application/rtf"
EMAIL = "message/rfc822"

# Types an extractor can read.
EXTRACTABLE = frozenset({PDF, PNG, JPEG, GIF, TIFF, WEBP, BMP})
ARCHIVES = frozenset({ZIP})
# Archives and compressed files that are not unpacked, by their magic (bytes, offset), so that
# one renamed .zip (or uploaded as it is) is told what it is and what to do, not "octet-stream".
# Before the lenient PDF check: a tar holding a PDF shows `%PDF-` at byte 512.
OTHER_ARCHIVES: tuple[tuple[bytes, int, str], ...] = (
    (b"Rar!\x1a\x07", 0, "application/vnd.rar"),
    (b"7z\xbc\xaf\x27\x1c", 0, "application/x-7z-compressed"),
    (b"\x1f\x8b\x08", 0, "application/gzip"),
    (b"1AY&SY", 4, "application/x-bzip2"),  # after "BZh" and the block size
    (b"\xfd7zXZ\x00", 0, "application/x-xz"),
    (b"\x28\xb5\x2f\xfd", 0, "application/zstd"),
    (b"MSCF\x00\x00\x00\x00", 0, "application/vnd.ms-cab-compressed"),
    (b"ustar", 257, "application/x-tar"),
)
_ARCHIVE_NAMES = {
    "application/vnd.rar": "RAR",
    "application/x-7z-compressed": "7-Zip",
    "application/gzip": "gzip",
    "application/x-bzip2": "bzip2",
    "application/x-xz": "xz",
    "application/zstd": "Zstandard",
    "application/vnd.ms-cab-compressed": "CAB",
    "application/x-tar": "tar",
}


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
        return Sniffed(_zip_document(head) or ZIP)
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
        width, height = _tiff_size(head)
        return Sniffed(TIFF, width, height)
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        width, height = _webp_size(head)
        return Sniffed(WEBP, width, height)
    if head.startswith(b"BM") and len(head) >= 26:
        width, height = _bmp_size(head)
        return Sniffed(BMP, width, height)
    for magic, at, media_type in OTHER_ARCHIVES:
        if head[at : at + len(magic)] == magic:
            return Sniffed(media_type)
    if _tar_header(head):
        return Sniffed("application/x-tar")
    if head.startswith(OLE):
        return Sniffed(OLE_DOCUMENT)
    if head[4:8] == b"ftyp" and (brand := _PHOTO_BRANDS.get(head[8:12])):
        return Sniffed(brand)
    # Readers accept a PDF header anywhere in the first KiB (after junk some tools prepend).
    if b"%PDF-" in head[:1024]:
        return Sniffed(PDF)
    return Sniffed(_text_kind(head) or UNKNOWN)


_BOM = b"\xef\xbb\xbf"
# Characters text holds besides printable ones: tab, line feed, form feed, carriage return.
_TEXT_CONTROLS = frozenset("\t\n\f\r")
# The header fields an e-mail message (RFC 5322, as mail programs save it: .eml) starts with.
_MAIL_FIELDS = (b"received:", b"return-path:", b"from:", b"delivered-to:", b"mime-version:")


def _text_kind(head: bytes) -> str:
    """The text type of a file starting with `head` ('' for no text): UTF-8 (or ASCII)
    without control characters, named by how it starts."""
    body = head.removeprefix(_BOM)
    if not body.strip():
        return ""  # empty, or only spaces: nothing to name
    # The head may cut a character's bytes in two: its last three bytes are not judged.
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(body) - 3:
            return ""
        text = body[: exc.start].decode("utf-8")
    if any(not c.isprintable() and c not in _TEXT_CONTROLS for c in text):
        return ""
    start = body.lstrip()[:64].lower()
    if start.startswith(b"{\\rtf"):
        return RTF
    if start.startswith((b"<!doctype html", b"<html")):
        return HTML
    if start.startswith(b"<?xml"):
        return XML
    if start.startswith(_MAIL_FIELDS):
        return EMAIL
    return TEXT


# Documents that are ZIP archives inside (packages): unpacked, they were a heap of XML parts
# (UNSUPPORTED) and their embedded pictures. Known here by their first entry only where the
# format makes it its magic number: an uncompressed `mimetype` first, whose bytes name the
# type (OpenDocument, EPUB). Every other package, these too wherever their parts sit, is known
# by its directory (packages.py): a first `[Content_Types].xml` is not enough, as Office,
# XPS, Visio and 3MF all write one, and a plain archive may start with such a file.
OFFICE = "application/vnd.openxmlformats-officedocument"
XPS = "application/vnd.ms-xpsdocument"
VISIO = "application/vnd.ms-visio.drawing"
MODEL_3MF = "model/3mf"
# An Open Packaging Conventions package (ECMA-376 Part 2) of no kind named above; no media
# type is registered for one, so the prefix its own parts' content types share.
OPC_PACKAGE = "application/vnd.openxmlformats-package"
OPENDOCUMENT = "application/vnd.oasis.opendocument"
EPUB = "application/epub+zip"
# The types a package's `mimetype` entry may name, by the prefix of its bytes.
MIMETYPE_DOCUMENTS = (OPENDOCUMENT, EPUB)
_ZIP_DOCUMENTS = {
    OFFICE: "an Office document (Word, Excel or PowerPoint)",
    XPS: "an XPS document",
    VISIO: "a Visio drawing",
    MODEL_3MF: "a 3MF model",
    OPC_PACKAGE: "a document package (Open Packaging Conventions), not an archive of files",
    OPENDOCUMENT: "an OpenDocument file",
    EPUB: "an EPUB book",
}


def _zip_document(head: bytes) -> str:
    """The document type of a ZIP starting with `head` by its first entry ('' if it does
    not say: an archive of files, or a package known by its directory)."""
    if len(head) < 30:
        return ""
    name_length, extra_length = struct.unpack("<HH", head[26:30])
    name = head[30 : 30 + name_length]
    if name == b"mimetype":
        content = head[30 + name_length + extra_length :][:80]
        for media_type in MIMETYPE_DOCUMENTS:
            if content.startswith(media_type.encode()):
                return media_type
    return ""


# Files people upload that are neither extracted nor unpacked, named so that the user is
# told what the file is and what to do, not "files of type application/octet-stream": Office
# files of the 97-2003 format (an OLE compound file), and the photos phones take (HEIC on
# iPhones, AVIF), which Pillow does not read.
OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
OLE_DOCUMENT = "application/x-ole-storage"
HEIF = "image/heif"
AVIF = "image/avif"
_PHOTO_BRANDS = {
    **dict.fromkeys((b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"), HEIF),
    b"avif": AVIF,
    b"avis": AVIF,
}
_OTHER_DOCUMENTS = {
    OLE_DOCUMENT: "an Office file of the 97-2003 format (Word, Excel or PowerPoint)",
}
_PHOTOS = {HEIF: "a HEIC/HEIF photo (as iPhones take them)", AVIF: "an AVIF image"}
_TEXTS = {
    TEXT: ("plain text", "print it as a PDF and upload that"),
    HTML: ("a web page (HTML)", "print it as a PDF and upload that"),
    XML: ("an XML file", "upload the PDF or image it was made from, or print it as a PDF"),
    RTF: ("an RTF document", "save or print it as a PDF and upload that"),
    EMAIL: ("an e-mail message", "upload its attachments, or print it as a PDF"),
}


def unsupported_reason(found: Sniffed) -> str:
    """Why a file of a type that is neither extracted nor unpacked is not used."""
    document = _ZIP_DOCUMENTS.get(found.media_type) or _OTHER_DOCUMENTS.get(found.media_type)
    if document is not None:
        return f"the file is {document}; save or print it as a PDF and upload that"
    photo = _PHOTOS.get(found.media_type)
    if photo is not None:
        return f"the file is {photo}; save or export it as JPEG or PNG and upload that"
    text = _TEXTS.get(found.media_type)
    if text is not None:
        what, to_do = text
        return f"the file is {what}, which is not read as a printed document; {to_do}"
    kind = _ARCHIVE_NAMES.get(found.media_type)
    if kind is not None:
        return (
            f"the file is a {kind} archive or compressed file; only ZIP archives are "
            "unpacked: re-pack its files as a ZIP archive"
        )
    return (
        f"files of type {found.media_type} cannot be extracted; upload PDFs, images (PNG, "
        "JPEG, TIFF, WebP, GIF, BMP) or ZIP archives of them"
    )


DAMAGED_HEADER = "the image header is damaged"


def image_problem(found: Sniffed) -> str:
    """Why an image cannot be read ('' if it can), judged before any decoding: a PNG or
    GIF header of 0 x 0 pixels or any header with one side of 0 (no decoder opens them), or
    more pixels than MAX_IMAGE_PIXELS
    (core/declared_pixels.py). The same for an upload and an archive's entry: an entry of
    0 x 0 was READY, the same bytes uploaded FAILED."""
    if found.width == 0 and found.height == 0 and found.media_type in (PNG, GIF):
        return DAMAGED_HEADER
    if (found.width == 0) != (found.height == 0):
        # One side of 0 (a PNG of 0 x 40, a JPEG frame of height 0, which only a later DNL
        # marker would give): READY here, no decoder opens it, and extraction failed it.
        # Both 0 is "size not read" for formats whose header may come late.
        return f"the image header declares {found.width} x {found.height} pixels"
    return pixels_problem(found.width, found.height)


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


def _tar_header(head: bytes) -> bool:
    """Whether `head` starts with a tar header by its checksum: the original (V7) format,
    and tools writing it, have no "ustar" magic. Its first member's bytes follow at 512, so
    a tar of a PDF was read as that one PDF (a reader finds `%PDF-` in the first KiB) and
    its other members were never mentioned."""
    if len(head) < 512:
        return False
    field = head[148:156].strip(b" \0")
    if not field or any(c not in b"01234567" for c in field):
        return False
    # The checksum counts its own field as eight spaces.
    return int(field, 8) == sum(head[:148]) + 8 * 0x20 + sum(head[156:512])


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


def _bmp_size(data: bytes) -> tuple[int, int]:
    """Width and height from the information header: 16-bit in the OS/2 1.x header (12
    bytes), 32-bit and signed (negative: rows top-down) in the others. Read as 32-bit, an
    OS/2 bitmap of 16 x 8 pixels was 524,304 x 1,572,865, and refused."""
    if struct.unpack("<I", data[14:18])[0] == 12:
        return struct.unpack("<HH", data[18:22])
    width, height = struct.unpack("<ii", data[18:26])
    return abs(width), abs(height)


def _tiff_size(data: bytes) -> tuple[int, int]:
    """Width and height from the first image directory, if it lies within `data` (a later
    page may be larger: readers check each page they decode)."""
    order = "<" if data[:2] == b"II" else ">"
    if len(data) < 8:
        return 0, 0
    (first,) = struct.unpack(order + "I", data[4:8])
    if first + 2 > len(data):
        return 0, 0
    (count,) = struct.unpack(order + "H", data[first : first + 2])
    found: dict[int, int] = {}
    for i in range(count):
        at = first + 2 + 12 * i
        if at + 12 > len(data):
            break
        tag, kind = struct.unpack(order + "HH", data[at : at + 4])
        if tag in (256, 257):  # ImageWidth, ImageLength: SHORT (3) or LONG (4)
            if kind == 3:
                (found[tag],) = struct.unpack(order + "H", data[at + 8 : at + 10])
            elif kind == 4:
                (found[tag],) = struct.unpack(order + "I", data[at + 8 : at + 12])
    return found.get(256, 0), found.get(257, 0)


def _webp_size(data: bytes) -> tuple[int, int]:
    """Canvas width and height from the first chunk (VP8X, VP8L or VP8)."""
    chunk = data[12:16]
    if chunk == b"VP8X" and len(data) >= 30:
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        return width, height
    if chunk == b"VP8L" and len(data) >= 25 and data[20] == 0x2F:
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8 " and len(data) >= 30 and data[23:26] == b"\x9d\x01\x2a":
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    return 0, 0
