"""Documents that are ZIP packages, known by their central directory wherever their parts
sit: Office Open XML and other Open Packaging Conventions packages, OpenDocument and EPUB."""

from __future__ import annotations

import io
import struct
import warnings
import zipfile
from pathlib import Path
from typing import BinaryIO, cast

import pytest

from bytereview.core import Settings
from bytereview.core.storage import make_storage
from services.ingest.analysis import analyse
from services.ingest.budget import UnpackLimits
from services.ingest.packages import MIMETYPE_BYTES, document_type
from services.ingest.sniff import (
    EPUB,
    MODEL_3MF,
    OFFICE,
    OPC_PACKAGE,
    OPENDOCUMENT,
    VISIO,
    XPS,
    ZIP,
    Sniffed,
    sniff,
    unsupported_reason,
)
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


# -- other packages ---------------------------------------------------------------------------

ODT_TYPE = b"application/vnd.oasis.opendocument.text"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (hostile.xps(), XPS),
        (hostile.xps(content_types_at=2), XPS),
        (hostile.xps(content_types_at=0), XPS),
        (hostile.visio(), VISIO),
        (hostile.model_3mf(), MODEL_3MF),
        (hostile.opc_other(), OPC_PACKAGE),
        (hostile.SFX_STUB + hostile.xps(), XPS),
        # Relationships after the kind's folder: the kind is kept until the pair is complete.
        (
            hostile.build(
                [
                    ("3D/3dmodel.model", b"<model/>"),
                    ("[Content_Types].xml", b"<Types/>"),
                    ("_rels/.rels", b"<R/>"),
                ]
            ),
            MODEL_3MF,
        ),
        # An OpenXPS document sequence of another name, at the root.
        (
            hostile.build(
                [
                    ("_rels/.rels", b"<R/>"),
                    ("FixedDocumentSequence.fdseq", b"<S/>"),
                    ("[Content_Types].xml", b"<Types/>"),
                ]
            ),
            XPS,
        ),
    ],
    ids=[
        "xps-last",
        "xps-middle",
        "xps-first",
        "vsdx",
        "3mf",
        "other-opc",
        "xps-after-a-stub",
        "3mf-kind-first",
        "oxps-sequence",
    ],
)
def test_an_opc_package_is_known_and_named_by_its_directory(data: bytes, expected: str) -> None:
    assert _type(data) == expected


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (hostile.rezipped_opendocument(), OPENDOCUMENT),
        (hostile.rezipped_opendocument(mimetype_at=0), OPENDOCUMENT),  # first, but deflated
        (hostile.rezipped_opendocument(mimetype_at=1, method=zipfile.ZIP_STORED), OPENDOCUMENT),
        (hostile.rezipped_epub(), EPUB),
        (hostile.rezipped_epub(mimetype_at=0), EPUB),
        (hostile.rezipped_epub(mimetype_at=2, method=zipfile.ZIP_STORED), EPUB),
        # A newline after the type (`echo ... > mimetype`), and an EPUB with the optional
        # OCF manifest beside its container: its bytes say which it is.
        (
            hostile.zipped_package(
                b"application/epub+zip\n",
                [("META-INF/manifest.xml", b"<m/>"), ("META-INF/container.xml", b"<c/>")],
                mimetype_at=-1,
            ),
            EPUB,
        ),
        (hostile.opendocument(), ""),  # no manifest: known by its first header (sniff) only
    ],
    ids=[
        "odt-last",
        "odt-first-deflated",
        "odt-second-stored",
        "epub-last",
        "epub-first-deflated",
        "epub-third-stored",
        "epub-newline-and-manifest",
        "odt-without-manifest",
    ],
)
def test_a_mimetype_package_is_known_by_its_directory_and_mimetype(
    data: bytes, expected: str
) -> None:
    assert _type(data) == expected


def test_re_zipped_packages_are_not_known_by_their_first_header() -> None:
    """Why the directory is read for them: sniff() sees a ZIP of files."""
    for data in (
        hostile.xps(),
        hostile.visio(),  # `[Content_Types].xml` first: Office, XPS and 3MF write it so too
        hostile.rezipped_opendocument(mimetype_at=0),
        hostile.rezipped_epub(),
    ):
        assert sniff(data).media_type == ZIP


@pytest.mark.parametrize(
    "data",
    [
        # In a folder: the pair must sit at the root.
        hostile.build(
            [
                ("docs/[Content_Types].xml", b"<T/>"),
                ("docs/_rels/.rels", b"<R/>"),
                ("3D/a.png", PNG),
            ]
        ),
        # One of the pair alone at the root, beside a kind's folder.
        hostile.build([("[Content_Types].xml", b"<T/>"), ("3D/a.png", PNG), ("visio/b.png", PNG)]),
        hostile.build([("_rels/.rels", b"<R/>"), ("Documents/a.png", PNG)]),
        # First in the archive, with nothing of a package beside it.
        hostile.build([("[Content_Types].xml", b"<T/>"), ("scans/a.png", PNG)]),
        # `mimetype` and its companion in a folder, or one of them alone at the root.
        hostile.build(
            [("docs/META-INF/manifest.xml", b"<m/>"), ("docs/mimetype", ODT_TYPE), ("a.png", PNG)]
        ),
        hostile.build([("a.png", PNG), ("mimetype", ODT_TYPE)]),
        hostile.build([("a.png", PNG), ("META-INF/container.xml", b"<c/>")]),
        # Both at the root, but `mimetype` names no package type, or the other one.
        hostile.build(
            [("META-INF/manifest.xml", b"<m/>"), ("mimetype", b"text/plain"), ("a.png", PNG)]
        ),
        hostile.build([("META-INF/manifest.xml", b"<m/>"), ("mimetype", b"application/epub+zip")]),
        hostile.build([("META-INF/container.xml", b"<c/>"), ("mimetype", ODT_TYPE)]),
        # Larger than a media type: not read.
        hostile.build(
            [("META-INF/manifest.xml", b"<m/>"), ("mimetype", ODT_TYPE.ljust(MIMETYPE_BYTES + 1))]
        ),
    ],
    ids=[
        "opc-in-a-folder",
        "content-types-alone",
        "rels-alone",
        "content-types-first-alone",
        "mimetype-in-a-folder",
        "mimetype-alone",
        "container-alone",
        "mimetype-of-no-package",
        "epub-without-container",
        "odf-without-manifest",
        "mimetype-too-large",
    ],
)
def test_an_archive_with_one_of_the_names_is_no_package(data: bytes) -> None:
    assert _type(data) == ""


class _CountingReader(io.BytesIO):
    """Counts reads: how often a walk stopped for an entry's data."""

    reads = 0

    def read(self, size: int | None = -1) -> bytes:
        self.reads += 1
        return super().read(size)


def _spelt(i: int) -> str:
    """The `i`th of 1,024 spellings of a root `mimetype` (case, and `./` before it)."""
    cased = "".join(c.upper() if i >> at & 1 else c for at, c in enumerate("mimetype"))
    return "./" * (i >> 8) + cased


def test_a_directory_of_many_mimetype_records_reads_one() -> None:
    """One `mimetype` entry is read per directory, the first at the root, whatever the
    directory repeats: one read per record would make 20,000 reads of a hostile one."""

    def reads(copies: int) -> int:
        entries: list[tuple[zipfile.ZipInfo | str, bytes]] = [
            ("META-INF/manifest.xml", b"<m/>"),
            *((_spelt(i), b"text/plain") for i in range(copies)),
        ]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            data = hostile.build(entries)
        handle = _CountingReader(data)
        assert document_type(cast(BinaryIO, handle), UnpackLimits()) == ""
        return handle.reads

    assert reads(1000) == reads(1)


def test_a_damaged_mimetype_entry_names_no_type() -> None:
    """Its data past the directory's start, or failing its CRC: left to the unpacker."""
    data = hostile.rezipped_opendocument(mimetype_at=0, method=zipfile.ZIP_STORED)
    assert _type(data) == OPENDOCUMENT
    assert _type(hostile.patch(data, 0, crc=0)) == ""
    assert _type(hostile.patch(data, 0, compressed=len(data))) == ""
    beyond = bytearray(data)
    end = beyond.rfind(b"PK\x05\x06")
    (directory_start,) = struct.unpack("<I", beyond[end + 16 : end + 20])
    mimetype_record = beyond.index(b"PK\x01\x02", directory_start)
    beyond[mimetype_record + 42 : mimetype_record + 46] = struct.pack("<I", 0xFFFFFFF0)
    # Not sought at all: a storage reader may fail such a seek as an outage.
    handle = _NoSeekPastEnd(bytes(beyond))
    assert document_type(cast(BinaryIO, handle), UnpackLimits()) == ""


class _NoSeekPastEnd(io.BytesIO):
    """A reader that fails a seek past its end, as storage readers may."""

    def seek(self, offset: int, whence: int = 0) -> int:
        if whence == 0 and offset > len(self.getbuffer()):
            raise RuntimeError(f"seek to {offset}, past the end")
        return super().seek(offset, whence)


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (hostile.xps(), "an XPS document"),
        (hostile.visio(), "a Visio drawing"),
        (hostile.model_3mf(), "a 3MF model"),
        (hostile.opc_other(), "a document package (Open Packaging Conventions)"),
        (hostile.rezipped_opendocument(), "an OpenDocument file"),
        (hostile.rezipped_epub(), "an EPUB book"),
    ],
    ids=["xps", "vsdx", "3mf", "other-opc", "odt", "epub"],
)
def test_an_upload_that_is_a_package_is_unsupported_and_named(
    tmp_path: Path, data: bytes, words: str
) -> None:
    storage = make_storage(Settings(env="dev", storage_dir=tmp_path, data_dir=tmp_path))
    with storage.open_write("upload") as handle:
        handle.write(data)
    found = analyse(storage, "upload", UnpackLimits())
    assert (found.status, found.archive) == ("UNSUPPORTED", False)
    assert found.error == unsupported_reason(Sniffed(found.media_type))
    assert found.error.startswith(f"the file is {words}")
    assert "save or print it as a PDF" in found.error


def test_an_upload_starting_with_content_types_alone_is_unpacked(tmp_path: Path) -> None:
    """It was an Office document by its first header: its files were never unpacked."""
    storage = make_storage(Settings(env="dev", storage_dir=tmp_path, data_dir=tmp_path))
    with storage.open_write("upload") as handle:
        handle.write(hostile.build([("[Content_Types].xml", b"<T/>"), ("scans/a.png", PNG)]))
    found = analyse(storage, "upload", UnpackLimits())
    assert (found.status, found.archive) == ("ANALYZING", True)
