"""A TIFF's page directories counted with struct alone, as Pillow would parse them."""

from __future__ import annotations

import io
import struct

from PIL import Image

from bytereview.core.limits import MAX_TIFF_PAGE_ENTRIES, MAX_TIFF_PAGE_VALUES
from bytereview.core.tiff_ifds import page_problem, page_values
from tests.hostile_documents import tiff_header, tiff_strips


def test_pages_written_by_pillow_are_counted_page_by_page() -> None:
    frames = [Image.new("L", (10, 40)), Image.new("RGB", (30, 30)), Image.new("1", (8, 8))]
    for big in (False, True):
        out = io.BytesIO()
        frames[0].save(out, "TIFF", save_all=True, append_images=frames[1:], big_tiff=big)
        out.seek(0)
        values = list(page_values(out, 10))
        assert len(values) == 3, big
        assert all(0 < v < 100 for v in values), values
        assert list(page_values(io.BytesIO(out.getvalue()), 2)) == values[:2]


def test_one_row_strips_past_the_bound_are_refused_and_below_it_pass() -> None:
    rows = MAX_TIFF_PAGE_VALUES // 2 - 5  # offsets and counts: two numbers a row
    assert list(page_values(io.BytesIO(tiff_strips(rows)), 1)) == [2 * rows + 7]
    assert page_problem(io.BytesIO(tiff_strips(rows))) == ""
    assert "page 1 of the TIFF lists" in page_problem(io.BytesIO(tiff_strips(rows + 10)))
    # Only the pages asked for are judged: the second of these is never read.
    two = tiff_strips(10, pages=2)
    assert list(page_values(io.BytesIO(two), 1)) == [27]
    assert list(page_values(io.BytesIO(two), 5)) == [27, 27]


def test_a_directory_chain_looping_back_ends() -> None:
    data = bytearray(tiff_strips(10, pages=2))
    first = struct.unpack("<I", data[4:8])[0]
    data[-4:] = struct.pack("<I", first)  # the last page points back at the first
    assert list(page_values(io.BytesIO(bytes(data)), 100)) == [27, 27]


def test_a_bigtiff_directory_larger_than_a_tiff_can_hold_is_refused() -> None:
    data = b"II+\x00" + struct.pack("<HHQ", 8, 0, 16) + struct.pack("<Q", 10**12)
    assert "declares 1000000000000 directory entries" in page_problem(io.BytesIO(data))


def test_a_page_of_more_entries_than_allowed_is_refused() -> None:
    """Pillow loops over every entry in Python, and warns once per entry whose data is
    missing: 65,535 such entries were 65,535 lines of the worker's log."""
    entries = MAX_TIFF_PAGE_ENTRIES + 1
    table = struct.pack("<HHII", 40000, 7, 10**6, 8) * entries
    data = b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", entries) + table + bytes(4)
    assert f"declares {entries} directory entries" in page_problem(io.BytesIO(data))
    fewer = MAX_TIFF_PAGE_ENTRIES
    data = b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", fewer) + table[: 12 * fewer]
    assert page_problem(io.BytesIO(data + bytes(4))) == ""


def test_a_pages_size_is_judged_from_its_directory_wherever_it_is() -> None:
    """Its first bytes may not reach the directory: read from them alone, a TIFF was 0 x 0,
    and Pillow opened it at its size. SHORT and LONG sizes, classic and BigTIFF,
    as Pillow writes them; a LONG8 size in a classic TIFF's 4-byte field is not
    read (it does not fit) rather than failing the walk."""
    for big in (False, True):
        for side in (300, 7100):  # 7100 x 7100 is past MAX_IMAGE_PIXELS
            out = io.BytesIO()
            Image.new("1", (side, side)).save(out, "TIFF", big_tiff=big, compression="group4")
            problem = page_problem(io.BytesIO(out.getvalue()))
            assert ("7100 x 7100 pixels" in problem) == (side == 7100), (big, side, problem)
    assert "9000 x 9000 pixels" in page_problem(io.BytesIO(tiff_header(9000, 9000, padding=10**5)))
    assert page_problem(io.BytesIO(tiff_header(900, 900, padding=10**5))) == ""
    long8 = bytearray(tiff_header(9000, 9000))
    long8[10:14] = struct.pack("<HH", 256, 16)  # ImageWidth as LONG8
    assert page_problem(io.BytesIO(bytes(long8))) == ""


def test_a_bigtiff_directory_offset_past_any_file_ends_the_walk() -> None:
    """A BigTIFF's offsets are 8 bytes: 2**64 - 1 made the walk's seek overflow, an error
    that none of its callers expect."""
    out = io.BytesIO()
    Image.new("1", (8, 8)).save(out, "TIFF", big_tiff=True)
    data = bytearray(out.getvalue())
    data[8:16] = struct.pack("<Q", 2**64 - 1)
    assert list(page_values(io.BytesIO(bytes(data)), 1)) == []
    assert page_problem(io.BytesIO(bytes(data))) == ""
