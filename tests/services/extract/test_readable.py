"""Which files of a combined task are read and which are left out, with the reader the
offline extractor and the evidence check use (services/extract/reading/readable.py)."""

from __future__ import annotations

import functools
import io
from typing import BinaryIO

import pytest

from bytereview.core.limits import MAX_IMAGE_PIXELS
from services.extract.base import Document, ExtractionError
from services.extract.reading.readable import none_readable, readable
from tests.hostile_documents import png_header_bomb
from tests.pdfs import text_pdf

GOOD = text_pdf(["Invoice Number: A-1"])


def document(name: str, path: str, data: bytes, media_type: str = "application/pdf") -> Document:
    return Document(name, path, media_type, functools.partial(io.BytesIO, data))


def failing(name: str, path: str, error: Exception) -> Document:
    def open_it() -> BinaryIO:
        raise error

    return Document(name, path, "application/pdf", open_it)


async def test_each_unreadable_file_is_left_out_with_its_reason_and_the_rest_kept_in_order() -> (
    None
):
    side = int(MAX_IMAGE_PIXELS**0.5) + 100
    documents = [
        document("a", "f/a.pdf", GOOD),
        document("b", "f/b.pdf", GOOD[: len(GOOD) // 3]),  # truncated
        document("c", "f/c.png", png_header_bomb(side, side), "image/png"),
        failing("d", "f/d.pdf", FileNotFoundError("no such object")),
        document("e", "f/e.docx", b"PK\x03\x04", "application/msword"),
        document("g", "f/g.pdf", GOOD),
    ]
    ok, skipped = await readable(documents)
    assert [d.name for d in ok] == ["a", "g"]
    # The pages read are kept: the extraction and the evidence check do not read again.
    assert "Invoice Number: A-1" in ok[0].pages[0].text
    reasons = {s.document.path: s.reason for s in skipped}
    assert list(reasons) == ["f/b.pdf", "f/c.png", "f/d.pdf", "f/e.docx"]
    assert reasons["f/b.pdf"].startswith("cannot read the PDF")
    assert reasons["f/c.png"] == (
        f"the image is {side} x {side} pixels; images of more than {MAX_IMAGE_PIXELS} "
        "pixels are not read"
    )
    assert reasons["f/d.pdf"] == "the file is no longer in storage"
    assert reasons["f/e.docx"] == "cannot read application/msword"


async def test_an_outage_is_raised_not_taken_for_a_bad_file() -> None:
    """Storage down is a wait for the task, never a file left out of its result."""
    with pytest.raises(ConnectionRefusedError):
        await readable(
            [document("a", "f/a.pdf", GOOD), failing("b", "f/b.pdf", ConnectionRefusedError())]
        )


async def test_no_readable_file_is_one_permanent_error_naming_each() -> None:
    _, skipped = await readable(
        [document("a", "m/a.pdf", b"%PDF-1.4\n junk"), document("b", "m/b.pdf", b"junk")]
    )
    error = none_readable("m", skipped)
    assert isinstance(error, ExtractionError)
    assert not error.retryable
    assert str(error).startswith("no file of folder m can be read: m/a.pdf: cannot read the PDF")
    assert "; m/b.pdf: cannot read the PDF" in str(error)
    assert str(none_readable("", skipped)).startswith("no file of the top folder can be read")


async def test_the_error_names_the_first_files_and_counts_the_rest() -> None:
    _, skipped = await readable([document(f"d{i}", f"m/{i:02d}.pdf", b"junk") for i in range(8)])
    message = str(none_readable("m", skipped))
    assert "m/04.pdf: cannot read the PDF" in message
    assert "m/05.pdf" not in message
    assert message.endswith("; and 3 more")
