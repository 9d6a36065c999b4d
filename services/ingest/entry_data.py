"""One entry's data, opened from its central-directory record alone.

`zipfile.ZipFile` would first build a ZipInfo for every entry of the archive; here one
ZipInfo exists at a time, for the entry being read, and `zipfile.ZipExtFile` inflates it
(the same decompressors and CRC check as `ZipFile.open`). The local header is checked the
way `ZipFile.open` checks it, and one way more: the data it points to must end before the
next entry (or the central directory) starts, so a local header cannot stretch an entry
over bytes the directory gave to another one.
"""

from __future__ import annotations

import bz2
import lzma
import struct
import zipfile
from typing import Any, BinaryIO, Literal

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
    return BoundedEntryFile(handle, "r", info)


class BoundedEntryFile(zipfile.ZipExtFile):
    """`zipfile.ZipExtFile`, inflating at most what each read asks for with every method.

    zipfile bounds each inflation of a DEFLATE entry (`decompress(data, n)`), but hands
    BZIP2 and LZMA data to their decompressors whole: one read of a 400-byte bzip2 entry
    inflates 512 MiB before anything downstream (the upload's ratio budget) sees a byte,
    and a few KiB inflate gigabytes. Here those two inflate at most `n` bytes per read,
    keeping the rest of their input inside the decompressor; the CRC and size checks are
    zipfile's own. Relies on ZipExtFile's internals (`_read1`, `_read2`, `_update_crc`,
    `_left`, `_eof`), stable since Python 3.7 and covered by the unpacker's tests."""

    def __init__(self, fileobj: BinaryIO, mode: Literal["r"], info: zipfile.ZipInfo) -> None:
        super().__init__(fileobj, mode, info)
        self._bounded: bz2.BZ2Decompressor | _RawLzma | None = None
        if info.compress_type == zipfile.ZIP_BZIP2:
            self._bounded = bz2.BZ2Decompressor()
        elif info.compress_type == zipfile.ZIP_LZMA:
            self._bounded = _RawLzma()

    def _read1(self, n: int) -> bytes:
        bounded = self._bounded
        # ZipExtFile's internals are not in its type stubs.
        this: Any = self
        if bounded is None:
            return bytes(this._read1_unbounded(n))
        if this._eof or n <= 0:
            return b""
        data = this._read2(n) if bounded.needs_input else b""
        out = bounded.decompress(data, max(n, self.MIN_READ_SIZE))
        this._eof = bounded.eof or (this._compress_left <= 0 and bounded.needs_input)
        out = out[: this._left]
        this._left -= len(out)
        if this._left <= 0:
            this._eof = True
        this._update_crc(out)
        return out

    def _read1_unbounded(self, n: int) -> bytes:
        return bytes(zipfile.ZipExtFile._read1(self, n))  # type: ignore[attr-defined]


class _RawLzma:
    """zipfile's LZMA format (a 4-byte header, the properties, then raw LZMA1 data) with
    the `max_length` of the standard decompressors, which zipfile.LZMADecompressor lacks."""

    def __init__(self) -> None:
        self._head = b""
        self._inner: lzma.LZMADecompressor | None = None
        self.eof = False

    @property
    def needs_input(self) -> bool:
        return self._inner is None or self._inner.needs_input

    def decompress(self, data: bytes, max_length: int) -> bytes:
        if self._inner is None:
            self._head += data
            if len(self._head) < 4:
                return b""
            (size,) = struct.unpack("<H", self._head[2:4])
            if len(self._head) < 4 + size:
                return b""
            # As zipfile.LZMADecompressor reads them.
            properties = lzma._decode_filter_properties(  # type: ignore[attr-defined]
                lzma.FILTER_LZMA1, self._head[4 : 4 + size]
            )
            self._inner = lzma.LZMADecompressor(lzma.FORMAT_RAW, filters=[properties])
            data, self._head = self._head[4 + size :], b""
        out = self._inner.decompress(data, max_length)
        self.eof = self._inner.eof
        return out


def _lzma_dictionary(head: bytes) -> int:
    """The dictionary size an LZMA entry's properties ask for (0 if they cannot be read:
    inflating it will then fail on its own). The decoder allocates that much and fills it
    as it inflates, so an entry asking for 4 GiB would hold up to 4 GiB in memory."""
    # Version (2 bytes), properties size (2), then properties: lc/lp/pb (1), dictionary (4).
    if len(head) < 9:
        return 0
    return int(struct.unpack("<I", head[5:9])[0])
