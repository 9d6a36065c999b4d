"""JPEG scans counted as bytes stream by: what libjpeg would decode, never fewer."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from bytereview.core.jpeg_scans import ScanCounter, count_scans, scans_problem
from bytereview.core.limits import MAX_JPEG_SCANS, MAX_JPEG_SEGMENTS, MAX_JPEG_STRAY_BYTES
from tests.hostile_documents import _jpeg_segments, jpeg_padded, jpeg_scan_bomb


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
    counted = count_scans(io.BytesIO(data))
    assert counted.scans == scans
    assert counted.problem() == ""


@pytest.mark.parametrize("size", [1, 2, 3, 7, 4096])
def test_a_marker_split_between_chunks_is_counted_once(size: int) -> None:
    data = jpeg_scan_bomb(32, 150)
    counter = ScanCounter()
    for at in range(0, len(data), size):
        counter.feed(data[at : at + size])
    assert counter.scans == 150


def test_a_scan_bomb_is_refused_by_its_count() -> None:
    assert count_scans(io.BytesIO(jpeg_scan_bomb(32, MAX_JPEG_SCANS))).scans == MAX_JPEG_SCANS
    assert scans_problem(MAX_JPEG_SCANS) == ""
    assert f"holds {MAX_JPEG_SCANS + 1} scans" in (
        count_scans(io.BytesIO(jpeg_scan_bomb(32, MAX_JPEG_SCANS + 1))).problem()
    )


def test_segments_and_stray_bytes_before_the_image_are_counted_as_pillow_walks_them() -> None:
    out = io.BytesIO()
    image = Image.new("RGB", (40, 30), "white")
    icc = b"\x00" * 200_000  # an ICC profile of four APP2 segments
    image.save(out, "JPEG", exif=image.getexif().tobytes(), icc_profile=icc, progressive=True)
    real = count_scans(io.BytesIO(out.getvalue()))
    assert (real.stray, real.problem()) == (0, "")
    assert 8 <= real.segments <= 20, real.segments
    padded = jpeg_padded(segments=MAX_JPEG_SEGMENTS - 20, stray=MAX_JPEG_STRAY_BYTES)
    whole = count_scans(io.BytesIO(padded))
    assert (whole.stray, whole.problem()) == (MAX_JPEG_STRAY_BYTES, "")
    bytewise = ScanCounter()
    for at in range(len(padded)):
        bytewise.feed(padded[at : at + 1])
    assert (bytewise.segments, bytewise.stray) == (whole.segments, whole.stray)
    many = count_scans(io.BytesIO(jpeg_padded(segments=MAX_JPEG_SEGMENTS + 1)))
    assert f"more than {MAX_JPEG_SEGMENTS} segments" in many.problem()
    junk = count_scans(io.BytesIO(jpeg_padded(stray=MAX_JPEG_STRAY_BYTES + 1)))
    assert f"more than {MAX_JPEG_STRAY_BYTES} stray bytes" in junk.problem()
