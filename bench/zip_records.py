"""Archives of many stored entries, written record by record for the ingest benches
(`ingest_unpack.py --entries`, `hostile_archive_memory.py`): zipfile's own writer keeps a
ZipInfo per entry, the very memory those benches measure. Zip64 end records, as real tools
write them for archives this large."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from pathlib import Path


def write_stored_archive(
    path: Path,
    entries: int,
    name: Callable[[int], str],
    data: bytes = b"",
    *,
    claimed: int | None = None,
) -> None:
    """`entries` stored copies of `data`, entry i named `name(i)`; the end records claim
    `claimed` entries (default: the truth; fewer makes an archive that understates)."""
    crc = zlib.crc32(data)
    offsets: list[int] = []
    with path.open("wb") as out:
        for i in range(entries):
            raw = name(i).encode()
            offsets.append(out.tell())
            local = struct.pack(
                "<4sHHHHHIIIHH", b"PK\x03\x04", 20, 0, 0, 0, 0x21, crc, len(data), len(data),
                len(raw), 0,
            )  # fmt: skip
            out.write(local + raw + data)
        start = out.tell()
        for i, offset in enumerate(offsets):
            raw = name(i).encode()
            central = struct.pack(
                "<4sHHHHHHIIIHHHHHII", b"PK\x01\x02", 0x031E, 20, 0, 0, 0, 0x21, crc,
                len(data), len(data), len(raw), 0, 0, 0, 0, 0o100644 << 16, offset,
            )  # fmt: skip
            out.write(central + raw)
        end = out.tell()
        count = entries if claimed is None else claimed
        out.write(
            struct.pack(
                "<4sQHHIIQQQQ", b"PK\x06\x06", 44, 45, 45, 0, 0, count, count, end - start, start
            )
        )
        out.write(struct.pack("<4sIQI", b"PK\x06\x07", 0, end, 1))
        out.write(
            struct.pack(
                "<4sHHHHIIH", b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0
            )
        )
