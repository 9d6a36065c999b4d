"""JPEG scans counted as bytes stream by: what libjpeg would decode, never fewer."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from bytereview.core.jpeg_scans import ScanCounter, count_scans, scans_problem
from bytereview.core.limits import MAX_JPEG_SCANS
from tests.hostile_documents import _jpeg_segments, jpeg_scan_bomb


def _jpeg(mode: str, *, progressive: bool) -> bytes:
    out = io.BytesIO()
    Image.effect_noise((200, 120), 60).convert(mode).save(
        out, "JPEG", progressive=progressive, quality=90
    )
    return out.getvalue()


@pytest.mark.parametrize(
    ("mode", "progressive"), [("RGB", False), ("RGB", True), ("L", True), ("CMYK", False)]
)
def test_encoders_scans_are_counted_as_their_markers_say_and_pass(
    mode: str, progressive: bool
) -> None:
    data = _jpeg(mode, progressive=progressive)
    scans = sum(1 for marker, _ in _jpeg_segments(data) if marker == 0xDA)
    assert scans == (1 if not progressive else 10 if mode == "RGB" else 6)
    assert count_scans(io.BytesIO(data)) == scans
    assert scans_problem(scans) == ""


@pytest.mark.parametrize("size", [1, 2, 3, 7, 4096])
def test_a_marker_split_between_chunks_is_counted_once(size: int) -> None:
    data = jpeg_scan_bomb(32, 150)
    counter = ScanCounter()
    for at in range(0, len(data), size):
        counter.feed(data[at : at + size])
    assert counter.scans == 150


def test_a_scan_bomb_is_refused_by_its_count() -> None:
    assert count_scans(io.BytesIO(jpeg_scan_bomb(32, MAX_JPEG_SCANS))) == MAX_JPEG_SCANS
    assert scans_problem(MAX_JPEG_SCANS) == ""
    assert f"holds {MAX_JPEG_SCANS + 1} scans" in scans_problem(
        count_scans(io.BytesIO(jpeg_scan_bomb(32, MAX_JPEG_SCANS + 1)))
    )
