"""File types from magic bytes, whatever the name says."""

from __future__ import annotations

import io
import struct
import zipfile

import pytest
from PIL import Image

from services.ingest.sniff import sniff
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
        (b"Rar!\x1a\x07\x00", "application/x-archive-unsupported", (0, 0)),
        (b"hello, plain text", "application/octet-stream", (0, 0)),
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
