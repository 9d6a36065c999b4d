"""A TIFF's page directories (IFDs) walked with struct alone, before Pillow parses them.

Pillow unpacks every number of a page's directory into a Python object (a strip offset,
a byte count, a colour-map entry) and makes a tile of every strip: ~170 bytes of memory
per number, so an 8 MB page of a million one-row strips takes 340 MB to open, an 80 MB one
more than a worker has, whatever its pixels. Pillow bounds a directory's data by the file's
size only. Here the numbers each directory holds are counted (12 or 20 bytes read per
entry, nothing unpacked) and judged, page by page, before Pillow is given the file.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

from bytereview.core.declared_pixels import pixels_problem
from bytereview.core.limits import MAX_TIFF_PAGE_ENTRIES, MAX_TIFF_PAGE_VALUES

__all__ = ["page_problem", "page_values"]

# Field types Pillow unpacks into a tuple of numbers (TIFF 6 and BigTIFF). BYTE (1), ASCII
# (2) and UNDEFINED (7) stay bytes or a string: one object per field.
_NUMBERS = frozenset({3, 4, 5, 6, 8, 9, 10, 11, 12, 13, 16, 17, 18})
# Offsets a file may hold (seek takes a signed 64-bit one).
_MAX_OFFSET = 1 << 63
# Field types a page's width or height may have: SHORT, LONG, LONG8 (BigTIFF).
_SIZES = {3: "H", 4: "I", 16: "Q"}


@dataclass(frozen=True, slots=True)
class _Page:
    values: int  # numbers Pillow would unpack from the page's directory
    width: int  # ImageWidth and ImageLength, as Pillow reads them (0 if absent)
    height: int


def page_values(handle: IO[bytes], pages: int) -> Iterator[int]:
    """The numbers Pillow would unpack from each of the first `pages` page directories of
    the TIFF read from `handle` (seekable), in page order. Stops at the last
    page, a directory seen before (a loop), or one it cannot read (Pillow then says why);
    ValueError for a directory declaring more than MAX_TIFF_PAGE_ENTRIES entries."""
    return (page.values for page in _pages(handle, pages))


def _pages(handle: IO[bytes], pages: int) -> Iterator[_Page]:
    handle.seek(0)
    head = handle.read(16)
    if head[:2] not in (b"II", b"MM"):
        return
    order = "<" if head[:2] == b"II" else ">"
    (version,) = struct.unpack(order + "H", head[2:4])
    if version == 42 and len(head) >= 8:
        (at,) = struct.unpack(order + "I", head[4:8])
        count_fmt, entry, next_fmt = "H", order + "HHI4s", "I"
    elif version == 43 and len(head) >= 16:
        (at,) = struct.unpack(order + "Q", head[8:16])
        count_fmt, entry, next_fmt = "Q", order + "HHQ8s", "Q"
    else:
        return
    count_size = struct.calcsize(count_fmt)
    entry_size = struct.calcsize(entry)
    next_size = struct.calcsize(next_fmt)
    seen: set[int] = set()
    while at and at not in seen and len(seen) < pages:
        if at >= _MAX_OFFSET:  # a BigTIFF's 8-byte offset: no file is that large
            return
        seen.add(at)
        handle.seek(at)
        raw = handle.read(count_size)
        if len(raw) != count_size:
            return
        (entries,) = struct.unpack(order + count_fmt, raw)
        if entries > MAX_TIFF_PAGE_ENTRIES:  # Pillow loops over each (a BigTIFF's count is 8 bytes)
            raise ValueError(
                f"page {len(seen)} of the TIFF declares {entries} directory entries; pages "
                f"of more than {MAX_TIFF_PAGE_ENTRIES} are not read"
            )
        table = handle.read(entries * entry_size)
        if len(table) != entries * entry_size:
            return
        values = 0
        size = {256: 0, 257: 0}
        for tag, kind, count, value in struct.iter_unpack(entry, table):
            if kind in _NUMBERS:
                values += count
            fmt = order + _SIZES.get(kind, "")
            # The first number, in the entry itself (a size is one number); LONG8 fits only
            # a BigTIFF's entry.
            if tag in size and kind in _SIZES and struct.calcsize(fmt) <= len(value):
                (size[tag],) = struct.unpack_from(fmt, value)
        yield _Page(values, size[256], size[257])
        raw = handle.read(next_size)
        if len(raw) != next_size:
            return
        (at,) = struct.unpack(order + next_fmt, raw)


def page_problem(handle: IO[bytes], pages: int = 1) -> str:
    """Why the TIFF read from `handle` (seekable) is not decoded, judging its first `pages`
    pages ('' if it may be): the numbers their directories list, and their sizes (the first
    bytes of a file may not reach its first directory: read from them alone, its size was 0
    x 0). Leaves the handle at its start."""
    try:
        for number, page in enumerate(_pages(handle, pages), 1):
            if page.values > MAX_TIFF_PAGE_VALUES:
                return (
                    f"page {number} of the TIFF lists {page.values} numbers (strip offsets "
                    f"and the like); pages of more than {MAX_TIFF_PAGE_VALUES} are not read"
                )
            if problem := pixels_problem(page.width, page.height):
                return problem
    except ValueError as exc:
        return str(exc)
    finally:
        handle.seek(0)
    return ""
