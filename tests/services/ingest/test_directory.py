"""The central directory counted before zipfile builds anything, and entry names decoded."""

from __future__ import annotations

import io
import struct
import zipfile

import pytest

from services.ingest import directory
from services.ingest.budget import HostileArchive, UnpackLimits
from services.ingest.entry_names import record_name
from services.ingest.sniff import zip_directory
from services.ingest.unpack import DamagedArchive, open_archive
from tests import hostile_archives as hostile
from tests.archives import PNG


def _end(data: bytes) -> directory.DirectoryEnd:
    return directory.read_end(io.BytesIO(data))


def test_end_record_plain_and_after_a_self_extractor_stub() -> None:
    data = hostile.build([("a.png", PNG), ("b/", b""), ("b/c.png", PNG)])
    end = _end(data)
    assert (end.entries, end.prefix) == (3, 0)
    sfx = hostile.SFX_STUB + data
    moved = _end(sfx)
    assert (moved.entries, moved.prefix) == (3, len(hostile.SFX_STUB))
    assert moved.start == end.start + len(hostile.SFX_STUB)
    records = list(directory.walk(io.BytesIO(sfx), moved))
    assert [r.raw_name for r in records] == [b"a.png", b"b/", b"b/c.png"]
    assert [r.is_dir for r in records] == [False, True, False]


@pytest.mark.parametrize(
    "data",
    [hostile.empty_end_in_comment(), hostile.bad_end_in_comment()],
    ids=["empty-archive-end", "end-pointing-past-the-file"],
)
def test_an_end_record_in_the_comment_is_part_of_the_comment(data: bytes) -> None:
    """The archive's own end record is the one whose comment runs to the end of the file;
    zipfile takes the quoted one (the last signature) and reads nothing, or fails."""
    try:
        read_by_zipfile = zipfile.ZipFile(io.BytesIO(data)).namelist()
    except zipfile.BadZipFile:
        read_by_zipfile = []
    assert read_by_zipfile == []
    end = _end(data)
    assert end.entries == 2
    records = list(directory.walk(io.BytesIO(data), end))
    assert [r.raw_name for r in records] == [b"a.png", b"b.png"]
    assert zip_directory(data[-directory.TAIL_BYTES :], len(data))


def test_bytes_after_the_archive_leave_the_last_end_record_chosen() -> None:
    """No record's comment reaches the end (something was appended): the last one is the
    end, as zipfile and unzip read it; a quoted record before it changes nothing."""
    data = hostile.empty_end_in_comment() + b"appended by a mail gateway"
    assert _end(data).entries == 2
    plain = hostile.build([("a.png", PNG)]) + b"\0" * 100
    assert _end(plain).entries == 1


def test_zip64_end_record_is_read() -> None:
    # 70,000 entries: past the 16-bit counter, so zipfile writes the zip64 end records.
    data = hostile.too_many(70_000)
    assert b"PK\x06\x06" in data[-200:]
    end = _end(data)
    assert end.entries == 70_000
    counted = directory.census(io.BytesIO(data), end, max_files=10**6, max_records=10**6)
    assert (counted.records, counted.files, counted.complete) == (70_000, 70_000, True)


def test_over_the_limit_is_refused_from_the_end_record_alone() -> None:
    """The end record says 100,000 entries: refused before a single record is read (the
    records here are garbage, so reading any would fail as damage instead)."""
    data = bytearray(hostile.build([("a.png", PNG)]))
    end = data.rfind(b"PK\x05\x06")
    data[end + 8 : end + 12] = struct.pack("<HH", 0xFFFF, 0xFFFF)
    cd = struct.unpack("<I", data[end + 16 : end + 20])[0]
    data[cd : cd + 4] = b"JUNK"
    with pytest.raises(HostileArchive, match="limit is 100 files"):
        open_archive(io.BytesIO(bytes(data)), UnpackLimits(max_entries=100), max_files=100)


def test_an_understated_count_is_caught_by_walking_the_records() -> None:
    data = hostile.understated_count(150)
    assert _end(data).entries == 3
    with pytest.raises(HostileArchive, match="limit is 100 files"):
        open_archive(io.BytesIO(data), UnpackLimits(max_entries=100), max_files=100)
    # Folders count towards the record cap only (twice the file limit).
    folders = hostile.build([(f"d{i}/", b"") for i in range(150)] + [("a.png", PNG)])
    archive = open_archive(io.BytesIO(folders), UnpackLimits(max_entries=100), max_files=100)
    assert len(list(archive.records())) == 151


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"PK\x05\x06",
        b"x" * 100 + b"PK\x05\x06" + struct.pack("<HHHHIIH", 0, 0, 1, 1, 46, 1000, 0),
        hostile.build([])[:-1],
    ],
    ids=["empty", "bare-signature", "points-before-start", "cut-short"],
)
def test_damaged_directories(data: bytes) -> None:
    with pytest.raises(DamagedArchive):
        open_archive(io.BytesIO(data), UnpackLimits(), max_files=10)


def test_zip_directory_sniffs_self_extractors_not_stray_signatures() -> None:
    sfx = hostile.sfx()
    assert zip_directory(sfx[-70_000:], len(sfx))
    # A signature in other data, pointing at no directory record.
    stray = (
        b"\x90" * 5000 + b"PK\x05\x06" + b"\0" * 4 + struct.pack("<HHII", 1, 1, 46, 10) + b"\0\0"
    )
    assert not zip_directory(stray, len(stray))


@pytest.mark.parametrize(
    ("raw", "name"),
    [
        ("Résumé.png".encode("cp437"), "Résumé.png"),
        ("請求書表.png".encode("cp932"), "請求書表.png"),  # 0x5C inside a character
        ("März/Straße.png".encode(), "März/Straße.png"),  # UTF-8 without the flag
        (b"dir\\a.png", "dir\\a.png"),  # a backslash of its own: left to the path check
    ],
)
def test_names_without_the_utf8_flag(raw: bytes, name: str) -> None:
    data = hostile.raw_names([(raw, PNG)])
    [record] = directory.walk(io.BytesIO(data), _end(data))
    assert not record.flags & 0x800
    assert record.raw_name == raw
    assert record_name(record.raw_name, record.flags) == name


def test_a_directory_too_large_to_read_at_once_is_refused() -> None:
    """zipfile reads the whole directory into memory: its size is capped, whatever the
    entry count (names, extra fields and comments may be 64 KiB each)."""
    infos = []
    for i in range(5):
        info = hostile.entry(f"{i}.png")
        info.comment = b"c" * 4000
        infos.append((info, PNG))
    data = hostile.build(infos)
    limits = UnpackLimits(max_directory_bytes=10_000)
    with pytest.raises(HostileArchive, match="central directory is 20"):
        open_archive(io.BytesIO(data), limits, max_files=100)
    archive = open_archive(io.BytesIO(data), UnpackLimits(), max_files=100)
    assert len(list(archive.records())) == 5
