"""File types from magic bytes, whatever the name says."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import struct
import tarfile
import zipfile

import pytest
from PIL import Image, UnidentifiedImageError

from services.ingest.sniff import image_problem, sniff, unsupported_reason
from tests.archives import zip_bytes
from tests.pdfs import text_pdf


def image(fmt: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (37, 21), "white").save(out, format=fmt)
    return out.getvalue()


@pytest.mark.parametrize(
    ("data", "media_type", "size"),
    [
        (text_pdf(["x"]), "application/pdf", (0, 0)),
        (b"junk before the header\n" + text_pdf(["x"]), "application/pdf", (0, 0)),
        (zip_bytes({"a.pdf": text_pdf(["x"])}), "application/zip", (0, 0)),
        # A ZIP that stores its PDF uncompressed has `%PDF-` a few bytes in: still a ZIP.
        (
            zip_bytes({"a.pdf": text_pdf(["x"])}, compression=zipfile.ZIP_STORED),
            "application/zip",
            (0, 0),
        ),
        (image("PNG"), "image/png", (37, 21)),
        (image("JPEG"), "image/jpeg", (37, 21)),
        (image("GIF"), "image/gif", (37, 21)),
        (image("BMP"), "image/bmp", (37, 21)),
        (image("TIFF"), "image/tiff", (37, 21)),
        (image("WEBP"), "image/webp", (37, 21)),
        (b"Rar!\x1a\x07\x00", "application/vnd.rar", (0, 0)),
        (b"hello, plain text", "text/plain", (0, 0)),
        (b"", "application/octet-stream", (0, 0)),
        (b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13), "application/octet-stream", (0, 0)),
    ],
    ids=[
        "pdf",
        "pdf-after-junk",
        "zip",
        "stored-zip-of-pdf",
        "png",
        "jpeg",
        "gif",
        "bmp",
        "tiff",
        "webp",
        "rar",
        "text",
        "empty",
        "truncated-png",
    ],
)
def test_sniff(data: bytes, media_type: str, size: tuple[int, int]) -> None:
    found = sniff(data[: 64 * 1024])
    assert found.media_type == media_type
    assert (found.width, found.height) == size


def _tar_of_pdf() -> bytes:
    out = io.BytesIO()
    pdf = text_pdf(["x"])
    with tarfile.open(fileobj=out, mode="w") as tar:
        member = tarfile.TarInfo("a.pdf")
        member.size = len(pdf)
        tar.addfile(member, io.BytesIO(pdf))
    return out.getvalue()


@pytest.mark.parametrize(
    ("data", "media_type", "kind"),
    [
        # Its PDF's `%PDF-` is at byte 512: once read as a PDF by the lenient check.
        (_tar_of_pdf(), "application/x-tar", "tar"),
        (gzip.compress(b"x" * 100), "application/gzip", "gzip"),
        (bz2.compress(b"x" * 100), "application/x-bzip2", "bzip2"),
        (lzma.compress(b"x" * 100), "application/x-xz", "xz"),
        (b"7z\xbc\xaf\x27\x1c\x00\x04", "application/x-7z-compressed", "7-Zip"),
    ],
    ids=["tar", "gzip", "bzip2", "xz", "7z"],
)
def test_other_archives_are_named_with_what_to_do(data: bytes, media_type: str, kind: str) -> None:
    """An archive ByteReview does not unpack (renamed .zip, or as it is) says what it is and
    that a ZIP is what to upload, not "files of type application/octet-stream"."""
    found = sniff(data[: 64 * 1024])
    assert found.media_type == media_type
    assert not found.archive
    assert not found.extractable
    reason = unsupported_reason(found)
    assert f"{kind} archive" in reason
    assert "re-pack its files as a ZIP" in reason


def test_an_os2_bitmap_has_its_16_bit_size() -> None:
    """The OS/2 1.x header (12 bytes) holds 16-bit sizes: read as 32-bit ones, a 16 x 8
    bitmap was 524,304 x 1,572,865 pixels, and refused as too large."""
    row = (16 * 24 + 31) // 32 * 4
    header = struct.pack("<IHHHH", 12, 16, 8, 1, 24)
    data = b"BM" + struct.pack("<IHHI", 26 + row * 8, 0, 0, 26) + header + b"\xff" * row * 8
    found = sniff(data)
    assert (found.media_type, found.width, found.height) == ("image/bmp", 16, 8)
    with Image.open(io.BytesIO(data)) as opened:
        assert opened.size == (16, 8)
    assert image_problem(found) == ""


@pytest.mark.parametrize(
    ("head", "media_type", "told"),
    [
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504), "application/x-ole-storage", "97-2003"),
        (b"\0\0\0\x18ftypheic\0\0\0\0mif1heic", "image/heif", "HEIC"),
        (b"\0\0\0\x1cftypavif\0\0\0\0avifmif1miaf", "image/avif", "AVIF"),
        # Text, judged after every binary type.
        (b"Invoice 12 total 12.50\r\n", "text/plain", "plain text"),
        ("Rechnung über 12,50 €".encode(), "text/plain", "plain text"),
        # A head of 64 KiB may end inside a character.
        (("a" * 10 + "€").encode()[:-1], "text/plain", "plain text"),
        (b"\xef\xbb\xbf  <!DOCTYPE HTML><html>", "text/html", "a web page"),
        (b"<html><body>x</body></html>", "text/html", "a web page"),
        (b'<?xml version="1.0"?><Invoice/>', "application/xml", "an XML file"),
        (b"{\\rtf1\\ansi x}", "application/rtf", "an RTF document"),
        (b"Received: from mx\r\nFrom: a@b.c\r\n\r\nhi", "message/rfc822", "an e-mail"),
    ],
    ids=[
        "doc-xls-ppt",
        "iphone-photo",
        "avif",
        "ascii",
        "utf-8",
        "cut-character",
        "html-bom",
        "html",
        "xml",
        "rtf",
        "e-mail",
    ],
)
def test_files_people_upload_that_are_not_read_are_named(
    head: bytes, media_type: str, told: str
) -> None:
    """They were "files of type application/octet-stream cannot be extracted"."""
    found = sniff(head)
    assert found.media_type == media_type
    assert not found.extractable
    assert not found.archive
    reason = unsupported_reason(found)
    assert told in reason
    assert "octet-stream" not in reason


@pytest.mark.parametrize(
    "head",
    [b"", b"  \n\t", b"binary\x00data", b"\x01\x02\x03", b"caf\xe9 latin-1, not UTF-8 text"],
    ids=["empty", "blank", "nul", "controls", "latin-1"],
)
def test_what_is_not_text_stays_unknown(head: bytes) -> None:
    assert sniff(head).media_type == "application/octet-stream"


def test_a_tar_without_the_ustar_magic_is_a_tar() -> None:
    """The original (V7) tar format has no magic: a tar of a PDF was read as that PDF
    (`%PDF-` in its first KiB) and its other members never mentioned."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as archive:
        for name in ("a.pdf", "b.pdf"):
            info = tarfile.TarInfo(name)
            body = text_pdf(["Invoice"])
            info.size = len(body)
            archive.addfile(info, io.BytesIO(body))
    v7 = bytearray(out.getvalue())
    v7[257:265] = bytes(8)  # no "ustar" magic or version: V7, as the checksum still says
    v7[148:156] = b"%06o\0 " % (sum(v7[:148]) + 8 * 0x20 + sum(v7[156:512]))
    found = sniff(bytes(v7[:65536]))
    assert found.media_type == "application/x-tar"
    assert "only ZIP archives are unpacked" in unsupported_reason(found)
    assert sniff(text_pdf(["Invoice"])).media_type == "application/pdf"
    assert sniff(bytes(1024)).media_type == "application/octet-stream"  # no checksum at all


def _jpeg_of_height(height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (32, 16), "white").save(out, "JPEG")
    data = bytearray(out.getvalue())
    frame = data.index(b"\xff\xc0")  # SOF0: length, precision, then height and width
    data[frame + 5 : frame + 7] = struct.pack(">H", height)
    return bytes(data)


def test_an_image_with_one_side_of_zero_cannot_be_read() -> None:
    """A JPEG frame of height 0 (only a later DNL marker would give it) was READY, and no
    decoder opens it: extraction failed it later. 0 x 0 is the size not read yet."""
    found = sniff(_jpeg_of_height(0))
    assert (found.width, found.height) == (32, 0)
    assert image_problem(found) == "the image header declares 32 x 0 pixels"
    with pytest.raises(UnidentifiedImageError):
        Image.open(io.BytesIO(_jpeg_of_height(0))).load()
    assert image_problem(sniff(_jpeg_of_height(16))) == ""
