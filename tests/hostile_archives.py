"""The hostile-archive corpus: every archive an attacker (or an unusual tool) may upload, with
the verdict ByteReview must reach on the first delivery.

Deterministic: fixed timestamps and contents, so the same bytes come out on every run.

    .venv/bin/python -m tests.hostile_archives OUT_DIR [--max-entries N]

writes each archive and `expected.json` (the verdicts) to OUT_DIR. The suite
(tests/services/ingest/test_hostile.py) runs every archive through the real ingest worker.

Expected verdicts name the upload's status and a phrase of its error, and, per unpacked
file, its status (and a phrase of its error), by path relative to the upload.
"""

from __future__ import annotations

import argparse
import io
import json
import struct
import tarfile
import unicodedata
import zipfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bytereview.core.limits import MAX_IMAGE_PIXELS
from tests.archives import PNG, invoice
from tests.hostile_documents import (
    gif_large_frame,
    jpeg_late_frame,
    jpeg_scan_bomb,
    png_chunks,
    png_header_bomb,
    png_late_header,
    tiff_header,
    tiff_strips,
    webp_frames,
)

DATE = (2026, 3, 1, 12, 0, 0)
MIB = 1024 * 1024
SFX_STUB = b"MZ" + b"\x90" * 62 + b"This program cannot be run in DOS mode.\r\n$" + b"\0" * 1900


@dataclass(frozen=True)
class Expect:
    status: str
    error: str = ""
    # (path inside the upload, status, phrase of its error): one file each
    files: list[tuple[str, str, str]] = field(default_factory=list)
    # At most this many files may come out of the upload (every level).
    max_files: int | None = None


@dataclass(frozen=True)
class Case:
    name: str
    data: bytes
    expect: Expect


# -- building blocks -------------------------------------------------------------------------


def entry(name: str, *, method: int = zipfile.ZIP_DEFLATED, mode: int = 0o644) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, DATE)
    info.compress_type = method
    info.create_system = 3
    info.external_attr = (0o100000 | mode) << 16
    return info


def build(entries: Sequence[tuple[zipfile.ZipInfo | str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for item, data in entries:
            info = item if isinstance(item, zipfile.ZipInfo) else entry(item)
            archive.writestr(info, data)
    return buffer.getvalue()


def listed(files: dict[str, tuple[str, str]]) -> list[tuple[str, str, str]]:
    return [(path, status, error) for path, (status, error) in files.items()]


def _central_records(data: bytes) -> list[int]:
    end = data.rfind(b"PK\x05\x06")
    count, _, offset = struct.unpack("<HII", data[end + 10 : end + 20])
    records = []
    at = offset
    for _ in range(count):
        records.append(at)
        name, extra, comment = struct.unpack("<HHH", data[at + 28 : at + 34])
        at += 46 + name + extra + comment
    return records


def patch(
    data: bytes,
    index: int,
    *,
    method: int | None = None,
    crc: int | None = None,
    size: int | None = None,
    compressed: int | None = None,
    flags: int = 0,
    data_at: tuple[int, bytes] | None = None,
) -> bytes:
    """Rewrite one entry's fields in both its local header and its directory record."""
    out = bytearray(data)
    central = _central_records(data)[index]
    (local,) = struct.unpack("<I", out[central + 42 : central + 46])
    for header, base in ((local, 6), (central, 8)):
        if flags:
            (old,) = struct.unpack("<H", out[header + base : header + base + 2])
            out[header + base : header + base + 2] = struct.pack("<H", old | flags)
        if method is not None:
            out[header + base + 2 : header + base + 4] = struct.pack("<H", method)
        if crc is not None:
            out[header + base + 8 : header + base + 12] = struct.pack("<I", crc)
        if compressed is not None:
            out[header + base + 12 : header + base + 16] = struct.pack("<I", compressed)
        if size is not None:
            out[header + base + 16 : header + base + 20] = struct.pack("<I", size)
    if data_at is not None:
        name, extra = struct.unpack("<HH", out[local + 26 : local + 30])
        start = local + 30 + name + extra + data_at[0]
        out[start : start + len(data_at[1])] = data_at[1]
    return bytes(out)


def zip64_declared_size(size: int) -> bytes:
    """A stored entry whose directory record declares `size` bytes through a zip64 extra
    field (up to 2**64 - 1, past what a signed 64-bit field holds), and a good entry."""
    data = build([(entry("bad.png", method=zipfile.ZIP_STORED), PNG), ("ok.png", PNG)])
    first, second = _central_records(data)
    name_length = struct.unpack("<H", data[first + 28 : first + 30])[0]
    record = bytearray(data[first:second])
    record[24:28] = struct.pack("<I", 0xFFFFFFFF)
    record[30:32] = struct.pack("<H", 12)
    record[46 + name_length : 46 + name_length] = struct.pack("<HHQ", 1, 8, size)
    out = bytearray(data[:first] + record + data[second:])
    end = out.rfind(b"PK\x05\x06")
    (cd_size,) = struct.unpack("<I", out[end + 12 : end + 16])
    out[end + 12 : end + 16] = struct.pack("<I", cd_size + 12)
    return bytes(out)


def raw_names(entries: list[tuple[bytes, bytes]]) -> bytes:
    """Entries whose names are the given bytes, without the UTF-8 flag (as old tools and
    Windows Explorer write them): built with ASCII stand-ins of the same length, then the
    name bytes are put in place in both headers."""
    stand_ins = [(f"{i:0{len(raw)}d}"[-len(raw) :], raw) for i, (raw, _) in enumerate(entries)]
    data = build([(entry(s), body) for (s, _), (_, body) in zip(stand_ins, entries, strict=True)])
    out = bytearray(data)
    for central in _central_records(data):
        (local,) = struct.unpack("<I", out[central + 42 : central + 46])
        (length,) = struct.unpack("<H", out[central + 28 : central + 30])
        stand_in = bytes(out[central + 46 : central + 46 + length]).decode()
        raw = dict(stand_ins)[stand_in]
        out[central + 46 : central + 46 + length] = raw
        out[local + 30 : local + 30 + length] = raw
    return bytes(out)


def overlapping() -> bytes:
    """Two directory records pointing at one local file: the classic overlap bomb."""
    data = build([("a.pdf", invoice("1")), ("b.pdf", invoice("2"))])
    first, second = _central_records(data)
    out = bytearray(data)
    out[second + 42 : second + 46] = out[first + 42 : first + 46]
    return bytes(out)


def quoted_overlap() -> bytes:
    """Fifield's quoted overlap: an entry's data runs on over the next entry's local header
    (its compressed size covers it), so one kernel is inflated again and again."""
    data = build([(entry("a.bin", method=zipfile.ZIP_STORED), b"A" * 64), ("b.pdf", invoice("2"))])
    return patch(data, 0, compressed=64 + 30 + len("b.pdf") + 40, size=200)


def many_small_bombs(count: int) -> bytes:
    return build([(f"bomb/{i:04d}.bin", b"\0" * MIB) for i in range(count)])


def nested_bomb() -> bytes:
    inner = build([(f"z{i:02d}.bin", b"\0" * MIB) for i in range(24)])
    middle = build([(f"inner{i}.zip", inner) for i in range(8)])
    return build([("middle.zip", middle), ("ok.png", PNG)])


def deep(levels: int) -> bytes:
    data = build([("bottom.png", PNG)])
    for level in range(levels, 0, -1):
        data = build([(f"level{level}.zip", data), (f"at{level}.png", PNG)])
    return data


def symlink() -> bytes:
    link = entry("link.pdf", mode=0o777)
    link.external_attr = 0o120777 << 16
    return build([(link, b"/etc/passwd"), ("ok.png", PNG)])


def special_files() -> bytes:
    """Entries marked as a named pipe and a character device (`unzip` would make them so)."""
    fifo = entry("pipe.png")
    fifo.external_attr = 0o010644 << 16
    device = entry("tty.png")
    device.external_attr = 0o020644 << 16
    return build([(fifo, PNG), (device, PNG), ("ok.png", PNG)])


def utf8_names(names: Sequence[str]) -> bytes:
    """Entries named exactly so, flagged UTF-8 (zipfile would keep the names as they are)."""
    return build([(entry(name), PNG) for name in names])


def reordered_marks(chars: int) -> str:
    """A name of `chars` combining marks in the reverse of their canonical order (U+0301 is
    of class 230, U+0316 of 220): NFC sorts them with an insertion sort, quadratic in the
    run. 32,700 marks (a 64 KiB name) took 1.5 CPU-s, once per walk of the directory."""
    return "a" + "\u0301" * (chars // 2) + "\u0316" * (chars // 2) + ".png"


def split_last_part() -> bytes:
    """The last part of a split archive (zip -s): its end record says it is disk 1, and a
    record's entry starts at offset 0 of disk 1 (another file), where disk 0's first entry
    starts in this one. Read as a whole archive, the two entries overlapped: "a zip bomb"."""
    data = bytearray(build([("a.png", PNG), ("b.png", PNG)]))
    second = _central_records(bytes(data))[1]
    data[second + 34 : second + 36] = struct.pack("<H", 1)  # its disk
    data[second + 42 : second + 46] = struct.pack("<I", 0)  # its offset there
    end = data.rfind(b"PK\x05\x06")
    data[end + 4 : end + 8] = struct.pack("<HH", 1, 1)  # this disk, the directory's
    return bytes(data)


def tar_of(name: str, data: bytes) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        member = tarfile.TarInfo(name)
        member.size = len(data)
        member.mtime = 1_772_366_400  # DATE: the same bytes on every run
        tar.addfile(member, io.BytesIO(data))
    return out.getvalue()


def office(part: str) -> bytes:
    """An Office Open XML document as Office writes it: `[Content_Types].xml` first."""
    return build([("[Content_Types].xml", b"<Types/>"), (part, b"<doc/>"), ("media/a.png", PNG)])


def office_exported(part: str, *, content_types_at: int = -1) -> bytes:
    """An Office Open XML document as libraries and exporters write it (or anything that
    re-zips one): `[Content_Types].xml` anywhere but first (last by default), its main part
    and embedded picture first."""
    folder = part.split("/", 1)[0]
    parts = [
        (part, b"<doc/>"),
        (f"{folder}/media/image1.png", PNG),
        (f"{folder}/_rels/document.xml.rels", b"<Relationships/>"),
        ("docProps/core.xml", b"<cp:coreProperties/>"),
    ]
    at = len(parts) if content_types_at < 0 else content_types_at
    assert at > 0, "first is how Office writes it: office()"
    parts.insert(at, ("[Content_Types].xml", b"<Types/>"))
    return build(parts)


def opendocument() -> bytes:
    mimetype = entry("mimetype", method=zipfile.ZIP_STORED)
    return build([(mimetype, b"application/vnd.oasis.opendocument.text"), ("content.xml", b"<x/>")])


def opc(parts: Sequence[tuple[str, bytes]], *, content_types_at: int = -1) -> bytes:
    """An Open Packaging Conventions package: its relationships `_rels/.rels` first, then
    `parts`, and `[Content_Types].xml` at `content_types_at` (last by default; 0 is first,
    as Office applications write it)."""
    listed_parts = [("_rels/.rels", b"<Relationships/>"), *parts]
    at = len(listed_parts) if content_types_at < 0 else content_types_at
    listed_parts.insert(at, ("[Content_Types].xml", b"<Types/>"))
    return build(listed_parts)


def xps(*, content_types_at: int = -1) -> bytes:
    """An XPS (or OpenXPS) document as printers to XPS lay it out."""
    return opc(
        [
            ("FixedDocSeq.fdseq", b"<FixedDocumentSequence/>"),
            ("Documents/1/FixedDoc.fdoc", b"<FixedDocument/>"),
            ("Documents/1/Pages/1.fpage", b"<FixedPage/>"),
            ("Documents/1/Resources/Images/1.png", PNG),
        ],
        content_types_at=content_types_at,
    )


def visio() -> bytes:
    """A Visio drawing (.vsdx) as Visio writes it: `[Content_Types].xml` first."""
    return opc(
        [
            ("visio/document.xml", b"<VisioDocument/>"),
            ("visio/pages/page1.xml", b"<PageContents/>"),
            ("visio/media/image1.png", PNG),
        ],
        content_types_at=0,
    )


def model_3mf() -> bytes:
    """A 3MF model: its model part in `3D/`, a thumbnail beside it."""
    return opc([("3D/3dmodel.model", b"<model/>"), ("Metadata/thumbnail.png", PNG)])


def opc_other() -> bytes:
    """An OPC package of a kind ByteReview has no name for."""
    return opc([("content/main.xml", b"<main/>"), ("content/media/a.png", PNG)])


def zipped_package(
    media_type: bytes,
    parts: Sequence[tuple[str, bytes]],
    *,
    mimetype_at: int,
    method: int = zipfile.ZIP_DEFLATED,
) -> bytes:
    """A `mimetype` package (OpenDocument, EPUB) as anything that re-zips one writes it:
    `mimetype` at `mimetype_at` (-1: last), compressed with `method`."""
    listed_parts: list[tuple[zipfile.ZipInfo | str, bytes]] = list(parts)
    at = len(listed_parts) if mimetype_at < 0 else mimetype_at
    listed_parts.insert(at, (entry("mimetype", method=method), media_type))
    return build(listed_parts)


def rezipped_opendocument(*, mimetype_at: int = -1, method: int = zipfile.ZIP_DEFLATED) -> bytes:
    return zipped_package(
        b"application/vnd.oasis.opendocument.text",
        [
            ("content.xml", b"<office:document-content/>"),
            ("Pictures/1.png", PNG),
            ("META-INF/manifest.xml", b"<manifest:manifest/>"),
        ],
        mimetype_at=mimetype_at,
        method=method,
    )


def rezipped_epub(*, mimetype_at: int = -1, method: int = zipfile.ZIP_DEFLATED) -> bytes:
    return zipped_package(
        b"application/epub+zip",
        [
            ("META-INF/container.xml", b"<container/>"),
            ("OEBPS/content.opf", b"<package/>"),
            ("OEBPS/images/cover.png", PNG),
        ],
        mimetype_at=mimetype_at,
        method=method,
    )


def encrypted() -> bytes:
    return patch(build([("secret.pdf", b"ciphertext"), ("ok.png", PNG)]), 0, flags=0x1)


def too_many(count: int) -> bytes:
    return build([(entry(f"f{i}.png", method=zipfile.ZIP_STORED), PNG) for i in range(count)])


def understated_count(count: int) -> bytes:
    """More directory records than the end record admits (as 16-bit counters wrap)."""
    data = bytearray(too_many(count))
    end = data.rfind(b"PK\x05\x06")
    data[end + 8 : end + 12] = struct.pack("<HH", 3, 3)
    return bytes(data)


def nested_over_budget(per_archive: int) -> bytes:
    inner = too_many(per_archive)
    return build([("one.zip", inner), ("two.zip", inner)])


def nested_folder_records(archives: int, folders: int) -> bytes:
    """Nested archives listing `folders` folder records and one file each. Folders cost no
    file, so only the upload's budget of directory reads bounds how many records are read
    in all: thousands of such archives were an hour of a worker's CPU."""
    inner = build([*((f"d{i}/", b"") for i in range(folders)), ("a.png", PNG)])
    return build([(f"n{i}.zip", inner) for i in range(archives)])


def sfx() -> bytes:
    return SFX_STUB + build([("a.png", PNG), ("b.pdf", invoice("SFX"))])


def commented(comment: bytes) -> bytes:
    """Two images in an archive whose comment is `comment`, as zipfile writes it."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.comment = comment
        for name in ("a.png", "b.png"):
            archive.writestr(entry(name), PNG)
    return buffer.getvalue()


def end_record(*, entries: int, size: int, offset: int, comment: int = 0) -> bytes:
    """An end-of-central-directory record (without its comment) saying these numbers."""
    return b"PK\x05\x06" + struct.pack("<HHHHIIH", 0, 0, entries, entries, size, offset, comment)


def empty_end_in_comment() -> bytes:
    """A comment ending in the end record of an empty archive (another archive's tail,
    quoted): zipfile takes the last signature and reads no entry at all."""
    return commented(b"the empty archive's end: " + end_record(entries=0, size=0, offset=0))


def bad_end_in_comment() -> bytes:
    """A comment holding an end record whose directory cannot lie before it: zipfile takes
    it and calls the archive damaged."""
    fake = end_record(entries=1, size=46, offset=10**9, comment=3)
    return commented(b"note " + fake + b"end")


def corpus(*, max_entries: int = 10_000) -> list[Case]:
    """Every case, with its expected verdict under an entry limit of `max_entries`."""
    nfc = unicodedata.normalize("NFC", "März.png")
    nfd = unicodedata.normalize("NFD", "März.png")
    shift_jis = "請求書表.png".encode("cp932")  # 表 is 0x95 0x5C: a CP437 backslash
    assert b"\\" in shift_jis
    long_name = "d/" * 520 + "long.png"
    near_limit = "n" * 1015 + ".png"  # fits alone, not behind the upload's own name
    deflate_bad = build([("bad.png", PNG * 4), ("ok.png", PNG)])
    lzma_bad = build([(entry("bad.png", method=zipfile.ZIP_LZMA), PNG * 4), ("ok.png", PNG)])
    bz2_bad = build([(entry("bad.png", method=zipfile.ZIP_BZIP2), PNG * 4), ("ok.png", PNG)])
    stored = build([(entry("bad.png", method=zipfile.ZIP_STORED), PNG), ("ok.png", PNG)])
    half = max_entries * 4 // 5
    side = int(MAX_IMAGE_PIXELS**0.5) + 100  # a few KiB of PNG, 50 Mpx decoded
    ok = ("READY", "")
    return [
        Case("overlap.zip", overlapping(), Expect("FAILED", "overlap")),
        # An end record quoted in the archive's comment is not the archive's end.
        Case(
            "empty-end-in-comment.zip",
            empty_end_in_comment(),
            Expect("UNPACKED", files=listed({"a.png": ok, "b.png": ok})),
        ),
        Case(
            "bad-end-in-comment.zip",
            bad_end_in_comment(),
            Expect("UNPACKED", files=listed({"a.png": ok, "b.png": ok})),
        ),
        Case("quoted-overlap.zip", quoted_overlap(), Expect("FAILED", "overlap")),
        Case("many-small-bombs.zip", many_small_bombs(64), Expect("FAILED", "zip bomb")),
        Case(
            "nested-bomb.zip",
            nested_bomb(),
            Expect("FAILED", "zip bomb", listed({"middle.zip": ("FAILED", "zip bomb")})),
        ),
        Case(
            "deep.zip",
            deep(4),
            Expect(
                "UNPACKED",
                files=listed(
                    {
                        "at1.png": ok,
                        "level1.zip": ("UNPACKED", ""),
                        "level1.zip/at2.png": ok,
                        "level1.zip/level2.zip": ("UNPACKED", ""),
                        "level1.zip/level2.zip/at3.png": ok,
                        "level1.zip/level2.zip/level3.zip": ("FAILED", "nested deeper"),
                    }
                ),
            ),
        ),
        Case("dotdot.zip", build([("a/../../evil.png", PNG)]), Expect("FAILED", "outside")),
        Case("absolute.zip", build([("/etc/evil.png", PNG)]), Expect("FAILED", "absolute")),
        Case("drive.zip", build([("C:\\evil.png", PNG)]), Expect("FAILED", "absolute")),
        Case("unc.zip", build([("\\\\server\\share\\x.png", PNG)]), Expect("FAILED", "absolute")),
        Case("nul.zip", raw_names([(b"ok.png\0.exe", PNG)]), Expect("FAILED", "control")),
        # No name at all (a streaming zipper's input), or only a space: nothing hostile, so
        # those entries fail alone. They refused the whole archive ("an invalid path").
        Case(
            "nameless.zip",
            build([("", PNG), ("a/ ", PNG), ("ok.png", PNG)]),
            Expect(
                "UNPACKED",
                files=listed(
                    {
                        "unnamed entry 1": ("FAILED", "no file name"),
                        "unnamed entry 2": ("FAILED", "no file name"),
                        "ok.png": ("READY", ""),
                    }
                ),
            ),
        ),
        # A name is up to 64 KiB and a verdict is kept to 2,000 characters: quoted whole, the
        # name pushed the reason out of the verdict the user sees.
        Case(
            "long-nul.zip",
            raw_names([(b"a" * 5000 + b"\0.png", PNG)]),
            Expect("FAILED", "has control characters in its name"),
        ),
        Case(
            "long-dotdot.zip",
            build([("../" + "a" * 5000 + ".png", PNG)]),
            Expect("FAILED", "points outside the archive"),
        ),
        Case(
            "backslash-dotdot.zip",
            build([("a\\..\\..\\evil.png", PNG)]),
            Expect("FAILED", "outside"),
        ),
        Case(
            "backslash-folders.zip",
            build([("scans\\2026\\a.png", PNG)]),
            Expect("UNPACKED", files=listed({"scans/2026/a.png": ok})),
        ),
        Case(
            "symlink.zip",
            symlink(),
            Expect(
                "UNPACKED", files=listed({"link.pdf": ("FAILED", "symbolic link"), "ok.png": ok})
            ),
        ),
        Case(
            "encrypted.zip",
            encrypted(),
            Expect("UNPACKED", files=listed({"secret.pdf": ("FAILED", "encrypted"), "ok.png": ok})),
        ),
        Case(
            "ppmd.zip",
            patch(deflate_bad, 0, method=98),
            Expect("UNPACKED", files=listed({"bad.png": ("FAILED", "method 98"), "ok.png": ok})),
        ),
        Case(
            "corrupt-deflate.zip",
            patch(deflate_bad, 0, data_at=(0, b"\xff\xff\xff\xff")),
            Expect("UNPACKED", files=listed({"bad.png": ("FAILED", "damaged"), "ok.png": ok})),
        ),
        Case(
            "corrupt-lzma.zip",
            patch(lzma_bad, 0, data_at=(9, b"\xff" * 24)),
            Expect("UNPACKED", files=listed({"bad.png": ("FAILED", "damaged"), "ok.png": ok})),
        ),
        Case(
            "corrupt-bzip2.zip",
            patch(bz2_bad, 0, data_at=(0, b"XXXX")),
            Expect("UNPACKED", files=listed({"bad.png": ("FAILED", "damaged"), "ok.png": ok})),
        ),
        Case(
            "lzma-4gib-dictionary.zip",
            patch(lzma_bad, 0, data_at=(5, struct.pack("<I", 0xFFFFFFFF))),
            Expect("UNPACKED", files=listed({"bad.png": ("FAILED", "dictionary"), "ok.png": ok})),
        ),
        Case(
            "bad-crc.zip",
            patch(stored, 0, crc=0xDEADBEEF),
            Expect("UNPACKED", files=listed({"bad.png": ("FAILED", "CRC"), "ok.png": ok})),
        ),
        Case(
            "huge-declared-size.zip",
            patch(stored, 0, size=0xFFFFFFF0),
            Expect("UNPACKED", files=listed({"bad.png": ("FAILED", "larger than"), "ok.png": ok})),
        ),
        Case(
            "zip64-huge-declared-size.zip",
            zip64_declared_size(2**64 - 1),
            Expect("UNPACKED", files=listed({"bad.png": ("FAILED", "larger than"), "ok.png": ok})),
        ),
        Case(
            "understated-size.zip",
            patch(deflate_bad, 0, size=10),
            Expect("UNPACKED", files=listed({"bad.png": ("FAILED", "damaged"), "ok.png": ok})),
        ),
        Case(
            "truncated.zip",
            build([("a.png", PNG), ("b.pdf", invoice("T"))])[:-30],
            Expect("FAILED", "damaged"),
        ),
        Case("too-many.zip", too_many(max_entries + 1), Expect("FAILED", "limit")),
        Case(
            "understated-count.zip",
            understated_count(max_entries + 5),
            Expect("FAILED", "limit"),
        ),
        Case(
            "nested-over-budget.zip",
            nested_over_budget(half),
            Expect(
                "UNPACKED",
                files=listed({"one.zip": ("UNPACKED", ""), "two.zip": ("FAILED", "more fit")}),
                max_files=max_entries,
            ),
        ),
        Case(
            # Within every archive's limits, but more folder records in all than one
            # upload's: three archives are read, the fourth is refused, and so is the fifth.
            "nested-folder-records.zip",
            nested_folder_records(5, max_entries),
            Expect(
                "UNPACKED",
                files=listed(
                    {
                        "n0.zip": ("UNPACKED", ""),
                        "n0.zip/a.png": ("READY", ""),
                        "n2.zip": ("UNPACKED", ""),
                        "n3.zip": ("FAILED", "too many entries and folders"),
                        "n4.zip": ("FAILED", "too many entries and folders"),
                    }
                ),
                max_files=8,
            ),
        ),
        Case(
            # Sizes declared past the first header read (each 1 x 1 or 0 x 0 by it), and
            # a WebP's frames, all listed by its decoder to read the first.
            "late-image-sizes.zip",
            build(
                [
                    ("late.png", png_late_header(8000, 8000)),
                    ("frame.gif", gif_large_frame(8000, 8000)),
                    ("late.jpg", jpeg_late_frame(8000, 8000)),
                    ("frames.webp", webp_frames(10_001)),
                    ("late.tif", tiff_header(8000, 8000, padding=100_000)),
                    ("ok.png", PNG),
                ]
            ),
            Expect(
                "UNPACKED",
                files=listed(
                    {
                        "late.png": ("FAILED", "8000 x 8000 pixels"),
                        "frame.gif": ("FAILED", "8000 x 8000 pixels"),
                        "late.jpg": ("FAILED", "8000 x 8000 pixels"),
                        "frames.webp": ("FAILED", "more than 10000 chunks"),
                        "late.tif": ("FAILED", "8000 x 8000 pixels"),
                        "ok.png": ("READY", ""),
                    }
                ),
            ),
        ),
        Case(
            "long-names.zip",
            build([(long_name, PNG), (near_limit, PNG), ("ok.png", PNG)]),
            Expect(
                "UNPACKED",
                files=listed(
                    {
                        "d/" * 99 + "d…": ("FAILED", "longer than 1024"),
                        "entry-1": ("FAILED", "longer than 1024"),
                        "ok.png": ok,
                    }
                ),
            ),
        ),
        Case(
            "duplicates.zip",
            build([(nfc, PNG), (nfd, PNG), ("Same.png", PNG), ("same.png", PNG)]),
            Expect(
                "UNPACKED",
                # The second spelling of each name fails: one file per name.
                files=[
                    (nfc, "READY", ""),
                    (nfc, "FAILED", "same name"),
                    ("Same.png", "READY", ""),
                    ("same.png", "FAILED", "same name"),
                ],
            ),
        ),
        Case(
            "sfx.exe",
            sfx(),
            Expect("UNPACKED", files=listed({"a.png": ok, "b.pdf": ok})),
        ),
        Case(
            # A self-extracting archive whose stub is a shell script (unzipsfx, makeself):
            # text first, and a ZIP after it all the same.
            "sfx.sh",
            b'#!/bin/sh\nexec unzip -o "$0"\nexit 0\n' + build([("a.png", PNG)]),
            Expect("UNPACKED", files=listed({"a.png": ok})),
        ),
        Case(
            # Text people upload beside their documents: each is named, with what to do,
            # not "files of type application/octet-stream".
            "texts.zip",
            build(
                [
                    ("notes/readme.txt", "Rechnungen März, bitte prüfen".encode()),
                    ("notes/page.html", b"<!DOCTYPE html><html><body>Invoice</body></html>"),
                    ("notes/invoice.xml", b'<?xml version="1.0"?><Invoice/>'),
                    ("notes/mail.eml", b"Return-Path: <a@example.com>\r\nFrom: a\r\n\r\nhi"),
                    ("notes/letter.rtf", b"{\\rtf1\\ansi Invoice}"),
                    ("scan.png", PNG),
                ]
            ),
            Expect(
                "UNPACKED",
                files=listed(
                    {
                        "notes/readme.txt": ("UNSUPPORTED", "the file is plain text"),
                        "notes/page.html": ("UNSUPPORTED", "a web page (HTML)"),
                        "notes/invoice.xml": ("UNSUPPORTED", "an XML file"),
                        "notes/mail.eml": ("UNSUPPORTED", "upload its attachments"),
                        "notes/letter.rtf": ("UNSUPPORTED", "an RTF document"),
                        "scan.png": ok,
                    }
                ),
            ),
        ),
        Case(
            "cp437.zip",
            raw_names([("Résumé.png".encode("cp437"), PNG), (b"dir/\x9bre.png", PNG)]),
            Expect("UNPACKED", files=listed({"Résumé.png": ok, "dir/¢re.png": ok})),
        ),
        Case(
            "shift-jis.zip",
            raw_names([(shift_jis, PNG), ("フォルダ/ソフト.png".encode("cp932"), PNG)]),
            Expect("UNPACKED", files=listed({"請求書表.png": ok, "フォルダ/ソフト.png": ok})),
        ),
        Case(
            "bsdtar-dot.zip",  # `tar -a -cf x.zip .` (macOS, Windows) names its root "./"
            build([("./", b""), ("./sub/", b""), ("./sub/a.png", PNG)]),
            Expect("UNPACKED", files=listed({"sub/a.png": ok})),
        ),
        Case(
            # Uploaded alone, such a PNG was FAILED; inside an archive it was READY.
            "zero-size-image.zip",
            build(
                [
                    ("empty.png", PNG[:16] + struct.pack(">II", 0, 0) + PNG[24:]),
                    ("thin.png", PNG[:16] + struct.pack(">II", 0, 40) + PNG[24:]),
                    ("ok.png", PNG),
                ]
            ),
            Expect(
                "UNPACKED",
                files=listed(
                    {
                        "empty.png": ("FAILED", "damaged"),
                        "thin.png": ("FAILED", "declares 0 x 40 pixels"),
                        "ok.png": ok,
                    }
                ),
            ),
        ),
        Case(
            "huge-image.zip",
            build([("huge.png", png_header_bomb(side, side)), ("ok.png", PNG)]),
            Expect("UNPACKED", files=listed({"huge.png": ("FAILED", "pixels"), "ok.png": ok})),
        ),
        Case(
            "jpeg-scans.zip",
            build([("scans.jpg", jpeg_scan_bomb(64, 1000)), ("ok.png", PNG)]),
            Expect(
                "UNPACKED",
                files=listed({"scans.jpg": ("FAILED", "holds 1000 scans"), "ok.png": ok}),
            ),
        ),
        Case(
            "tiff-strips.zip",
            build([("strips.tif", tiff_strips(300_000)), ("ok.png", PNG)]),
            Expect(
                "UNPACKED",
                files=listed({"strips.tif": ("FAILED", "TIFF lists"), "ok.png": ok}),
            ),
        ),
        Case(
            "png-chunks.zip",
            build([("chunks.png", png_chunks(20_000)), ("ok.png", PNG)]),
            Expect(
                "UNPACKED",
                files=listed({"chunks.png": ("FAILED", "chunks other"), "ok.png": ok}),
            ),
        ),
        Case(
            # Not an archive: an upload whose width (no pixels to count) overflowed the
            # report's int32, so the report failed on every delivery.
            "wide-and-empty.png",
            PNG[:16] + struct.pack(">II", 2**31, 0) + PNG[24:],
            Expect("FAILED", "pixels"),
        ),
        Case(
            "special-files.zip",
            special_files(),
            Expect(
                "UNPACKED",
                files=listed(
                    {
                        "pipe.png": ("FAILED", "named pipe"),
                        "tty.png": ("FAILED", "character device"),
                        "ok.png": ok,
                    }
                ),
            ),
        ),
        Case(
            # One file on Windows (case, trailing dots and spaces); the jobs service strips
            # the trailing space, so "a.png " would be a second "a.png" in the job.
            "windows-duplicates.zip",
            utf8_names(["scans/a.png", "Scans/A.png.", "scans/a.png ", "scans/b.png"]),
            Expect(
                "UNPACKED",
                files=[
                    ("scans/a.png", "READY", ""),
                    ("Scans/A.png.", "FAILED", "same name"),
                    ("scans/a.png", "FAILED", "same name"),
                    ("scans/b.png", "READY", ""),
                ],
            ),
        ),
        Case(
            # A file and a folder of one name (case-folded): whichever comes first stays.
            "file-and-folder.zip",
            build(
                [("a", PNG), ("a/b.png", PNG), ("c/d/e.png", PNG), ("C/D", PNG), ("ok.png", PNG)]
            ),
            Expect(
                "UNPACKED",
                files=listed(
                    {
                        "a": ok,
                        "a/b.png": ("FAILED", "its folder 'a' has the same name"),
                        "c/d/e.png": ok,
                        "C/D": ("FAILED", "folder of the same name"),
                        "ok.png": ok,
                    }
                ),
            ),
        ),
        Case(
            # Unchecked, x.zip's a.png and this b.png were both "nested-shadow.zip/x.zip/b.png".
            "nested-shadow.zip",
            build([("x.zip", build([("b.png", PNG)])), ("x.zip/b.png", PNG)]),
            Expect(
                "UNPACKED",
                files=listed(
                    {
                        "x.zip": ("UNPACKED", ""),
                        "x.zip/b.png": ("FAILED", "its folder 'x.zip'"),
                    }
                ),
                max_files=3,
            ),
        ),
        Case(
            "trailing-space-dotdot.zip",
            utf8_names(["a/.. /.. /evil.png"]),
            Expect("FAILED", "outside"),
        ),
        Case(
            # "Trojan Source": shown as "invoiceexe.png".
            "bidi-override.zip",
            utf8_names(["invoice\u202egnp.exe", "ok.png"]),
            Expect("FAILED", "control"),
        ),
        Case("c1-control.zip", utf8_names(["a\x85b.png", "ok.png"]), Expect("FAILED", "control")),
        Case("split.zip", split_last_part(), Expect("FAILED", "one part of a split")),
        Case(
            # "Zalgo" text past Unicode's stream-safe bound of 30 marks in a row: refused
            # before it is normalised (a 2.5 KB upload of eight such names took 25 CPU-s).
            "combining-marks.zip",
            utf8_names([reordered_marks(32_700), "ok.png"]),
            Expect("FAILED", "more than 30 combining marks in a row"),
        ),
        Case(
            "renamed-tar.zip",
            tar_of("a.pdf", invoice("TAR")),
            Expect("UNSUPPORTED", "tar archive"),
        ),
        Case("report.docx", office("word/document.xml"), Expect("UNSUPPORTED", "Office document")),
        Case(
            # Documents that are ZIPs inside are not unpacked as archives of their parts.
            "documents.zip",
            build([("book.xlsx", office("xl/workbook.xml")), ("letter.odt", opendocument())]),
            Expect(
                "UNPACKED",
                files=listed(
                    {
                        "book.xlsx": ("UNSUPPORTED", "Office document"),
                        "letter.odt": ("UNSUPPORTED", "OpenDocument"),
                    }
                ),
                max_files=2,
            ),
        ),
        Case(
            # Written by a library: `[Content_Types].xml` last. An upload of its own.
            "exported.docx",
            office_exported("word/document.xml"),
            Expect("UNSUPPORTED", "Office document", max_files=0),
        ),
        Case(
            # ...and inside a user's ZIP, beside a file that is unpacked.
            "exported-documents.zip",
            build(
                [
                    ("book.xlsx", office_exported("xl/workbook.xml", content_types_at=2)),
                    ("slides.pptx", office_exported("ppt/presentation.xml")),
                    ("scan.png", PNG),
                ]
            ),
            Expect(
                "UNPACKED",
                files=listed(
                    {
                        "book.xlsx": ("UNSUPPORTED", "Office document"),
                        "slides.pptx": ("UNSUPPORTED", "Office document"),
                        "scan.png": ok,
                    }
                ),
                max_files=3,
            ),
        ),
        Case(
            # A file of that name in a subfolder (beside an Office folder name at the root)
            # does not make a document: an archive, unpacked.
            "content-types-in-folder.zip",
            build(
                [
                    ("docs/[Content_Types].xml", b"<Types/>"),
                    ("docs/word/document.xml", b"<doc/>"),
                    ("word/scan.png", PNG),
                ]
            ),
            Expect(
                "UNPACKED",
                files=listed(
                    {
                        "docs/[Content_Types].xml": (
                            "UNSUPPORTED",
                            "not read as a printed document",
                        ),
                        "docs/word/document.xml": ("UNSUPPORTED", "not read as a printed document"),
                        "word/scan.png": ok,
                    }
                ),
            ),
        ),
        Case(
            # At the root but without a Word, Excel or PowerPoint folder: an archive too.
            "content-types-alone.zip",
            build([("scans/a.png", PNG), ("[Content_Types].xml", b"<Types/>")]),
            Expect(
                "UNPACKED",
                files=listed(
                    {
                        "[Content_Types].xml": ("UNSUPPORTED", "not read as a printed document"),
                        "scans/a.png": ok,
                    }
                ),
            ),
        ),
        Case(
            # Other packages, wherever their parts sit: one document each, named, never an
            # archive of their parts (each was unpacked, or the Visio drawing called an
            # Office document by its first header).
            "packages.zip",
            build(
                [
                    ("drawing.vsdx", visio()),
                    ("print.xps", xps()),
                    ("part.3mf", model_3mf()),
                    ("other.pkg", opc_other()),
                    ("letter.odt", rezipped_opendocument()),
                    ("book.epub", rezipped_epub(mimetype_at=0)),
                    ("scan.png", PNG),
                ]
            ),
            Expect(
                "UNPACKED",
                files=listed(
                    {
                        "drawing.vsdx": ("UNSUPPORTED", "a Visio drawing"),
                        "print.xps": ("UNSUPPORTED", "an XPS document"),
                        "part.3mf": ("UNSUPPORTED", "a 3MF model"),
                        "other.pkg": ("UNSUPPORTED", "Open Packaging Conventions"),
                        "letter.odt": ("UNSUPPORTED", "an OpenDocument file"),
                        "book.epub": ("UNSUPPORTED", "an EPUB book"),
                        "scan.png": ok,
                    }
                ),
                max_files=7,
            ),
        ),
        Case("printed.xps", xps(), Expect("UNSUPPORTED", "an XPS document", max_files=0)),
        Case("rezipped.epub", rezipped_epub(), Expect("UNSUPPORTED", "an EPUB book", max_files=0)),
        Case(
            # Each name of a package's pair without its companion (or in a folder), the
            # first entry `[Content_Types].xml`: an archive, unpacked. By its first header,
            # it was an Office document and none of its files came out.
            "package-names-alone.zip",
            build(
                [
                    ("[Content_Types].xml", b"<Types/>"),
                    ("mimetype", b"application/vnd.oasis.opendocument.text"),
                    ("docs/_rels/.rels", b"<Relationships/>"),
                    ("docs/META-INF/manifest.xml", b"<manifest/>"),
                    ("3D/scan.png", PNG),
                ]
            ),
            Expect(
                "UNPACKED",
                files=listed(
                    {
                        "[Content_Types].xml": ("UNSUPPORTED", "not read as a printed document"),
                        "mimetype": ("UNSUPPORTED", "not read as a printed document"),
                        "docs/_rels/.rels": ("UNSUPPORTED", "not read as a printed document"),
                        "docs/META-INF/manifest.xml": (
                            "UNSUPPORTED",
                            "not read as a printed document",
                        ),
                        "3D/scan.png": ok,
                    }
                ),
            ),
        ),
        Case(
            "other-archives.zip",
            build([("in.tar", tar_of("a.png", PNG)), ("in.rar", b"Rar!\x1a\x07\x00" + PNG)]),
            Expect(
                "UNPACKED",
                files=listed(
                    {
                        "in.tar": ("UNSUPPORTED", "tar archive"),
                        "in.rar": ("UNSUPPORTED", "RAR archive"),
                    }
                ),
            ),
        ),
        Case(
            "utf8-without-flag.zip",
            raw_names([("März/Straße.png".encode(), PNG)]),
            Expect("UNPACKED", files=listed({"März/Straße.png": ok})),
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--max-entries", type=int, default=10_000)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    expected = {}
    for case in corpus(max_entries=args.max_entries):
        (args.out / case.name).write_bytes(case.data)
        expected[case.name] = asdict(case.expect)
    (args.out / "expected.json").write_text(json.dumps(expected, indent=2, ensure_ascii=False))
    print(f"{len(expected)} archives written to {args.out}")


if __name__ == "__main__":
    main()
