"""One entry's data, opened from its central-directory record alone.

`zipfile.ZipFile` would first build a ZipInfo for every entry of the archive; here one
ZipInfo exists at a time, for the entry being read, and `zipfile.ZipExtFile` inflates it
(the same decompressors and CRC check as `ZipFile.open`). The local header is checked the
way `ZipFile.open` checks it, and one way more: the data it points to must end before the
next entry (or the central directory) starts, so a local header cannot stretch an entry
over bytes the directory gave to another one.
"""

from __future__ import annotations

import struct
import zipfile
from typing import BinaryIO

from services.ingest.directory import Record

LOCAL = b"PK\x03\x04"
LOCAL_SIZE = 30
# 7-Zip's largest LZMA preset for ZIP uses 64 MiB; a larger dictionary is memory on demand.
LZMA_MAX_DICTIONARY = 64 * 1024 * 1024
PATCHED = 0x20
STRONG_ENCRYPTION = 0x40


class EntryRefused(Exception):
    """The entry is not unpacked; the message, for the user, says why."""


def open_entry(handle: BinaryIO, record: Record, *, start: int, bound: int) -> zipfile.ZipExtFile:
    """A reader of the entry's inflated bytes. `start` is its local header's offset in the
    handle, `bound` where the next entry's bytes (or the central directory) start.
    zipfile.BadZipFile when the local header is missing or disagrees with the record,
    NotImplementedError for what zipfile cannot read, EntryRefused for what we refuse."""
    handle.seek(start)
    fixed = handle.read(LOCAL_SIZE)
    if len(fixed) != LOCAL_SIZE:
        raise zipfile.BadZipFile("Truncated file header")
    signature, name_length, extra_length = struct.unpack("<4s22xHH", fixed)
    if signature != LOCAL:
        raise zipfile.BadZipFile("Bad magic number for file header")
    name = handle.read(name_length) if name_length == len(record.raw_name) else b""
    if name != record.raw_name:
        raise zipfile.BadZipFile(
            f"the file names in its directory record and local header differ "
            f"({name_length} bytes, not {len(record.raw_name)}, or other bytes)"
        )
    data = start + LOCAL_SIZE + name_length + extra_length
    if data + record.compressed_size > bound:
        raise zipfile.BadZipFile("its local header puts its data past the start of the next entry")
    if record.flags & PATCHED:
        raise NotImplementedError("compressed patched data (flag bit 5)")
    if record.flags & STRONG_ENCRYPTION:
        raise NotImplementedError("strong encryption (flag bit 6)")
    handle.seek(data)
    if record.method == zipfile.ZIP_LZMA:
        dictionary = _lzma_dictionary(handle.read(9))
        if dictionary > LZMA_MAX_DICTIONARY:
            raise EntryRefused(
                f"the entry's LZMA dictionary ({dictionary} bytes) is larger than the "
                f"{LZMA_MAX_DICTIONARY} bytes ByteReview allows; re-pack it with Deflate"
            )
        handle.seek(data)
    info = zipfile.ZipInfo()
    info.flag_bits = record.flags
    info.compress_type = record.method
    info.compress_size = record.compressed_size
    info.file_size = record.uncompressed_size
    info.CRC = record.crc
    return zipfile.ZipExtFile(handle, "r", info)


def _lzma_dictionary(head: bytes) -> int:
    """The dictionary size an LZMA entry's properties ask for (0 if they cannot be read:
    inflating it will then fail on its own). The decoder allocates that much and fills it
    as it inflates, so an entry asking for 4 GiB would hold up to 4 GiB in memory."""
    # Version (2 bytes), properties size (2), then properties: lc/lp/pb (1), dictionary (4).
    if len(head) < 9:
        return 0
    return int(struct.unpack("<I", head[5:9])[0])
