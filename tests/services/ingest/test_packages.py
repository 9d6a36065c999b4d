"""Office documents known by their central directory, wherever `[Content_Types].xml` sits."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import pytest

from bytereview.core import Settings
from bytereview.core.storage import make_storage
from services.ingest.analysis import analyse
from services.ingest.budget import UnpackLimits
from services.ingest.packages import document_type
from services.ingest.sniff import OFFICE, ZIP, sniff
from tests import hostile_archives as hostile
from tests.archives import PNG


def _type(data: bytes, limits: UnpackLimits | None = None) -> str:
    return document_type(io.BytesIO(data), limits or UnpackLimits())


@pytest.mark.parametrize(
    "data",
    [
        hostile.office_exported("word/document.xml"),
        hostile.office_exported("xl/workbook.xml", content_types_at=2),
        hostile.office_exported("ppt/presentation.xml", content_types_at=1),
        hostile.office("word/document.xml"),  # as Office writes it: found either way
        hostile.SFX_STUB + hostile.office_exported("word/document.xml"),
        # Part names are compared case-insensitively; backslashes are separators (as
        # unpacking reads them), and `./` is the root.
        hostile.build([("WORD\\document.xml", b"<doc/>"), ("./[content_types].XML", b"<T/>")]),
    ],
    ids=["docx-last", "xlsx-middle", "pptx-second", "docx-first", "after-a-stub", "spelt-oddly"],
)
def test_an_office_package_is_known_wherever_its_content_types_sit(data: bytes) -> None:
    assert _type(data) == OFFICE


def test_the_first_header_alone_does_not_say_so() -> None:
    """Why the directory is read: sniff() sees a ZIP of files."""
    assert sniff(hostile.office_exported("word/document.xml")).media_type == ZIP


@pytest.mark.parametrize(
    "data",
    [
        hostile.build([("docs/[Content_Types].xml", b"<T/>"), ("word/a.png", PNG)]),
        hostile.build([("[Content_Types].xml", b"<T/>"), ("scans/a.png", PNG)]),
        hostile.build([("word/document.xml", b"<doc/>"), ("xl/a.png", PNG)]),
        hostile.build([("[Content_Types].xml/", b""), ("wordy/a.png", PNG)]),
        hostile.build([("a.png", PNG)]),
    ],
    ids=["in-a-folder", "no-main-folder", "no-content-types", "look-alikes", "plain"],
)
def test_an_archive_of_files_is_not_a_document(data: bytes) -> None:
    assert _type(data) == ""


def test_a_directory_unpacking_would_refuse_is_no_document() -> None:
    """Bounded as unpacking is: over the record limit (as the end record says, or as the
    records run past an understated count) or damaged, it is left to the unpacker's verdict."""
    data = hostile.office_exported("word/document.xml")  # five records
    few = UnpackLimits(max_entries=2)  # four records
    assert _type(data, few) == ""
    understated = bytearray(data)
    end = understated.rfind(b"PK\x05\x06")
    understated[end + 8 : end + 12] = struct.pack("<HH", 1, 1)
    assert _type(bytes(understated)) == OFFICE
    assert _type(bytes(understated), few) == ""
    damaged = bytearray(data)
    (start,) = struct.unpack("<I", damaged[end + 16 : end + 20])
    damaged[start : start + 4] = b"JUNK"
    assert _type(bytes(damaged)) == ""
    assert _type(data[:-30]) == ""
    assert _type(b"PK\x03\x04 not a zip") == ""


def test_an_upload_is_unsupported_as_an_office_document_as_the_first_header_would_say(
    tmp_path: Path,
) -> None:
    storage = make_storage(Settings(env="dev", storage_dir=tmp_path, data_dir=tmp_path))
    found = {}
    for name, data in (
        ("first", hostile.office("word/document.xml")),
        ("last", hostile.office_exported("word/document.xml")),
    ):
        with storage.open_write(name) as handle:
            handle.write(data)
        found[name] = analyse(storage, name, UnpackLimits())
    assert found["last"].status == "UNSUPPORTED"
    assert not found["last"].archive
    assert found["last"].media_type == OFFICE
    assert "save or print it as a PDF" in found["last"].error
    assert (found["last"].status, found["last"].error) == (
        found["first"].status,
        found["first"].error,
    )
    with storage.open_write("zip") as handle:
        handle.write(hostile.build([("docs/[Content_Types].xml", b"<T/>"), ("word/a.png", PNG)]))
    assert analyse(storage, "zip").archive
