"""A ZIP archive's central directory, read with bounded memory.

`zipfile.ZipFile` turns every central-directory record into a ZipInfo (~0.5 KiB each)
before anyone can count them: a million-entry archive costs ~600 MB just to open. The
end-of-central-directory record (zip64 too) says how many entries there are, and walking
the records streams through the directory with constant memory, so an archive over the
entry limit is refused before anything per entry is built; planning and unpacking walk it
the same way (services/ingest/planning.py), so no ZipInfo list is ever built. Offsets are
resolved the way `zipfile` and `unzip` do, so data before the archive (self-extracting
archives) is fine.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

EOCD = b"PK\x05\x06"
EOCD64 = b"PK\x06\x06"
EOCD64_LOCATOR = b"PK\x06\x07"
CENTRAL = b"PK\x01\x02"
EOCD_SIZE = 22
EOCD64_SIZE = 56
LOCATOR_SIZE = 20
CENTRAL_SIZE = 46
# The end record sits within the last 64 KiB (its comment) plus its own 22 bytes.
TAIL_BYTES = (1 << 16) + EOCD_SIZE  # zipfile reads this much too
READ_CHUNK = 1024 * 1024


class DirectoryError(ValueError):
    """The archive's directory cannot be found or does not add up."""


@dataclass(frozen=True, slots=True)
class DirectoryEnd:
    """What the end-of-central-directory record (or its zip64 twin) says."""

    entries: int
    size: int
    # Where the directory really starts, data before the archive included.
    start: int
    # Bytes before the archive's own offset 0 (an SFX stub, or 0).
    prefix: int
    # The end record is that of one part of a split (multi-part, "spanned") archive: its
    # records' offsets are in other parts' files.
    split: bool = False


@dataclass(frozen=True, slots=True)
class Record:
    """One central-directory record, without building a ZipInfo."""

    index: int
    raw_name: bytes
    flags: int
    method: int
    compressed_size: int
    uncompressed_size: int
    crc: int
    header_offset: int
    external_attr: int
    create_system: int

    @property
    def is_dir(self) -> bool:
        return self.raw_name.endswith(b"/")


def find_end(tail: bytes, size: int) -> DirectoryEnd | None:
    """The directory end described by the last bytes of a file of `size` bytes, or None.

    `tail` must be the file's last min(size, TAIL_BYTES) bytes. The end record is the last
    thing a ZIP writer writes but its comment, and a comment may itself hold the record's
    signature (another archive's end, quoted, or a fake one). `zipfile` takes the last
    signature for the end, so such an archive read as damaged, or as empty. Here a record
    lying inside an earlier record's comment is part of that comment; of the others whose
    directory adds up, the last is the end (bytes appended after an archive, which zipfile
    and unzip read past, are no comment of it).
    """
    chosen: DirectoryEnd | None = None
    quoted_until = 0  # the end of the chosen records' comments, in `tail`
    at = tail.find(EOCD)
    while at >= 0:
        found = None if at < quoted_until else _end_at(tail, size, at)
        if found is not None:
            chosen, comment = found
            quoted_until = at + EOCD_SIZE + comment
        at = tail.find(EOCD, at + 1)
    return chosen


def _end_at(tail: bytes, size: int, at: int) -> tuple[DirectoryEnd, int] | None:
    """The directory end the record at `at` in `tail` describes, and its comment's length;
    None if it is cut short or its directory does not fit before it."""
    if len(tail) - at < EOCD_SIZE:
        return None
    (_, disk, directory_disk, _, entries, cd_size, cd_offset, comment) = struct.unpack(
        "<4sHHHHIIH", tail[at : at + EOCD_SIZE]
    )
    position = size - len(tail) + at  # of the end record within the file
    records_end = position
    locator = at - LOCATOR_SIZE
    if locator >= 0 and tail[locator : locator + 4] == EOCD64_LOCATOR:
        _, disk, _, disks = struct.unpack("<4sIQI", tail[locator:at])
        if disk != 0 or disks > 1:
            return None  # multi-disk archives: refused by zipfile too
        record = locator - EOCD64_SIZE
        if record >= 0 and tail[record : record + 4] == EOCD64:
            (_, _, _, _, disk, directory_disk, _, entries, cd_size, cd_offset) = struct.unpack(
                "<4sQHHIIQQQQ", tail[record:locator]
            )
            records_end = position - LOCATOR_SIZE - EOCD64_SIZE
    prefix = records_end - cd_size - cd_offset
    if prefix < 0:
        return None
    end = DirectoryEnd(
        entries=entries,
        size=cd_size,
        start=cd_offset + prefix,
        prefix=prefix,
        split=disk != 0 or directory_disk != 0,
    )
    return end, comment


def read_end(handle: BinaryIO) -> DirectoryEnd:
    """The directory end of a seekable archive; DirectoryError if there is none."""
    size = handle.seek(0, 2)
    handle.seek(max(0, size - TAIL_BYTES))
    tail = handle.read(TAIL_BYTES)
    end = find_end(tail, size)
    if end is None:
        raise DirectoryError("it has no end-of-central-directory record")
    return end


class _Chunks:
    """Reads exact byte counts from a handle through a buffer, so small reads stay cheap on
    network storage. Each read seeks to where the last one ended, so the handle may be used
    for other reads (entries' data) while a walk is paused."""

    def __init__(self, handle: BinaryIO, start: int) -> None:
        self._handle = handle
        self._next = start
        self._buffer = b""
        self._at = 0

    def take(self, count: int) -> bytes:
        while len(self._buffer) - self._at < count:
            # The rest of the buffer is smaller than one record: drop the buffer before
            # reading the next chunk, so at most two chunks are ever in memory.
            rest = self._buffer[self._at :]
            self._buffer = b""
            self._handle.seek(self._next)
            more = self._handle.read(max(READ_CHUNK, count))
            if not more:
                raise DirectoryError("the central directory is truncated")
            self._next += len(more)
            self._buffer = rest + more if rest else more
            self._at = 0
        out = self._buffer[self._at : self._at + count]
        self._at += count
        return out


def walk(handle: BinaryIO, end: DirectoryEnd) -> Iterator[Record]:
    """The directory's records in order, streamed with constant memory (the same records
    `zipfile` would build ZipInfos for: it too reads until `end.size` bytes are consumed)."""
    chunks = _Chunks(handle, end.start)
    consumed = 0
    index = 0
    while consumed < end.size:
        fixed = chunks.take(CENTRAL_SIZE)
        if fixed[:4] != CENTRAL:
            raise DirectoryError("the central directory is damaged (bad record signature)")
        (
            made_by,
            flags,
            method,
            crc,
            compressed,
            uncompressed,
            name_len,
            extra_len,
            comment_len,
            external,
            offset,
        ) = struct.unpack("<4xH2xHH4xIIIHHH4xII", fixed)
        name = chunks.take(name_len)
        extra = chunks.take(extra_len)
        chunks.take(comment_len)
        compressed, uncompressed, offset = _zip64_sizes(extra, compressed, uncompressed, offset)
        yield Record(
            index=index,
            raw_name=name,
            flags=flags,
            method=method,
            compressed_size=compressed,
            uncompressed_size=uncompressed,
            crc=crc,
            header_offset=offset,
            external_attr=external,
            create_system=made_by >> 8,
        )
        consumed += CENTRAL_SIZE + name_len + extra_len + comment_len
        index += 1


def _zip64_sizes(
    extra: bytes, compressed: int, uncompressed: int, offset: int
) -> tuple[int, int, int]:
    """Sizes and offset with the zip64 extra field's 64-bit values where the record says
    so (the values that are 0xFFFFFFFF, in this order, as zipfile reads them)."""
    at = 0
    while at + 4 <= len(extra):
        tag, length = struct.unpack("<HH", extra[at : at + 4])
        if tag != 0x0001:
            at += 4 + length
            continue
        values = extra[at + 4 : at + 4 + length]
        wide = [v for (v,) in struct.iter_unpack("<Q", values[: len(values) // 8 * 8])]
        if uncompressed == 0xFFFFFFFF and wide:
            uncompressed = wide.pop(0)
        if compressed == 0xFFFFFFFF and wide:
            compressed = wide.pop(0)
        if offset == 0xFFFFFFFF and wide:
            offset = wide.pop(0)
        break
    return compressed, uncompressed, offset


@dataclass(frozen=True, slots=True)
class Census:
    """How many records (and how many of them files) a directory holds, counted up to a cap."""

    records: int
    files: int
    complete: bool


def census(
    handle: BinaryIO,
    end: DirectoryEnd,
    *,
    max_files: int,
    max_records: int,
    read: Callable[[int], None] | None = None,
) -> Census:
    """Counts records without keeping them; stops as soon as either cap is passed, so a
    directory that lies about its entry count costs at most `max_records` record reads.
    `read` is told how many records were read, whatever the outcome (damage included)."""
    records = files = 0
    try:
        for record in walk(handle, end):
            records += 1
            if not record.is_dir:
                files += 1
            if files > max_files or records > max_records:
                return Census(records, files, complete=False)
        return Census(records, files, complete=True)
    finally:
        if read is not None:
            read(records)
